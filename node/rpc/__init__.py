"""JSON-RPC 2.0 for nodes (HTTP + WebSocket on the RPC port): `serve_rpc(node, host, port)`.
The method set and its JSON schema are documented in `node.rpc.methods`."""

from node.rpc.methods import RpcMethods
from node.rpc.server import RpcApp, serve_rpc

__all__ = ["RpcApp", "RpcMethods", "serve_rpc"]

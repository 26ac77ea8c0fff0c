"""JSON-RPC 2.0 error codes and the one exception a method raises to answer with an error.

The -327xx/-326xx codes are the specification's; 1010/1016 follow Substrate's transaction-pool
codes and -32006 jsonrpsee's, so existing tooling reads them the same way; -32000 is ours (the
block's state is gone).
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
STATE_UNAVAILABLE = -32000  # the block is unknown, or its post-state was pruned
TOO_MANY_SUBSCRIPTIONS = -32006  # as jsonrpsee, which Substrate serves with
INVALID_TRANSACTION = 1010  # Substrate: "Invalid Transaction"
POOL_FULL = 1016  # Substrate: "Immediately Dropped"


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"Invalid params: {message}")

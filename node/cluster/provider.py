"""How a `Cluster`'s nodes run: the provider interface, and the native provider (processes of
this machine). The docker provider (containers of a compose project) is `docker_provider`.

A provider starts the nodes of the cluster's `NetworkSpec` from the chain spec the cluster wrote,
gives each a handle (`handle.NodeBase`: URLs on this machine, RPC, metrics, alive/crashed,
kill/pause/resume/restart), adds a collator to a running network, and stops everything it
started, whatever happened before (it runs shielded, after a failed start or a cancelled body).
Nothing in the interface is a pid: what identifies a node's process or container is the
provider's own business, listed in `network.json` by each handle's `to_json`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Protocol

import trio

from node.cluster.faults import FaultProxies, node_address, proxy_address
from node.cluster.handle import PORT_NAMES, ClusterError, NodeBase, NodeHandle
from node.cluster.ports import PortAllocator
from node.cluster.spec import NetworkSpec, NodeSpec

# The CLI's documented entry point, independent of how the `node.cli` module is laid out.
LAUNCH = [sys.executable, "-c", "import sys; from node.cli import main; "
          "sys.exit(main(prog_name='asyncback'))"]
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class Cluster(Protocol):
    """What a provider sees of the `launcher.Cluster` it runs the nodes of."""

    spec: NetworkSpec
    run_dir: Path
    nodes: dict[str, NodeBase]
    startup_timeout_s: float
    stop_timeout_s: float

    @property
    def chain_spec_path(self) -> Path: ...

    @property
    def observer(self) -> NodeBase: ...

    def write_network_json(self) -> None: ...


class Provider(Protocol):
    """What `Cluster` asks of whatever runs its nodes."""

    kind: str  # "native" | "docker", as `NetworkSpec.provider` names it
    ports: PortAllocator  # the nodes' ports on this machine

    async def start(self, cluster: Cluster) -> None:
        """Start every node of `cluster.spec`, adding its handle to `cluster.nodes` as it is
        made; return once each has started (listening, not yet producing). `ClusterError`
        (or `NodeFailed`) when one does not; the cluster then calls `stop`."""

    async def add_collator(self, cluster: Cluster, spec: NodeSpec) -> NodeBase:
        """Start one more collator on the running network, attached to `cluster.observer`."""

    async def stop(self, cluster: Cluster) -> None:
        """Stop and release everything this provider started. Called once, shielded."""

    def network_json(self) -> dict[str, Any]:
        """The provider's own entries of `network.json` (beside the nodes)."""


def node_environment() -> dict[str, str]:
    """The launcher's environment minus `ASYNCBACK_*` (a node runs as the spec says, not as a
    variable left in the shell says), with the package importable from any directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCBACK_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH"))
                                        if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class NativeProvider:
    """Each node an `asyncback <role>` process in its own process group (see `process`), on
    ports from `ports`, listening on `host` or, with `faults`, on a loopback address of its own
    behind a fault proxy."""

    kind = "native"

    def __init__(self, ports: PortAllocator | None = None, host: str = "127.0.0.1",
                 faults: bool = False, fault_seed: int = 0) -> None:
        if faults and host != "127.0.0.1":
            raise ClusterError("a cluster with faults puts each node on a loopback address of "
                               "its own; it takes no host")
        self.ports = ports or PortAllocator(host)
        self.host = host
        self.env = node_environment()
        # With faults, every p2p link runs through a proxy that can cut or slow it (`faults`).
        self.proxies = FaultProxies(fault_seed) if faults else None

    async def start(self, cluster: Cluster) -> None:
        if self.proxies is not None:
            await self.proxies.start()
        spec = cluster.spec
        first, *other_validators = spec.validators
        rounds = [[first], [*other_validators, *spec.full_nodes],
                  [c for para in spec.paras for c in para.collators]]
        for specs in rounds:
            await self._start_round(cluster, [self._handle(cluster, s) for s in specs])

    async def _start_round(self, cluster: Cluster, handles: list[NodeHandle]) -> None:
        failures: list[ClusterError] = []

        async def start_one(handle: NodeHandle) -> None:
            try:
                await handle.start(cluster.startup_timeout_s)
            except ClusterError as exc:
                failures.append(exc)

        async with trio.open_nursery() as nursery:
            for handle in handles:
                nursery.start_soon(start_one, handle)
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise ClusterError("\n".join(str(f) for f in failures))

    async def add_collator(self, cluster: Cluster, spec: NodeSpec) -> NodeBase:
        handle = self._handle(cluster, spec)
        await handle.start(cluster.startup_timeout_s)
        return handle

    def _handle(self, cluster: Cluster, spec: NodeSpec) -> NodeHandle:
        host, public = self.host, None
        if self.proxies is not None:
            try:
                host = node_address(len(cluster.nodes))
                public = proxy_address(len(cluster.nodes))
            except ValueError as exc:
                raise ClusterError(str(exc)) from None
        handle = NodeHandle(spec, host, {p: self.ports.allocate() for p in PORT_NAMES},
                            cluster.run_dir / f"{spec.name}.log",
                            cluster.run_dir / "data" / spec.name,
                            lambda ports: self._command(cluster, spec, ports, host, public),
                            cluster.run_dir, self.env, self.ports, cluster.write_network_json,
                            public_host=public)
        cluster.nodes[spec.name] = handle
        return handle

    def _command(self, cluster: Cluster, spec: NodeSpec, ports: Any, host: str,
                 public: str | None) -> list[str]:
        argv = [*LAUNCH, spec.role, "--chain", str(cluster.chain_spec_path),
                "--name", spec.name, "--base-path", str(cluster.run_dir / "data" / spec.name),
                "--listen-host", host, "--port", str(ports["p2p"]),
                "--rpc-port", str(ports["rpc"]), "--prometheus-port", str(ports["prometheus"]),
                "--log-format", "json"]
        if self.proxies is not None and public is not None:
            # Called before every spawn, with the ports of that attempt: the proxy follows them.
            try:
                self.proxies.expose(spec.name, host, (public, ports["p2p"]), (host, ports["p2p"]))
            except OSError as exc:
                raise ClusterError(f"node {spec.name}: cannot open its fault proxy on "
                                   f"{public}:{ports['p2p']}: {exc.strerror or exc}") from None
            argv += ["--public-host", public]
        if spec.role == "collator":
            argv += ["--para-id", str(spec.para_id),
                     "--relay-chain-rpc-url", cluster.observer.ws_url]
            if spec.tx_rate is not None:
                argv += ["--tx-rate", str(spec.tx_rate)]
            if spec.blocks_per_relay_parent:
                argv += ["--blocks-per-relay-parent", str(spec.blocks_per_relay_parent)]
            # The para's collators started before this one, as the compose file lists them:
            # discovery passes on no collator's address, so without them two collators of one
            # para never meet and neither imports the other's blocks. A collator started
            # first learns a later one from the link the later one dials.
            earlier = [n.bootnode for n in cluster.nodes.values()
                       if isinstance(n, NodeHandle) and n.name != spec.name
                       and n.spec.role == "collator" and n.spec.para_id == spec.para_id]
            if earlier:
                argv += ["--para-bootnodes", ",".join(earlier)]
        else:
            first = cluster.nodes[cluster.spec.validators[0].name]
            assert isinstance(first, NodeHandle)
            if first.name != spec.name:
                argv += ["--bootnodes", first.bootnode]
        return [*argv, *spec.args]

    async def stop(self, cluster: Cluster) -> None:
        async with trio.open_nursery() as nursery:
            for node in cluster.nodes.values():
                nursery.start_soon(node.stop, cluster.stop_timeout_s)
        if self.proxies is not None:
            self.proxies.close()
        self.ports.close()

    def network_json(self) -> dict[str, Any]:
        return {"provider": self.kind, "launcher_pid": os.getpid()}


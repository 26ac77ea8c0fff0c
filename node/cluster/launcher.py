"""`Cluster`: a network of real `asyncback` nodes on this machine, for tests and scripts: native
processes (the "native" provider, described here), or containers of a compose project
(`Cluster(spec, run_dir, provider="docker")`, or a spec whose `provider` is "docker"; see
`docker_provider`). Both write the same run directory and give handles with the same waits,
RPC, metrics and faults; what runs the nodes is a `provider.Provider`.

    async with Cluster(default_network(host), run_dir) as cluster:
        await cluster.wait_para_height(2000, 5)
        await cluster.assert_para_throughput(15, {2000: range(14, 16), 2001: range(14, 16)})
        cluster["dave"].pause()
        await cluster.assert_finality_lag(3)

What entering does: writes the chain spec the `NetworkSpec` implies to `run_dir/chain-spec.json`
and starts every node as `asyncback <role>` in its own process group, with base path
`run_dir/data/<name>`, log `run_dir/<name>.log` (JSON lines, appended across restarts) and three
ports (p2p, RPC, Prometheus) from a `PortAllocator`, each checked free before use. Validators
and full nodes bootstrap from the first validator; collators are given only the RPC URL of the
first full node (the first validator if there is none) and learn its p2p address from it. Nodes
start in three rounds (the first validator; the other relay nodes; the collators), those of a
round in parallel, each round once every node of the one before has logged "node started"; a
node whose port was taken meanwhile is started again on fresh ports. Entering returns when every
node has started: listening and running, not yet producing or synced (wait for that in relay
blocks). If a node fails to start, everything started is stopped and `NodeFailed` says which
node and why, with the end of its log (several failures in one round: one `ClusterError` listing
them).

`run_dir/network.json` lists every node (name, role, pid, para id, ports, RPC/WS/Prometheus URLs,
log and base path, p2p identity), with the launcher's pid and the cluster's `state`
("starting", "running", "stopped"). It is rewritten whenever a node is spawned (started,
restarted, added), so it always holds the current pids, and once more at teardown.

Exiting (or `stop()`) stops every process group the cluster started: SIGTERM (and SIGCONT, for
a paused node), up to `stop_timeout_s`, then SIGKILL; it returns when all are reaped, and
leaves the run directory (logs, data, network.json) in place. It runs even when the body was
cancelled. If the launcher itself is killed, the kernel kills the nodes (see `process`).

Guarantees and limits: ports never clash with another `Cluster` on this machine, in this process
or another (see `ports`); a port another program takes between the check and the node's bind is
replaced on a first start, but not on a restart (the node keeps its ports). Nodes listen on
127.0.0.1 only, or, with `faults=True`, each on a loopback address of its own behind a fault
proxy that `partition`, `degrade` and `heal` drive (see `faults`; native only); the parent-death
watch needs Linux. The docker provider has no `add_collator` (its nodes are the spec's). The
chain spec lists each para's collators, and they take turns in that order (the para's Aura
authorities, fixed at genesis): `add_collator` is for a para started with none, and refuses one
that has some (the new process would not be one of its authors).
`Cluster` is not thread-safe: use it from the trio loop that entered it, or through `SyncCluster`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import trio

from node.cluster.faults import FaultProxies, Impairment
from node.cluster.handle import ClusterError, NodeBase
from node.cluster.ports import PortAllocator
from node.cluster.provider import LAUNCH, PACKAGE_ROOT, NativeProvider, Provider, node_environment
from node.cluster.spec import NetworkSpec, NodeSpec
from node.cluster.waits import RelayChainWaits
from relay.core.config import ConfigError

__all__ = ["LAUNCH", "PACKAGE_ROOT", "Cluster", "node_environment"]

DEFAULT_STARTUP_TIMEOUT_S = 60.0
DOCKER_STARTUP_TIMEOUT_S = 240.0  # containers start slower, and the first may pull nothing
HANDLER_ERRORS_METRIC = "substrate_sub_libp2p_handler_errors_total"
HANDLER_FAILED_EVENT = '"message handler failed"'  # the event of that error line, as JSON
# The informant's lines for a peer charged (node/informant.py: each charge of a peer is logged,
# at most one line per peer and kind per 30 s).
CHARGE_EVENTS = frozenset({"peer misbehaved", "peer banned"})
DEFAULT_STOP_TIMEOUT_S = 10.0


class Cluster(RelayChainWaits):
    """A network of processes started from `spec` under `run_dir` (see the module docstring);
    waits and assertions from `RelayChainWaits` read the `observer` by default."""

    def __init__(self, spec: NetworkSpec, run_dir: Path | str, *,
                 startup_timeout_s: float | None = None,
                 stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
                 ports: PortAllocator | None = None, host: str = "127.0.0.1",
                 faults: bool = False, fault_seed: int = 0, provider: str | None = None,
                 image: str | None = None) -> None:
        kind = provider or spec.provider
        self.provider: Provider
        if kind == "native":
            if image is not None:
                raise ClusterError("an image is for the docker provider")
            self.provider = NativeProvider(ports, host, faults, fault_seed)
        elif kind == "docker":
            from node.cluster.docker_provider import DockerProvider

            if faults or host != "127.0.0.1":
                raise ClusterError("the docker provider publishes every node on 127.0.0.1 and "
                                   "has no fault proxies (faults=True is native only)")
            self.provider = DockerProvider(ports, image)
        else:
            raise ClusterError(f"no provider {kind!r} (native or docker)")
        self.spec = spec
        self.run_dir = Path(run_dir).resolve()
        self.startup_timeout_s = startup_timeout_s or (
            DOCKER_STARTUP_TIMEOUT_S if kind == "docker" else DEFAULT_STARTUP_TIMEOUT_S)
        self.stop_timeout_s = stop_timeout_s
        self.host = host
        self.slot_s = spec.host.slot_ms / 1000
        self.sync_backing = (spec.host.max_candidate_depth == 0
                             and spec.host.allowed_ancestry_len == 0)
        self.nodes: dict[str, NodeBase] = {}
        self.state = "new"
        self.started_in_s: float | None = None  # from the first node's start to the last's

    @property
    def ports(self) -> PortAllocator:
        """Where the nodes' host ports come from."""
        return self.provider.ports

    @property
    def proxies(self) -> FaultProxies | None:
        """The fault proxies of a native cluster started with `faults=True`."""
        return self.provider.proxies if isinstance(self.provider, NativeProvider) else None

    # -- the nodes ------------------------------------------------------------------------------

    @property
    def chain_spec_path(self) -> Path:
        return self.run_dir / "chain-spec.json"

    @property
    def network_json_path(self) -> Path:
        return self.run_dir / "network.json"

    def __getitem__(self, name: str) -> NodeBase:
        return self.nodes[name]

    def __iter__(self) -> Iterator[NodeBase]:
        return iter(list(self.nodes.values()))

    def by_role(self, role: str) -> list[NodeBase]:
        return [n for n in self.nodes.values() if n.role == role]

    def collators(self, para_id: int | None = None) -> list[NodeBase]:
        return [n for n in self.by_role("collator") if para_id is None or n.para_id == para_id]

    @property
    def observer(self) -> NodeBase:
        """The node waits read from and collators attach to: the first full node, else the
        first validator."""
        relays = self.by_role("relay-node") or self.by_role("validator")
        if not relays:
            raise ClusterError("the cluster has no relay node running")
        return relays[0]

    def crashed(self) -> list[NodeBase]:
        """Nodes that exited without the harness stopping them."""
        return [n for n in self.nodes.values() if n.crashed]

    async def handler_errors(self) -> dict[str, int]:
        """Per node, peer messages whose handler failed: the larger of the running node's
        `substrate_sub_libp2p_handler_errors_total` (which must be exported) and the error lines
        in its log (a restarted node's counter starts again; its log does not)."""
        out: dict[str, int] = {}
        for node in self.nodes.values():
            logged = sum(1 for line in node.log_path.read_text(errors="replace").splitlines()
                         if HANDLER_FAILED_EVENT in line)
            counted = 0
            if node.alive and not node.paused:
                samples = {k: v for k, v in (await node.metrics()).items()
                           if k.startswith(HANDLER_ERRORS_METRIC + "{")}
                if not samples:
                    raise AssertionError(f"{node.name} exports no {HANDLER_ERRORS_METRIC}")
                counted = int(sum(samples.values()))
            out[node.name] = max(logged, counted)
        return out

    async def assert_no_handler_errors(self) -> None:
        """No message any node received made a handler fail (see `handler_errors`)."""
        failed = {name: n for name, n in (await self.handler_errors()).items() if n}
        if failed:
            raise AssertionError(f"message handlers failed: {failed} (logs: "
                                 f"{', '.join(str(self.nodes[n].log_path) for n in failed)})")

    def peer_charges(self) -> dict[str, list[str]]:
        """Per node that charged a peer, one entry `peer: reason` per charge line of its log."""
        out: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for line in node.log_path.read_text(errors="replace").splitlines():
                if not any(event in line for event in CHARGE_EVENTS):
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line a crash cut short (its node's crash is reported apart)
                if isinstance(entry, dict) and entry.get("event") in CHARGE_EVENTS:
                    out.setdefault(node.name, []).append(
                        f"{entry.get('peer')}: {entry.get('reason')}")
        return out

    def assert_nobody_charged(self) -> None:
        """No node charged a peer: in a healthy network every message is one its receiver
        expects (a charge there is a protocol defect on one side or the other)."""
        charged = self.peer_charges()
        if charged:
            raise AssertionError(f"peers charged in a healthy network: {charged} (logs: "
                                 f"{', '.join(str(self.nodes[n].log_path) for n in charged)})")

    # -- starting -------------------------------------------------------------------------------

    async def __aenter__(self) -> Cluster:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        if self.state != "new":
            raise ClusterError(f"a cluster starts once (this one is {self.state})")
        self.state = "starting"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            chain = self.spec.chain_spec()
        except ConfigError as exc:
            raise ClusterError(f"the network's chain spec: {exc}") from None
        self.chain_spec_path.write_text(json.dumps(chain.to_json(), indent=2) + "\n")
        began = trio.current_time()
        await self.provider.start(self)
        self.check_crashed()
        self.started_in_s = round(trio.current_time() - began, 1)
        self.state = "running"
        self.write_network_json()

    async def add_collator(self, para_id: int, name: str | None = None, *,
                           tx_rate: float | None = None, blocks_per_relay_parent: int = 0,
                           args: tuple[str, ...] = ()) -> NodeBase:
        """Start a collator for `para_id` on the running network, attached to the observer;
        returns once it has started. The name defaults to `collator-<para>-<k>`, the first k
        not taken."""
        if self.state != "running":
            raise ClusterError(f"add_collator needs a running cluster (this one is {self.state})")
        if name is None:
            k = 0
            while f"collator-{para_id}-{k}" in self.nodes:
                k += 1
            name = f"collator-{para_id}-{k}"
        if name in self.nodes:
            raise ClusterError(f"a node named {name} is already in the cluster")
        authors = [c.name for p in self.spec.paras if p.para_id == para_id for c in p.collators]
        if authors:
            raise ClusterError(f"para {para_id} takes turns among the collators its chain spec "
                               f"lists ({', '.join(authors)}); add_collator is for a para "
                               "started with none")
        try:
            spec = NodeSpec(name, "collator", para_id, args, tx_rate, blocks_per_relay_parent)
        except ConfigError as exc:
            raise ClusterError(str(exc)) from None
        try:
            return await self.provider.add_collator(self, spec)
        finally:
            self.write_network_json()

    # -- faults on the links (a cluster started with faults=True) --------------------------------

    def _fault_proxies(self, names: Iterable[str]) -> tuple[FaultProxies, list[str]]:
        if self.proxies is None:
            raise ClusterError("link faults need a cluster started with faults=True")
        listed = list(names)
        unknown = [n for n in listed if n not in self.nodes]
        if unknown:
            raise ClusterError(f"no node named {', '.join(unknown)} in the cluster")
        return self.proxies, listed

    def partition(self, *groups: Iterable[str], mode: str = "hold") -> None:
        """Cut the named nodes off from the rest: each group is one side, the nodes named in no
        group another. Links within a side are untouched; a later call replaces the partition.
        `mode` "hold" delays what crosses until the heal, "reset" closes it (see `faults`)."""
        proxies, _ = self._fault_proxies(n for g in groups for n in g)
        try:
            proxies.partition([list(g) for g in groups], mode)
        except ValueError as exc:
            raise ClusterError(str(exc)) from None

    def degrade(self, names: Iterable[str], *, latency_ms: float = 0.0, jitter_ms: float = 0.0,
                loss: float = 0.0) -> None:
        """Every link of the named nodes gets this one-way latency, jitter (uniform, ±) and
        segment loss (a fraction; a lost segment stalls its TCP stream for a retransmission
        timeout); a link between two degraded nodes gets the worse of each."""
        proxies, listed = self._fault_proxies(names)
        try:
            impairment = Impairment(latency_ms / 1000, jitter_ms / 1000, loss)
        except ValueError as exc:
            raise ClusterError(str(exc)) from None
        proxies.degrade(listed, impairment)

    def heal(self) -> None:
        """Lift every partition and degradation; what a partition held is delivered now."""
        proxies, _ = self._fault_proxies(())
        proxies.heal()

    # -- network.json ---------------------------------------------------------------------------

    def network_json(self) -> dict[str, Any]:
        return {
            "name": self.spec.name, "state": self.state, **self.provider.network_json(),
            "run_dir": str(self.run_dir), "chain_spec": str(self.chain_spec_path),
            "slot_ms": self.spec.host.slot_ms, "started_in_s": self.started_in_s,
            "nodes": [n.to_json() for n in self.nodes.values()],
        }

    def write_network_json(self) -> None:
        """Atomically (a reader never sees half a file)."""
        tmp = self.network_json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.network_json(), indent=2) + "\n")
        tmp.replace(self.network_json_path)

    # -- stopping -------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after `stop_timeout_s`) and release the ports.
        Shielded from cancellation: it finishes even when the body was cancelled."""
        if self.state in ("new", "stopped"):
            self.state = "stopped"
            return
        with trio.CancelScope(shield=True):
            try:
                await self.provider.stop(self)
            finally:
                self.state = "stopped"
            if self.run_dir.exists():
                self.write_network_json()

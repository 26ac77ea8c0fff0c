"""One node process: a validator, relay full node or collator over the authenticated TCP
transport, with its sqlite store, JSON-RPC, Prometheus endpoint and structured logs.

The services are the very ones the simulator runs; what differs is the host (TCP instead of the
in-memory network), the clock (wall time: slot k starts at k × slot length since the Unix epoch, as
Aura counts slots, so separate processes agree on whose slot it is), discovery (bootnodes and peer
exchange) and the collator's relay-chain interface (JSON-RPC over WebSocket to its relay node).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

from collator.service import LoadConfig
from node import wiring
from node.chainspec import ChainSpec
from node.devnet import para_setup, relay_genesis
from node.informant import Informant
from node.logging import bind_node, get_logger
from node.metrics_server import serve_metrics
from node.net.discovery import Discovery
from node.net.peerset import BAN_WINDOW_S
from node.net.tcp import TcpHost
from node.storage import NodeStore
from proto.keys import Keypair
from proto.messages import FRAME_MAX, PeerAddress, PeerRole
from relay.core.config import ConfigError
from relay.service.full_node import RelayNodeService
from relay.service.pov_execution import ThreadedExecution

ROLES = ("validator", "relay-node", "collator")


@dataclass
class NodeConfig:
    role: str
    spec: ChainSpec
    name: str
    key: Keypair
    base_path: Path
    listen_host: str = "127.0.0.1"
    port: int = 30333
    rpc_port: int | None = 9944
    prometheus_port: int | None = 9615
    bootnodes: tuple[str, ...] = ()
    public_host: str | None = None  # the address peers should dial; default: listen_host
    para_id: int = 0  # collators
    relay_rpc_url: str = ""  # collators
    tx_rate: float | None = None  # collators; None: a saturated pool
    blocks_per_relay_parent: int = 0  # collators
    para_bootnodes: tuple[str, ...] = ()  # collators: other collators of the para
    ban_window_s: float = BAN_WINDOW_S  # a banned key is refused at the handshake this long
    malus: str | None = None  # validators: a malus mode (relay/service/backing.py), for tests


class CannotListen(Exception):
    """A listener could not be opened: which one, on what address, and why."""

    def __init__(self, what: str, host: str, port: int, error: OSError) -> None:
        reason = error.strerror or str(error)
        hint = " (is another node or program using it?)" if error.errno == errno.EADDRINUSE \
            else ""
        shown = f"[{host}]" if ":" in host else host
        super().__init__(f"cannot listen on {shown}:{port} for {what}: {reason}{hint}")
        self.what, self.host, self.port = what, host, port


async def _listen(nursery: trio.Nursery, what: str, host: str, port: int,
                  serve: Callable[..., Awaitable[Any]]) -> Any:
    """`nursery.start(serve)`, an OSError while binding becoming `CannotListen`."""
    try:
        return await nursery.start(serve)
    except OSError as exc:
        raise CannotListen(what, host, port, exc) from exc


@dataclass
class RunningNode:
    service: Any
    host: TcpHost
    ports: dict[str, int] = field(default_factory=dict)


def _open_store(cfg: NodeConfig) -> NodeStore:
    cfg.base_path.mkdir(parents=True, exist_ok=True)
    return NodeStore(cfg.base_path / "node.sqlite")


def _build(cfg: NodeConfig, host: TcpHost, store: NodeStore, log: Any) -> tuple[Any, Any]:
    """The service, and (for collators) the relay-chain interface task to run before it."""
    spec = cfg.spec
    if cfg.role == "collator":
        from node.rpc.relay_interface import RpcRelayInterface

        if not cfg.relay_rpc_url:
            raise ConfigError("a collator needs --relay-chain-rpc-url")
        setup = para_setup(spec, cfg.para_id)
        relay = RpcRelayInterface(cfg.relay_rpc_url, log=log)
        load = LoadConfig(cfg.tx_rate is None, cfg.tx_rate or 0.0)
        authors = [c.public for c in spec.para_authors(cfg.para_id)]
        if authors and cfg.key.public not in authors:
            names = ", ".join(c.name for c in spec.para_authors(cfg.para_id))
            raise ConfigError(f"{cfg.name} is not a collator of para {cfg.para_id} in the chain "
                              f"spec (its collators: {names})")
        # A para whose collators the chain spec lists takes turns in that fixed order (its Aura
        # authorities); otherwise the round is learnt from the collators that show up
        # (--para-bootnodes, block announcements): see collator/service.py.
        service = wiring.collator(cfg.name, cfg.key, cfg.para_id, host, setup.new_chain(), relay,
                                  spec.host.slot_ms, load=load, para_peers=authors,
                                  author_index=authors.index(cfg.key.public) if authors else None,
                                  blocks_per_relay_parent=cfg.blocks_per_relay_parent,
                                  log=log, store=store, ban_window_s=cfg.ban_window_s)
        return service, relay
    genesis = relay_genesis(spec)
    validators = [v.public for v in spec.validators]
    if cfg.role == "validator":
        if spec.validator_index(cfg.key.public) is None:
            raise ConfigError(f"{cfg.name}: this key (0x{cfg.key.public.hex()[:16]}…) is not a "
                              f"validator of chain {spec.name!r}")
        # Wall-clock slots: (trio time - epoch) is the Unix time.
        epoch = trio.current_time() - time.time()
        return wiring.validator(cfg.name, cfg.key, host, genesis, validators, log=log,
                                epoch=epoch, store=store, ban_window_s=cfg.ban_window_s,
                                pov_execution=ThreadedExecution(),
                                malus=cfg.malus), None
    return wiring.relay_node(cfg.name, host, genesis, validators, log=log, store=store,
                             ban_window_s=cfg.ban_window_s), None


def _learn_relay_address(discovery: Discovery, log: Any, addresses: list[str]) -> None:
    for problem in discovery.learn_bootnodes(addresses):
        log.warning("relay node address refused", problem=problem)


async def _refresh_metrics(service: Any) -> None:
    metrics = service.metrics
    while True:
        metrics.peers.set(len(service.net.peers.connected_peers()))
        if isinstance(service, RelayNodeService):
            metrics.block_height.labels("best").set(service.chain.best.number)
            metrics.block_height.labels("finalized").set(service.chain.finalized.number)
            metrics.block_height.labels("sync_target").set(service.best_seen)
            metrics.major_syncing.set(1 if service.is_syncing else 0)
        else:  # a collator: its para chain's heights, as a cumulus node reports them
            chain = service.chain
            known = chain.included_hash in chain.chain
            # it catches up until it holds the para block the relay chain included
            metrics.major_syncing.set(0 if known else 1)
            best = chain.chain.header(chain.chain.highest).number
            para = str(service.para_id)
            metrics.block_height.labels("best").set(best)
            metrics.para_best_height.labels(para).set(best)
            if known:  # the included block: collators do not follow relay finality
                included = chain.chain.header(chain.included_hash).number
                metrics.block_height.labels("finalized").set(included)
                metrics.para_finalized_height.labels(para).set(included)
        await trio.sleep(1.0)


async def run_node(cfg: NodeConfig, *,
                   task_status: trio.TaskStatus[RunningNode] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until cancelled. Raises `ConfigError` or `CannotListen` (a port in use, naming it)
    before starting."""
    if cfg.role not in ROLES:
        raise ConfigError(f"unknown role {cfg.role!r}")
    bind_node(cfg.name, role=cfg.role)
    log = get_logger()
    store = _open_store(cfg)
    try:
        host = TcpHost(cfg.key, cfg.spec.genesis_id(), FRAME_MAX, dial_from=cfg.listen_host)
        async with trio.open_nursery() as nursery:
            await _listen(nursery, "p2p (--port)", cfg.listen_host, cfg.port,
                          partial(host.run, cfg.listen_host, cfg.port))
            assert host.port is not None
            service, relay = _build(cfg, host, store, log)
            informant = Informant(service, host, log)  # listens to peers before any connects
            running = RunningNode(service, host, {"p2p": host.port})
            role = {"validator": PeerRole.VALIDATOR, "relay-node": PeerRole.RELAY_NODE,
                    "collator": PeerRole.COLLATOR}[cfg.role]
            me = PeerAddress(cfg.key.public, cfg.public_host or cfg.listen_host, host.port, role)
            relay_node = service if isinstance(service, RelayNodeService) else None
            discovery = Discovery(service.net, host, me, cfg.spec.host.slot_ms / 1000,
                                  list(cfg.bootnodes),
                                  relay_node.add_relay_peer if relay_node else None, log=log,
                                  validators=frozenset(v.public for v in cfg.spec.validators),
                                  para_bootnodes=list(cfg.para_bootnodes),
                                  on_para_peer=getattr(service, "add_para_peer", None),
                                  on_dialable=relay_node.dial_now if relay_node else None,
                                  dials=relay_node.dials if relay_node else None)
            # Every port is bound before anything runs, Prometheus before the RPC (hypercorn logs
            # that it runs): a port in use is the only line a failed start prints.
            if cfg.prometheus_port is not None:
                running.ports["prometheus"] = await _listen(
                    nursery, "Prometheus (--prometheus-port)", cfg.listen_host,
                    cfg.prometheus_port,
                    partial(serve_metrics, service.metrics.exposition, cfg.listen_host,
                            cfg.prometheus_port))
            if cfg.rpc_port is not None:
                from node.rpc.server import serve_rpc

                running.ports["rpc"] = await _listen(
                    nursery, "JSON-RPC (--rpc-port)", cfg.listen_host, cfg.rpc_port,
                    partial(serve_rpc, service, cfg.listen_host, cfg.rpc_port, log=log,
                            listen_addresses=[f"0x{me.identity.hex()}@{me.host}:{me.port}"]))
            if relay is not None:
                # The relay node's p2p address comes over its RPC, so --bootnodes is optional.
                relay.on_listen_addresses = partial(_learn_relay_address, discovery, log)
                nursery.start_soon(relay.run)
            await nursery.start(service.run)
            await nursery.start(discovery.run)
            nursery.start_soon(_refresh_metrics, service)
            nursery.start_soon(informant.run)
            log.info("node started", identity="0x" + cfg.key.public.hex(),
                     base_path=str(cfg.base_path), **running.ports)
            task_status.started(running)
    finally:
        store.close()

"""What the trio services are handed, as typing Protocols: the network stack they send and
receive through, the store they persist to, the metrics they update.

The services (`relay/service`, `collator/service.py`) name only these; `node/` supplies the
implementations (`node.net.stack.NetworkStack` over TCP or the in-memory network,
`node.storage.NodeStore`, `node.metrics.NodeMetrics`) and mypy checks them against these shapes
where `node/wiring.py` hands them over. Typing only: nothing here runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from proto.network import PeerId, ReputationChange, Verdict

GossipValidator = Callable[[PeerId | None, bytes], Verdict]
GossipDeliver = Callable[[PeerId | None, bytes], None]
RequestHandler = Callable[[PeerId, bytes], Awaitable[bytes | None]]
DirectHandler = Callable[[PeerId, Any], Awaitable[None]]


# -- network ------------------------------------------------------------------------------------


class PeerListener(Protocol):
    def peer_connected(self, peer: PeerId) -> None: ...

    def peer_disconnected(self, peer: PeerId) -> None: ...


class Peers(Protocol):
    def connected_peers(self) -> list[PeerId]: ...

    def is_connected(self, peer: PeerId) -> bool: ...

    async def connect(self, peer: PeerId) -> bool: ...

    async def disconnect(self, peer: PeerId) -> None: ...

    def report(self, peer: PeerId, change: ReputationChange) -> None: ...

    def add_listener(self, listener: PeerListener) -> None: ...

    def handler_failed(self, protocol: str, kind: str, peer: PeerId, error: Exception) -> None:
        """What a service made of a peer's message raised: logged, counted, the peer charged."""


class GossipBus(Protocol):
    fan_out_to: Callable[[PeerId], bool]

    def subscribe(self, topic: int, validate: GossipValidator, deliver: GossipDeliver) -> None: ...

    async def publish(self, topic: int, data: bytes) -> int:
        """By the topic's route: a flood, or the validators' grid."""

    async def send_to(self, topic: int, data: bytes, peers: Iterable[PeerId]) -> int:
        """To the named peers alone, who do not pass it on (a topic with a known audience)."""

    def set_session(self, validators: Sequence[PeerId], genesis_hash: bytes,
                    session_index: int) -> None:
        """The session's validators, for the gossip grid every node lays out alike."""


class RequestLimits(Protocol):
    @property
    def max_response_bytes(self) -> int: ...


class Network(Protocol):
    """One node's network: peers, flood gossip, request/response and direct messages."""

    @property
    def peers(self) -> Peers: ...

    @property
    def gossip(self) -> GossipBus: ...

    @property
    def peer_id(self) -> PeerId: ...

    @property
    def kinds(self) -> Mapping[int, RequestLimits]: ...

    def serve(self, kind: int, handler: RequestHandler) -> None: ...

    def on_direct(self, message_type: type, handler: DirectHandler) -> None: ...

    async def send_direct(self, peer: PeerId, message: Any) -> bool: ...

    async def request(self, peer: PeerId, kind: int, message: Any) -> bytes: ...

    async def run(self, *, task_status: Any = ...) -> None: ...


# -- storage ------------------------------------------------------------------------------------


class Head(NamedTuple):
    hash: bytes
    number: int


class StoredParaBlock(Protocol):
    @property
    def number(self) -> int: ...

    @property
    def encoded_block(self) -> bytes: ...


class RelayStore(Protocol):
    """What a relay node persists: its blocks and heads, and what it signed (never twice).
    Signing at a relay parent below the pruning bound raises `proto.errors.SigningRefused`."""

    @property
    def path(self) -> str: ...

    def put_relay_block(self, hash: bytes, number: int, parent_hash: bytes,
                        encoded_block: bytes) -> None: ...

    def relay_blocks_from(self, number: int) -> Iterator[tuple[bytes, bytes]]: ...

    def relay_block(self, hash: bytes) -> bytes | None: ...

    def relay_block_number(self, hash: bytes) -> int | None: ...

    def drop_relay_blocks(self, hashes: Iterable[bytes]) -> int: ...

    def set_best(self, hash: bytes) -> None: ...

    def set_finalized(self, hash: bytes, number: int) -> None: ...

    def finalized(self) -> Head | None: ...

    def prune_below(self, number: int) -> int: ...

    def record_signed(self, kind: str, key: bytes, payload: bytes, *,
                      relay_parent_number: int | None = None) -> bytes | None: ...

    def record_seconded(self, relay_parent: bytes, candidate_hash: bytes, statement: bytes, *,
                        relay_parent_number: int | None = None,
                        limit: int = 1) -> bytes | None: ...

    def seconded_records(self) -> Sequence[tuple[bytes, bytes, bytes]]: ...

    def signed_records(self) -> Sequence[tuple[str, bytes, bytes]]: ...


class ParaStore(Protocol):
    """What a collator persists: the para blocks it built or imported, and the included head."""

    def put_para_block(self, para_id: int, number: int, hash: bytes, parent_hash: bytes,
                       encoded_block: bytes, encoded_post_state: bytes) -> None: ...

    def para_blocks(self, para_id: int, from_number: int = 0) -> Sequence[StoredParaBlock]: ...

    def para_block(self, para_id: int, hash: bytes) -> StoredParaBlock | None: ...

    def set_para_included(self, para_id: int, hash: bytes) -> None: ...

    def para_included(self, para_id: int) -> Head | None: ...


# -- metrics ------------------------------------------------------------------------------------


class Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class Gauge(Protocol):
    def set(self, value: float) -> None: ...


class Histogram(Protocol):
    def observe(self, amount: float) -> None: ...


class LabelledGauge(Protocol):
    def labels(self, *values: Any) -> Gauge: ...


class LabelledCounter(Protocol):
    def labels(self, *values: Any) -> Counter: ...


class Metrics(Protocol):
    """The Prometheus families the services update (polkadot's names, see node/metrics.py)."""

    @property
    def block_height(self) -> LabelledGauge: ...

    @property
    def prospective_candidates(self) -> LabelledGauge: ...

    @property
    def seconded(self) -> Counter: ...

    @property
    def signed_statements(self) -> Counter: ...

    @property
    def bitfields_signed(self) -> Counter: ...

    @property
    def collations_built(self) -> Counter: ...

    @property
    def collations_seconded(self) -> Counter: ...

    @property
    def backing_latency(self) -> Histogram: ...

    @property
    def inclusion_latency(self) -> Histogram: ...

    @property
    def candidates_included(self) -> LabelledCounter: ...

    @property
    def disputes_total(self) -> Counter: ...

    @property
    def dispute_concluded(self) -> LabelledCounter: ...

    @property
    def disputes_finality_lag(self) -> Gauge: ...

    @property
    def approvals_produced(self) -> Counter: ...

    @property
    def approval_checking_finality_lag(self) -> Gauge: ...

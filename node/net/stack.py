"""One node's network stack over any `Host`: the peer manager, flood gossip, request/response
and direct notifications (one message to one peer, never forwarded: the collator protocol and
statements within a backing group), with the request kinds every asyncback node speaks.

Direct messages are tagged wire messages (`proto.messages`); a handler per message type. A
message type nobody handles costs the sender like any unexpected message; a handler that raises
anything but `DecodeError` is a handler failure (`PeerManager.handler_failed`), and the node goes
on. `log_handler_failures` gives those failures their error log line and metric, and bans (a peer
banned, a banned key refused at the handshake) and a peer over a lane's budget (charged for each
frame dropped, until it is banned) a warning at a limited rate.

Every inbound lane is bounded with a stated policy: `node/net/lanes.py` has the table; the stack
gives the peer manager the budgets of its slot length.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from node.net.gossip import Gossip, Route
from node.net.lanes import SEND_STALL_SLOTS, Throttle, gossip_message_budget, lane_budgets
from node.net.peers import HandlerFailure, PeerManager
from node.net.peerset import BAN_WINDOW_S, PeerSet
from node.net.reqresp import RequestKind, RequestResponse
from node.net.transport import Host
from proto.errors import DecodeError
from proto.messages import FRAME_MAX, KIB, Protocol, WireMessage, decode_message, encode_message
from proto.network import COST_UNEXPECTED_MESSAGE, Kind, PeerId, Topic
from proto.ports import DirectHandler


def _names(vocabulary: type) -> dict[int, str]:
    return {v: k.lower() for k, v in vars(vocabulary).items() if isinstance(v, int)}


def request_kinds(slot_s: float) -> list[RequestKind]:
    """Caps from testing.md's FRAME_MAX; timeouts scale with the slot (polkadot's at 6 s)."""
    pov_max = FRAME_MAX[Protocol.POV_RESPONSE] - 64
    return [
        RequestKind(Kind.BLOCKS, Protocol.BLOCKS, 256, FRAME_MAX[Protocol.BLOCKS] - 64,
                    slot_s * 5 / 6, max_inbound_per_peer=2),
        RequestKind(Kind.COLLATION, Protocol.POV_RESPONSE, 256, pov_max, slot_s / 5),
        RequestKind(Kind.ATTESTED, Protocol.RESPONSE, 256, FRAME_MAX[Protocol.RESPONSE] - 64,
                    slot_s / 6, max_inbound_per_peer=8),
        RequestKind(Kind.POV, Protocol.POV_RESPONSE, 256, pov_max, slot_s / 5,
                    max_inbound_per_peer=8),
        RequestKind(Kind.CHUNK, Protocol.RESPONSE, 256, 64 * KIB, slot_s / 6,
                    max_inbound_per_peer=16),
        RequestKind(Kind.PARA_BLOCK, Protocol.POV_RESPONSE, 256, pov_max, slot_s / 6,
                    max_inbound_per_peer=4),
        # A backer answers approval checkers and dispute participants with a whole candidate
        # (`relay/service/recovery.py`): a few at once from one peer, as for PoVs.
        RequestKind(Kind.AVAILABLE_DATA, Protocol.POV_RESPONSE, 256, pov_max, slot_s / 5,
                    max_inbound_per_peer=4),
    ]




def route_topics(gossip: Gossip) -> None:
    """How each topic travels (ARCHITECTURE.md, "Gossip routes", says why). Blocks flood: one a
    slot, and every relay node needs them. What every validator must count (finality votes,
    approval assignments and votes, dispute votes) goes over the validators' grid, finality votes
    also to the relay nodes (they finalize too). What has a known audience goes to it alone:
    statements to the backing group, bitfields and backed candidates to the next block authors.
    The grid topics are batched (`BATCH_WINDOW_SLOTS`): n² messages a block, n·√n frames."""
    gossip.set_route(Topic.BLOCK, Route.FLOOD)
    gossip.set_route(Topic.FINALITY, Route.GRID, relay_nodes=True, batched=True)
    for topic in (Topic.ASSIGNMENT, Topic.APPROVAL, Topic.DISPUTE):
        gossip.set_route(topic, Route.GRID, batched=True)
    for topic in (Topic.STATEMENT, Topic.BITFIELD, Topic.BACKED):
        gossip.set_route(topic, Route.TARGETED)


class _BanLog:
    """Warnings about bans, each peer at most once per `BAN_LOG_INTERVAL_S` (a banned key that
    redials in a loop must not flood the log either), and about frames dropped over a lane's
    budget, each peer at most once per `OVER_BUDGET_LOG_INTERVAL_S`, with how many were held
    back."""

    def __init__(self, log: Any, node: str, clock: Callable[[], float]) -> None:
        self.log, self.node, self.clock = log, node, clock
        self.throttle = Throttle(BAN_LOG_INTERVAL_S)
        self.over_budget = Throttle(OVER_BUDGET_LOG_INTERVAL_S)

    def peer_banned(self, peer: PeerId, reason: str) -> None:
        held = self.throttle.allow(("banned", peer), self.clock())
        if held is not None:
            self.log.warning("peer banned", node=self.node, peer="0x" + peer.hex()[:16],
                             reason=reason, held_back=held)

    def banned_peer_refused(self, peer: PeerId) -> None:
        held = self.throttle.allow(("refused", peer), self.clock())
        if held is not None:
            self.log.warning("banned peer refused at the handshake", node=self.node,
                             peer="0x" + peer.hex()[:16], held_back=held)

    def frame_over_budget(self, peer: PeerId, protocol: int) -> None:
        # Each frame is charged; without this line an operator would see nothing until the ban
        # (and nothing at all from a peer that stays just under the ban threshold).
        held = self.over_budget.allow(peer, self.clock())
        if held is not None:
            self.log.warning("peer over its lane budget", node=self.node,
                             peer="0x" + peer.hex()[:16],
                             lane=_LANE_NAMES.get(protocol, str(protocol)), held_back=held)


class _LaneCounters:
    """Budget drops, bans and refusals into the node's metrics (Prometheus counters)."""

    def __init__(self, over_budget: Any, bans: Any, refused: Any) -> None:
        self.over_budget, self.bans, self.refused = over_budget, bans, refused

    def peer_banned(self, peer: PeerId, reason: str) -> None:
        self.bans.inc()

    def banned_peer_refused(self, peer: PeerId) -> None:
        self.refused.inc()

    def frame_over_budget(self, peer: PeerId, protocol: int) -> None:
        self.over_budget.labels(_LANE_NAMES.get(protocol, str(protocol))).inc()


_LANE_NAMES = {int(Protocol.GOSSIP): "gossip", int(Protocol.DIRECT): "direct",
               int(Protocol.REQUEST): "request"}


BAN_LOG_INTERVAL_S = 10.0
OVER_BUDGET_LOG_INTERVAL_S = 30.0  # as the informant's misbehaviour lines
PEER_SLOTS = 64  # ordinary connection slots each way (inbound, outbound)
# How long a batched gossip message may wait for others to the same peer (100 ms at 6 s slots,
# 17 ms at 1 s): short beside the slot (approvals and finality votes take two hops), long enough
# that a tick's assignments and the votes that arrive together go out together. At 100/20, 1/120
# gave 17,579 frames a relay block, 1/60 16,216, 1/30 16,230.
BATCH_WINDOW_SLOTS = 1 / 60


class NetworkStack:
    def __init__(self, host: Host, slot_s: float, *, peerset: PeerSet | None = None,
                 ban_window_s: float = BAN_WINDOW_S, reserved_slots: int = 0) -> None:
        """`reserved_slots`: slots each way on top of the ordinary `PEER_SLOTS`, for the relay
        peers a relay node or validator must reach (polkadot reserves its validators' links): at
        more validators than ordinary slots, validators filled every inbound slot and refused
        the collators of their own backing group."""
        self.host = host
        if peerset is None:  # not `peerset or ...`: an empty PeerSet is falsy (it has a len)
            peerset = PeerSet(max_inbound=PEER_SLOTS + reserved_slots,
                              max_outbound=PEER_SLOTS + reserved_slots, ban_window_s=ban_window_s)
        self.peers = PeerManager(host, peerset, budgets=lane_budgets(slot_s),
                                 send_stall_s=SEND_STALL_SLOTS * slot_s)
        self.slot_s = slot_s
        self.gossip = Gossip(self.peers, Protocol.GOSSIP,
                             message_budget=gossip_message_budget(slot_s))
        self.requests = RequestResponse(self.peers, Protocol.REQUEST)
        self.kinds = {k.kind: k for k in request_kinds(slot_s)}
        self.gossip.topic_names = _names(Topic)
        route_topics(self.gossip)
        self.requests.kind_names = _names(Kind)
        self._direct: dict[type, DirectHandler] = {}
        self.peers.register(Protocol.DIRECT, self._on_direct)

    def log_handler_failures(self, log: Any, node: str, counter: Any) -> None:
        """Every handler failure of this stack: one error line (protocol, kind, peer, error) on
        `log` if there is one, and `counter.labels(protocol).inc()` (a Prometheus counter)."""

        def note(failure: HandlerFailure) -> None:
            counter.labels(failure.protocol).inc()
            if log is not None:
                log.error("message handler failed", node=node, protocol=failure.protocol,
                          kind=failure.kind, peer="0x" + failure.peer.hex()[:16],
                          error=failure.describe())

        self.peers.add_failure_listener(note)
        if log is not None:
            self.peers.add_ban_listener(_BanLog(log, node, self.peers.now))

    def count_lanes(self, over_budget: Any, bans: Any, refused: Any) -> None:
        """Frames over budget (`over_budget.labels(lane).inc()`), bans and banned handshakes
        refused (`.inc()`), counted in the given Prometheus counters."""
        self.peers.add_ban_listener(_LaneCounters(over_budget, bans, refused))

    @property
    def handler_errors(self) -> int:
        """Handler failures so far (what a simulation asserts is zero)."""
        return sum(self.peers.handler_errors.values())

    def direct_handlers(self) -> dict[type, DirectHandler]:
        """Each direct message type's handler (what a property test feeds directly)."""
        return dict(self._direct)

    @property
    def peer_id(self) -> PeerId:
        return self.host.peer_id

    def serve(self, kind: int, handler: Callable[[PeerId, bytes], Awaitable[bytes | None]]
              ) -> None:
        """Answer requests of `kind` (before `run`); kinds not served can still be requested."""
        self.requests.register(self.kinds[kind], handler)

    def on_direct(self, message_type: type, handler: DirectHandler) -> None:
        self._direct[message_type] = handler

    async def send_direct(self, peer: PeerId, message: WireMessage) -> bool:
        return await self.peers.send(peer, Protocol.DIRECT, encode_message(message),
                                     type(message).__name__)

    async def request(self, peer: PeerId, kind: int, message: WireMessage) -> bytes:
        return await self.requests.request(peer, kind, encode_message(message))

    async def _on_direct(self, peer: PeerId, body: bytes) -> None:
        message = decode_message(body)
        handler = self._direct.get(type(message))
        if handler is None:
            self.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            return
        try:
            await handler(peer, message)
        except DecodeError:
            raise
        except Exception as exc:
            self.peers.handler_failed("direct", type(message).__name__, peer, exc)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for kind in self.kinds.values():
            if not self.requests.is_registered(kind.kind):
                self.requests.register(kind)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.peers.run)
            await nursery.start(self.requests.run)
            await nursery.start(self.gossip.run_batching, self.slot_s * BATCH_WINDOW_SLOTS)
            task_status.started()

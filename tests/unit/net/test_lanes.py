"""The lane budgets' pieces, pure: a token bucket per peer and lane, the per-slot budgets, and the
throttle that keeps ban warnings to one line per peer per interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.net.lanes import (
    BURST_SLOTS,
    GOSSIP_FRAMES_PER_SLOT,
    Budget,
    Throttle,
    TokenBucket,
    lane_budgets,
)
from proto.messages import Protocol


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(Budget(rate=10.0, burst=5.0), now=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.05) is False  # half a token back
    assert bucket.take(0.1) is True
    # idle time refills up to the burst, never beyond
    assert sum(bucket.take(100.0) for _ in range(20)) == 5
    # a clock that steps back (another task's older reading) does not mint tokens
    assert bucket.take(99.0) is False


def test_budgets_are_per_slot_so_the_same_at_any_slot_length() -> None:
    for slot_s in (1.0, 6.0):
        gossip = lane_budgets(slot_s)[Protocol.GOSSIP]
        assert gossip.rate * slot_s == GOSSIP_FRAMES_PER_SLOT
        assert gossip.burst == GOSSIP_FRAMES_PER_SLOT * BURST_SLOTS
    assert set(lane_budgets(1.0)) == {Protocol.GOSSIP, Protocol.DIRECT, Protocol.REQUEST}


def test_the_throttle_logs_once_per_interval_and_counts_what_it_held_back() -> None:
    throttle = Throttle(10.0)
    assert throttle.allow("p", 0.0) == 0
    assert [throttle.allow("p", t) for t in (1.0, 2.0, 9.9)] == [None, None, None]
    assert throttle.allow("q", 5.0) == 0  # another key has its own interval
    assert throttle.allow("p", 10.0) == 3


def test_the_throttle_stays_bounded_under_many_keys() -> None:
    throttle = Throttle(10.0, max_keys=4)
    assert [throttle.allow(k, 0.0) for k in range(6)] == [0, 0, 0, 0, None, None]
    assert len(throttle._last) == 4 and len(throttle._held) == 0
    assert throttle.allow(99, 20.0) == 0  # stale keys make room


def test_architecture_md_carries_the_lane_table_of_the_module() -> None:
    import node.net.lanes as lanes

    root = Path(lanes.__file__).resolve().parents[2]
    rows = [line for line in (lanes.__doc__ or "").splitlines() if line.startswith("|")]
    assert len(rows) > 10
    architecture = (root / "ARCHITECTURE.md").read_text().splitlines()
    assert [line for line in rows if line not in architecture] == []


def test_the_ban_window_is_configurable_through_the_wiring() -> None:
    import random

    from node import wiring
    from node.devnet import dev_genesis
    from node.net.memory import MemoryNetwork
    from node.net.peerset import BAN_WINDOW_S
    from proto.messages import FRAME_MAX
    from relay.core.config import HostConfiguration

    dev = dev_genesis(3, 1, 1, HostConfiguration())
    net = MemoryNetwork(random.Random(1), FRAME_MAX)
    validators = [k.public for k in dev.keys]
    default = wiring.relay_node("a", net.add_host(b"a" * 32), dev.relay, validators)
    short = wiring.relay_node("b", net.add_host(b"b" * 32), dev.relay, validators,
                              ban_window_s=7.0)
    assert default.net.peers.peerset.ban_window_s == BAN_WINDOW_S == 120.0
    assert short.net.peers.peerset.ban_window_s == 7.0
    # and the stack's manager is the host's admission check (bans hold at the handshake)
    assert short.net.host.admission == short.net.peers._admit


async def test_frames_over_budget_are_dropped_charged_and_the_ban_cuts_the_link_at_once(
        autojump_clock: Any) -> None:
    """In-memory network, no decay: a burst of 2, then each frame costs COST_FLOOD (-200,000);
    the sixth over budget crosses a -1,000,000 threshold. Nothing the peer sent after the frame
    that banned it is handled, though it came in the same read."""
    import trio
    from net_fixtures import CAPS, GOSSIP, Node, make_network

    from node.net.gossip import GossipEnvelope
    from node.net.transport import encode_wire_frame
    from proto.codec import encode
    from proto.network import ACCEPT, COST_FLOOD

    assert COST_FLOOD.value == -200_000
    net = make_network(7)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        a = Node(net, "a")
        b = Node(net, "b", ban_threshold=-1_000_000, decay_per_second=1.0)  # type: ignore[arg-type]
        b.peers.budgets[GOSSIP] = Budget(rate=0.0, burst=2.0)
        delivered: list[bytes] = []
        b.gossip.subscribe(1, lambda _s, _d: ACCEPT, lambda _s, data: delivered.append(data))
        for node in (a, b):
            await node.start(nursery)
        assert await a.peers.connect(b.id)
        # Twenty frames in one piece, as one read off a socket would hand them over.
        link = a.host.connections()[0]
        link.send_raw(b"".join(
            encode_wire_frame(GOSSIP, encode(GossipEnvelope(1, b"%d" % i)), CAPS)
            for i in range(20)))
        await trio.sleep(1)
        assert delivered == [b"0", b"1"]
        assert b.peers.over_budget[GOSSIP] == 6 and b.peers.bans == 1
        assert not b.peers.is_connected(a.id)
        assert not await a.peers.connect(b.id)  # refused at the handshake
        assert b.peers.refused_banned == 1
        nursery.cancel_scope.cancel()

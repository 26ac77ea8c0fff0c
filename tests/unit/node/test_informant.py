"""The informant (node/informant.py): its rate limits on a clock the test moves (a misbehaving peer
is one warning per period however many reports it earns, the next one counts those held back;
keys stay bounded), and its lines for two relay nodes over real TCP."""

from __future__ import annotations

import trio

from node import wiring
from node.devnet import dev_genesis
from node.informant import MISBEHAVIOUR_LINE_S, Informant, short
from node.net.tcp import TcpHost
from node.throttle import THROTTLE_KEYS, Throttle
from proto.keys import Keypair
from proto.messages import FRAME_MAX
from proto.network import COST_MINOR, MALICIOUS
from relay.core.config import HostConfiguration

GUARD_S = 30  # hang guard only


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_key_per_period_with_the_count_held_back() -> None:
    clock = Clock()
    throttle = Throttle(30.0, clock)
    assert throttle.allow("peer-a") == 0
    for _ in range(999):  # a flood of reports within the period
        assert throttle.allow("peer-a") is None
    assert throttle.allow("peer-b") == 0  # another peer is its own key
    clock.now = 29.9
    assert throttle.allow("peer-a") is None
    clock.now = 30.0
    assert throttle.allow("peer-a") == 1000
    assert throttle.allow("peer-a") is None


def test_keys_stay_bounded() -> None:
    clock = Clock()
    throttle = Throttle(30.0, clock)
    for i in range(THROTTLE_KEYS * 3):
        clock.now = i / 1000
        assert throttle.allow(i) == 0
    assert len(throttle._last) <= THROTTLE_KEYS and len(throttle._held) <= THROTTLE_KEYS


class Lines:
    """The informant's log lines, as (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, object]]] = []

    def __getattr__(self, level: str) -> object:
        return lambda event, **kw: self.lines.append((level, event, kw))

    def of(self, event: str) -> list[dict[str, object]]:
        return [kw for _, e, kw in self.lines if e == event]


async def test_peers_misbehaviour_and_the_summary_of_a_relay_node_over_tcp(
        nursery: trio.Nursery) -> None:
    """Two relay nodes over real TCP on 127.0.0.1: the informant of one logs the other's
    connection with its address, a flood of its reports as one warning (then one with the count
    held back), its ban, its disconnection as banned, and the periodic summary."""
    genesis = dev_genesis(3, 1, 1, HostConfiguration()).relay
    keys = [Keypair.from_name("relay-a"), Keypair.from_name("relay-b")]
    hosts = [TcpHost(k, b"g" * 32, FRAME_MAX) for k in keys]
    for h in hosts:
        await nursery.start(h.run, "127.0.0.1", 0)
    for h in hosts:
        for other, k in zip(hosts, keys, strict=True):
            assert other.port is not None
            h.add_address(k.public, "127.0.0.1", other.port)
    peers = [k.public for k in keys]
    a, b = (wiring.relay_node(f"relay-{i}", h, genesis, peers) for i, h in enumerate(hosts))
    clock = Clock()
    log = Lines()
    informant = Informant(a, hosts[0], log, interval_s=0.2, clock=clock)
    await nursery.start(a.run)
    await nursery.start(b.run)
    nursery.start_soon(informant.run)
    with trio.fail_after(GUARD_S):
        while not log.of("peer connected") or not [i for i in log.of("idle") if i["peers"]]:
            await trio.sleep(0.01)
    connected = log.of("peer connected")[0]
    assert connected["peer"] == short(keys[1].public)
    assert str(connected["address"]).startswith("127.0.0.1:") and connected["peers"] == 1
    idle = next(i for i in log.of("idle") if i["peers"])
    assert idle["peers"] == 1 and str(idle["best"]).startswith("#0 (0x") and "down" in idle

    for _ in range(50):
        a.net.peers.report(keys[1].public, COST_MINOR)
    assert len(log.of("peer misbehaved")) == 1
    first = log.of("peer misbehaved")[0]
    assert first["reason"] == COST_MINOR.reason and "more_reports" not in first
    clock.now += MISBEHAVIOUR_LINE_S
    a.net.peers.report(keys[1].public, COST_MINOR)
    assert log.of("peer misbehaved")[1]["more_reports"] == 49

    a.net.peers.report(keys[1].public, MALICIOUS)
    assert log.of("peer banned")[0]["reason"] == MALICIOUS.reason
    with trio.fail_after(GUARD_S):
        while not log.of("peer disconnected"):
            await trio.sleep(0.01)
    assert log.of("peer disconnected")[0]["reason"] == "banned"
    assert all(level == "warning" for level, e, _ in log.lines if "misbehaved" in e
               or "banned" in e)

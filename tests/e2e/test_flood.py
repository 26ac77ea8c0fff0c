"""A peer flooding a validator with valid-shaped gossip, against a small network of real processes
at 1 s slots (four validators, para 2000 with a collator), over TCP.

The flooder completes the handshake with a key of its own, declares itself a collator of para
2000 (as any collator may; a peer that does not is dropped at once), and sends `StatementMessage`s on the
statement topic (decodable, each different, at relay parents the target mostly does not know, so
each one alone is merely ignored) as fast as its link takes them. The target's gossip budget
(node/net/lanes.py) drops what is over it and charges the flooder until it is banned; then:
- the target's memory stayed bounded (its RSS, read from /proc while the flood lasts);
- the other peers were served: the relay chain kept growing and para 2000 kept being included,
  during the flood and after;
- the flooder was disconnected and its key is refused at the handshake, and the target logged the
  ban and the refusal, and counted both and the frames it dropped (its Prometheus metrics);
- no node died, no handler failed.
Figures (frames, rate, RSS, relay blocks to the ban) are printed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import trio

from node.chainspec import load_spec
from node.net.gossip import GossipEnvelope
from node.net.tcp import HandshakeRefused, TcpHost
from node.net.transport import ConnectionClosed
from node.wiregen import WireGenerator
from proto.codec import encode
from proto.keys import Keypair
from proto.messages import FRAME_MAX, Declare, Protocol, StatementMessage, encode_message
from proto.network import Topic

DISTINCT = 3000  # distinct messages, sent round and round (repeats cost the target as much)
RSS_GROWTH_MAX_KIB = 64 * 1024
FLOOD_SAFETY_S = 60  # the flood stops here if no ban came: the test then fails on the ban
REDIALS = 3


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def messages(seed: int) -> list[bytes]:
    gen = WireGenerator(random.Random(seed), max_blob=64)
    out = {encode(GossipEnvelope(Topic.STATEMENT, encode(gen.build(StatementMessage, 2048))))
           for _ in range(DISTINCT)}
    return sorted(out)


async def flood(genesis: bytes, port: int, pid: int, key: Keypair) -> dict[str, Any]:
    """Flood until the target closes the link; then redial with the same key."""
    bodies = messages(1)
    host = TcpHost(key, genesis, FRAME_MAX)
    conn = await host.dial_address("127.0.0.1", port)
    # A peer that is not a relay node must declare itself a collator or be dropped within a sixth
    # of a slot: the flooder declares for para 2000, as any collator may.
    await conn.send(Protocol.DIRECT, encode_message(Declare.sign(key, 2000, conn.remote)))
    figures: dict[str, Any] = {"rss_before": rss_kib(pid), "rss_peak": 0, "sent": 0}

    async def watch_rss() -> None:
        while True:
            figures["rss_peak"] = max(figures["rss_peak"], rss_kib(pid))
            await trio.sleep(0.1)

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_rss)
        with trio.move_on_after(FLOOD_SAFETY_S):
            try:
                while True:
                    for body in bodies:
                        await conn.send(Protocol.GOSSIP, body)
                        figures["sent"] += 1
            except ConnectionClosed:
                figures["closed_by_target"] = True
        figures["seconds"] = trio.current_time() - started
        nursery.cancel_scope.cancel()
    figures["rss_after"] = rss_kib(pid)
    refused = 0
    for _ in range(REDIALS):
        try:
            again = await host.dial_address("127.0.0.1", port)
        except HandshakeRefused:
            refused += 1
        else:
            await again.aclose()
    figures["redials_refused"] = refused
    return figures


@pytest.mark.asyncback_network(validators=4, paras=1, full_nodes=0)
def test_a_gossip_flood_is_cut_off_and_banned_while_the_network_goes_on(cluster: Any) -> None:
    cluster.wait_para_height(2000, 2)
    target = cluster.by_role("validator")[0]
    assert target.pid is not None
    genesis = load_spec(cluster.chain_spec_path).genesis_id()
    start_block, start_para = cluster.best_number(), cluster.para_height(2000)
    figures = trio.run(flood, genesis, target.ports["p2p"], target.pid, Keypair.from_name("flood"))
    ban_block, ban_para = cluster.best_number(), cluster.para_height(2000)
    rate = figures["sent"] / figures["seconds"]
    print(f"flood: {figures['sent']} frames in {figures['seconds']:.1f} s ({rate:.0f}/s), "
          f"banned within {ban_block - start_block} relay blocks; target RSS "
          f"{figures['rss_before']} KiB before, peak {figures['rss_peak']} KiB, "
          f"{figures['rss_after']} KiB after; redials refused {figures['redials_refused']}/"
          f"{REDIALS}; para 2000 {start_para} -> {ban_para}")
    assert figures.get("closed_by_target"), "the target never cut the flooder off"
    assert figures["redials_refused"] == REDIALS
    assert figures["rss_peak"] - figures["rss_before"] < RSS_GROWTH_MAX_KIB
    # The network went on while flooded and goes on after.
    cluster.wait_relay_height(ban_block + 4)
    assert cluster.para_height(2000) > start_para
    assert cluster.best_number(target) >= ban_block + 3  # the target itself kept importing
    metrics = target.metrics()
    dropped = metrics['asyncback_frames_over_budget_total{lane="gossip"}']
    print(f"target: {dropped:.0f} gossip frames dropped over budget, "
          f"{metrics['asyncback_peer_bans_total']:.0f} ban(s), "
          f"{metrics['asyncback_banned_handshakes_refused_total']:.0f} handshake(s) refused")
    assert dropped > 0 and metrics["asyncback_peer_bans_total"] >= 1
    assert metrics["asyncback_banned_handshakes_refused_total"] >= REDIALS
    log = target.log_path.read_text()
    assert "peer banned" in log and "banned peer refused at the handshake" in log
    assert cluster.crashed() == []
    cluster.assert_no_handler_errors()

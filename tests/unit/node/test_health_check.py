"""`asyncback health`, run as the command it is, against a relay node's real RPC on 127.0.0.1:
one look passes or names why not; `--wait` polls until the node answers, has peers and its chain
moves (a new best block and new finality), and otherwise says which of those it never saw.

The relay node is fed the ideal network's blocks (node/ideal.py) while a `--wait` runs; the
chain moves only when the test imports, so "no new block" is a certainty, not a race.
"""

from __future__ import annotations

import functools
import random
import re
import socket
import subprocess

import trio

from node import wiring
from node.cluster.launcher import LAUNCH, node_environment
from node.devnet import dev_genesis
from node.health_check import Look, judge
from node.ideal import IdealNetwork
from node.net.memory import MemoryNetwork
from node.rpc.server import serve_rpc
from node.run_config import RunConfig
from proto.keys import Keypair
from proto.messages import FRAME_MAX
from proto.relay_block import RelayBlock
from proto.statements import FinalityVote
from relay.core.config import HostConfiguration
from relay.service.full_node import RelayNodeService

VALIDATORS = 3
GUARD_S = 60  # hang guard only


@functools.cache
def ideal_chain() -> tuple[list[RelayBlock], list[Keypair]]:
    net = IdealNetwork(RunConfig(validators=VALIDATORS, paras=1, relay_blocks=6))
    net.run()
    return net.blocks, net.keys


async def health(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process([*LAUNCH, "health", *args], env=node_environment(),
                                  capture_stdout=True, capture_stderr=True, check=False)


async def relay_node(nursery: trio.Nursery, *, with_peer: bool) -> tuple[RelayNodeService, str]:
    network = MemoryNetwork(random.Random(0), FRAME_MAX, record_trace=False)
    await nursery.start(network.run)
    genesis = dev_genesis(VALIDATORS, 1, 1, HostConfiguration()).relay
    keys = [Keypair.from_name("relay-a"), Keypair.from_name("relay-b")][:1 + with_peer]
    peers = [k.public for k in keys]
    nodes = [wiring.relay_node(f"relay-{i}", network.add_host(k.public), genesis, peers)
             for i, k in enumerate(keys)]
    for n in nodes:
        await nursery.start(n.run)
    with trio.fail_after(GUARD_S):
        while with_peer and not nodes[0].net.peers.connected_peers():
            await trio.sleep(0.01)
    port = await nursery.start(serve_rpc, nodes[0], "127.0.0.1", 0)
    return nodes[0], f"http://127.0.0.1:{port}/"


def import_and_finalize(node: RelayNodeService, number: int) -> None:
    blocks, keys = ideal_chain()
    block = blocks[number - 1]
    node.notify_imported(node.chain.import_block(block).imported)
    for i, key in enumerate(keys):
        node.chain.note_vote(FinalityVote.sign(key, block.hash(), number, 0, i))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_rpc_is_named_with_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    out = await health("--rpc-url", url, "--wait", "1")
    assert out.returncode == 1
    assert out.stderr.decode().strip() == f"unhealthy: RPC unreachable at {url}: Connection refused"


async def test_a_node_without_peers_or_progress_says_so(nursery: trio.Nursery) -> None:
    _node, url = await relay_node(nursery, with_peer=False)
    out = await health("--rpc-url", url)
    assert out.returncode == 1 and out.stderr.decode().strip() == "unhealthy: no peers"
    assert (await health("--rpc-url", url, "--ignore-peers")).returncode == 0
    out = await health("--rpc-url", url, "--ignore-peers", "--wait", "2")
    assert out.returncode == 1
    assert re.fullmatch(r"unhealthy: no new block in \d+s \(best #0\); finality not advancing "
                        r"in \d+s \(finalized #0, best #0\)", out.stderr.decode().strip())


async def test_wait_passes_once_the_chain_moves(nursery: trio.Nursery) -> None:
    node, url = await relay_node(nursery, with_peer=True)
    import_and_finalize(node, 1)
    result: list[subprocess.CompletedProcess[bytes]] = []

    async def run_health() -> None:
        result.append(await health("--rpc-url", url, "--wait", str(GUARD_S)))

    async with trio.open_nursery() as waiting:
        waiting.start_soon(run_health)
        number = 1
        with trio.fail_after(GUARD_S):
            while not result:
                await trio.sleep(1.5)  # longer than a poll: the command sees #1 first
                if number < len(ideal_chain()[0]):
                    number += 1
                    import_and_finalize(node, number)
    assert result[0].returncode == 0, result[0].stderr
    assert b'"isSyncing": false' in result[0].stdout


def test_syncing_and_a_collator_standing_still_are_reasons() -> None:
    syncing = Look({"peers": 3, "isSyncing": True, "shouldHavePeers": True}, 7, 5)
    assert judge(syncing, None, 0, ignore_peers=False).reasons == ["syncing (best #7)"]
    para = Look({"peers": 1, "isSyncing": False, "shouldHavePeers": True}, 4, None, "para")
    assert judge(para, para, 9, ignore_peers=False).reasons == ["no new para block in 9s "
                                                                 "(best #4)"]
    moved = Look(para.health, 5, None, "para")
    assert judge(moved, para, 9, ignore_peers=False).healthy

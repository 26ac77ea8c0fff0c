"""A relay node records its best and finalized heads in its store only once their blocks are
stored: blocks are imported as they arrive and stored when their batch's turn comes, so the
chain can already hold a block of a batch still queued (a loaded machine made validators in
containers exit with "best head ... is not a stored relay block"). Bodies far below finality
leave memory once stored, and are read back from the store for a peer that syncs or an RPC
caller."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio

from node import wiring
from node.devnet import dev_genesis
from node.ideal import IdealNetwork
from node.net.memory import MemoryNetwork
from node.run_config import RunConfig
from node.storage import NodeStore
from proto.codec import decode, encode
from proto.keys import Keypair
from proto.messages import FRAME_MAX, BlockRequest, BlockResponse
from proto.statements import FinalityVote
from relay.core.config import HostConfiguration
from relay.service import full_node


def relay_node_with_store(tmp_path: Path) -> tuple[full_node.RelayNodeService, NodeStore]:
    genesis = dev_genesis(3, 1, 1, HostConfiguration()).relay
    key = Keypair.from_name("relay-a")
    store = NodeStore(tmp_path / "node.sqlite")
    node = wiring.relay_node("relay-a", MemoryNetwork(random.Random(0), FRAME_MAX).add_host(
        key.public), genesis, [key.public], store=store)
    return node, store


def test_heads_of_batches_still_queued_are_recorded_with_their_batch(tmp_path: Path) -> None:
    ideal = IdealNetwork(RunConfig(validators=3, paras=1, relay_blocks=3))
    ideal.run()
    node, store = relay_node_with_store(tmp_path)
    b1, b2 = ideal.blocks[0], ideal.blocks[1]
    first = node.chain.import_block(b1).imported
    node.notify_imported(first)
    second = node.chain.import_block(b2).imported
    node.notify_imported(second)
    for i, k in enumerate(ideal.keys):  # finality reaches #2 before its batch is stored
        node.chain.note_vote(FinalityVote.sign(k, b2.hash(), 2, 0, i))
    assert node.chain.best_hash == b2.hash() and node.chain.finalized.number == 2

    node._persist(first)  # #2 is still queued: neither head can be recorded yet
    assert store.best() is None and store.finalized() is None
    assert store.relay_block_number(b1.hash()) == 1

    node._persist(second)
    best = store.best()
    assert best is not None and best.hash == b2.hash()
    finalized = store.finalized()
    assert finalized is not None and (finalized.hash, finalized.number) == (b2.hash(), 2)
    store.close()


def test_bodies_below_finality_are_served_from_the_store(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(full_node, "BODIES_KEEP_BELOW_FINALIZED", 2)
    ideal = IdealNetwork(RunConfig(validators=3, paras=1, relay_blocks=8))
    ideal.run()
    node, store = relay_node_with_store(tmp_path)
    for block in ideal.blocks:
        node._persist(node.chain.import_block(block).imported)
    tip = ideal.blocks[-1]
    for i, k in enumerate(ideal.keys):
        node.chain.note_vote(FinalityVote.sign(k, tip.hash(), 8, 0, i))
    node._persist([])
    assert sorted(b.header.number for b in node.chain.blocks.values()) == [6, 7, 8]
    assert node.block_body(ideal.blocks[0].hash()) == ideal.blocks[0]
    request = encode(BlockRequest(tip.hash(), 1, 16))
    served = trio.run(node._serve_blocks, node.net.peer_id, request)
    assert served is not None and decode(served, BlockResponse).blocks == ideal.blocks
    store.close()

"""Reverting relay blocks (a candidate concluded invalid): `blocks_to_revert` over a node's
chain, `RelayChain.revert`, and what the chain does afterwards."""

from __future__ import annotations

import pytest
from relay_fixtures import Chain

from proto.statements import FinalityVote
from relay.core.block_tree import BlockTreeError
from relay.core.disputes.revert import blocks_to_revert
from relay.core.relay_chain import RelayChain


def node_chain(blocks: int) -> tuple[Chain, RelayChain, list]:
    chain = Chain(n_validators=4)
    node = RelayChain(chain.headers[0], chain.states[0])
    made = []
    for _ in range(blocks):
        block = chain.block()
        node.import_block(block)
        made.append(block)
    return chain, node, made


def test_a_revert_drops_the_including_block_and_everything_on_it() -> None:
    chain, node, blocks = node_chain(5)
    plan = blocks_to_revert(node.tree, [blocks[2].hash()])  # block #3 backed the bad candidate
    assert plan.blocks == tuple(b.hash() for b in blocks[2:]) and plan.revert_numbers == (3,)
    gone = node.revert(list(plan.blocks))
    assert gone == list(plan.blocks)
    assert node.best.number == 2 and node.best_hash == blocks[1].hash()
    assert node.state(blocks[3].hash()) is None  # nothing builds on it again
    # a child of a reverted block arriving later is refused, not imported
    late = chain.block()
    with pytest.raises(BlockTreeError):
        node.import_block(late)
    assert node.best.number == 2


def test_a_revert_drops_votes_for_the_reverted_blocks_and_never_touches_finality() -> None:
    chain, node, blocks = node_chain(4)
    votes = [FinalityVote.sign(chain.keys[v], blocks[0].hash(), 1, 0, v) for v in range(3)]
    for vote in votes:
        node.note_vote(vote)
    assert node.finalized.number == 1
    node.note_vote(FinalityVote.sign(chain.keys[3], blocks[3].hash(), 4, 0, 3))
    plan = blocks_to_revert(node.tree, [blocks[0].hash(), blocks[2].hash()])
    assert plan.finalized == (blocks[0].hash(),)  # reported, never reverted
    node.revert(list(plan.blocks))
    assert node.finalized.number == 1 and node.best.number == 2
    assert 3 not in node.tree.votes  # its vote was for a block that went

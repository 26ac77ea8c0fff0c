"""Availability keeps the chunks of a candidate while any leaf still has it pending availability,
however far its relay parent falls below finality: a candidate times out only at a group
rotation, so when its backers were cut off for more than the availability horizon, pruning by
relay parent threw away the chunks the others needed once the link healed, and the para stalled
until the next rotation. Once included, the chunks stay while the including block is not final:
its approval checkers rebuild the candidate from them (pruned at inclusion, they never could, and
finality stopped for good). Once final, the chunks go by age as before."""

from __future__ import annotations

import random

from relay_fixtures import Chain, back, bitfields, make_candidate

from node import wiring
from node.net.memory import MemoryNetwork
from proto.availability import ErasureChunk
from proto.candidate import AvailableData, PersistedValidationData, PoV
from proto.messages import FRAME_MAX
from proto.relay_block import RelayBlock
from proto.statements import FinalityVote
from relay.core.config import HostConfiguration
from relay.core.horizons import availability_horizon
from relay.service.validator import ValidatorService

PARA = 1000


def validator_following(chain: Chain, index: int) -> ValidatorService:
    network = MemoryNetwork(random.Random(0), FRAME_MAX)
    key = chain.keys[index]
    return wiring.validator("v", key, network.add_host(key.public),
                            (chain.headers[0], chain.states[0]), [k.public for k in chain.keys])


def follow(node: ValidatorService, chain: Chain, blocks: list[RelayBlock]) -> None:
    """Import `blocks` and finalize the last one (every validator votes)."""
    for block in blocks:
        node.chain.import_block(block)
    finalize_best(node, chain)


def finalize_best(node: ValidatorService, chain: Chain) -> None:
    head = node.chain.best
    for i, k in enumerate(chain.keys):
        node.chain.note_vote(FinalityVote.sign(k, head.hash(), head.number, 0, i))
    assert node.chain.finalized.number == head.number


def test_chunks_of_a_candidate_pending_at_a_leaf_outlive_the_horizon() -> None:
    host = HostConfiguration(group_rotation_frequency=10_000)  # no timeout in this test
    chain = Chain(n_validators=5, paras=((PARA, 1),), config=host)
    blocks = [chain.block()]
    rp = chain.rp()
    receipt = make_candidate(rp, PARA, bytes([PARA % 256, 0]), b"head-1")
    blocks.append(chain.block([back(chain, receipt, 0, rp.number)]))
    assert [p.hash for p in chain.state.inclusion.pending[PARA]] == [receipt.hash()]
    horizon = availability_horizon(host)
    blocks += [chain.block() for _ in range(horizon + 3)]  # no bitfields: it stays pending

    node = validator_following(chain, 0)
    c = receipt.hash()
    chunks = [ErasureChunk(b"chunk", i, []) for i in range(5)]
    data = AvailableData(PoV(b"pov"), PersistedValidationData(b"", rp.number, rp.state_root, 1))
    node.availability.store_all(c, rp.hash(), data, chunks)
    follow(node, chain, blocks)
    assert node.chain.finalized.number - horizon > rp.number  # old enough to be pruned by age
    assert node.availability.pending_at_leaves() == {c}
    node.availability._prune()
    assert node.availability.all[c] == chunks and node.availability.own[c] == chunks[0]
    assert node.availability.available[c] == data

    # Made available and included: no leaf has it pending, but the including block waits for
    # its approval checkers, who rebuild the candidate from these chunks.
    node.chain.import_block(chain.block(bitfields=bitfields(chain, {0})))
    assert PARA not in chain.state.inclusion.pending or not chain.state.inclusion.pending[PARA]
    assert node.availability.pending_at_leaves() == set()
    assert node.availability.included_unfinalized() == {c}
    node.availability._prune()
    assert node.availability.all[c] == chunks and node.availability.own[c] == chunks[0]
    assert node.availability.available[c] == data

    # The including block final: its chunks go by age.
    finalize_best(node, chain)
    assert node.availability.included_unfinalized() == set()
    node.availability._prune()
    assert c not in node.availability.all and c not in node.availability.own
    assert c not in node.availability.available  # the backer's whole copy goes with its chunks
    assert c not in node.availability.relay_parent_of

"""A validator that lacks its chunk of a pending candidate keeps fetching it across the slot and
beyond, until it holds it or the candidate is no longer pending at any leaf (issue 14). The fetch
used to end with the quarter slot of the bitfield it was started for: a backer reachable only
after that (a backing group just healed from a partition) was asked again only when the next
block came, for another quarter slot, and one heal in nine took 8 blocks to include the para.

Two validators on the in-memory network, in virtual time: the backer holds every chunk; the
fetcher follows a chain where the candidate is pending and is cut off from the backer."""

from __future__ import annotations

import random

import msgspec
import trio
import trio.testing
from relay_fixtures import Chain, back, bitfields, make_candidate

from node import wiring
from node.net.memory import MemoryNetwork
from proto.availability import make_chunks
from proto.candidate import AvailableData, CommittedCandidateReceipt, PersistedValidationData, PoV
from proto.messages import FRAME_MAX
from relay.core.config import HostConfiguration
from relay.service.validator import ValidatorService

PARA = 1000
N = 5


class Setup:
    def __init__(self) -> None:
        # No group rotation in this test: the candidate would time out at one. A second para so
        # that there are two backing groups (the fetcher is in the other).
        self.chain = Chain(n_validators=N, paras=((PARA, 1), (PARA + 1, 1)),
                           config=HostConfiguration(group_rotation_frequency=10_000))
        self.blocks = [self.chain.block()]
        rp = self.chain.rp()
        receipt = make_candidate(rp, PARA, bytes([PARA % 256, 0]), b"head-1")
        data = AvailableData(PoV(b"the pov"), PersistedValidationData(b"", rp.number,
                                                                      rp.state_root, 1024))
        root, self.chunks = make_chunks(data, N)
        receipt = CommittedCandidateReceipt(
            msgspec.structs.replace(receipt.descriptor, erasure_root=root), receipt.commitments)
        self.blocks.append(self.chain.block([back(self.chain, receipt, 0, rp.number)]))
        assert self.chain.filtered[-1] == [], self.chain.filtered[-1]
        self.candidate = receipt.hash()
        [pending] = self.chain.state.inclusion.pending[PARA]
        group = self.chain.state.scheduler.groups[pending.backing_group]
        self.backer_index = group[0]  # the one backer running here (the others are down)
        self.fetcher_index = next(i for i in range(N) if i not in group)
        self.network = MemoryNetwork(random.Random(0), FRAME_MAX)
        self.backer = self.validator(self.backer_index)
        self.fetcher = self.validator(self.fetcher_index)
        self.backer.availability.store_all(self.candidate, rp.hash(), data, self.chunks)
        for block in self.blocks:
            self.fetcher.chain.import_block(block)
        self.slot_s = self.fetcher.slot_s

    def validator(self, index: int) -> ValidatorService:
        key = self.chain.keys[index]
        return wiring.validator(f"v{index}", key, self.network.add_host(key.public),
                                (self.chain.headers[0], self.chain.states[0]),
                                [k.public for k in self.chain.keys])

    async def start(self, nursery: trio.Nursery) -> None:
        """The network stacks and the fetcher's availability only (no authoring: no new leaf
        arrives unless the test imports one), connected, then cut apart."""
        await nursery.start(self.network.run)
        for node in (self.backer, self.fetcher):
            await nursery.start(node.net.run)
        self.fetcher.availability.start(nursery)
        assert await self.fetcher.net.peers.connect(self.backer.net.peer_id)
        self.network.partition({self.fetcher.net.peer_id}, {self.backer.net.peer_id})

    @property
    def fetching(self) -> bool:
        return self.candidate in self.fetcher.availability.fetching

    @property
    def held(self) -> bool:
        return self.candidate in self.fetcher.availability.own


def run(main: object) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


def test_a_chunk_out_of_reach_past_the_bitfield_is_fetched_once_the_backer_answers() -> None:
    s = Setup()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await s.start(nursery)
            s.fetcher.availability.on_leaf(s.fetcher.chain.best)
            await trio.sleep(s.slot_s / 2)  # past the bitfield of this leaf: signed without it
            assert not s.held and s.fetching
            assert s.fetcher.availability.bitfields_for(s.fetcher.chain.best_hash)[0].bits == \
                [False, False]
            s.network.heal()
            await trio.sleep(s.slot_s / 3)  # still before the next block
            assert s.held and not s.fetching
            assert s.fetcher.availability.own[s.candidate] == s.chunks[s.fetcher_index]
            nursery.cancel_scope.cancel()

    run(main)


def test_the_fetch_ends_once_no_leaf_has_the_candidate_pending() -> None:
    s = Setup()
    # Made available by the others' bitfields and included: pending nowhere after this block.
    others = [i for i in range(N) if i != s.fetcher_index]
    included = s.chain.block(bitfields=bitfields(s.chain, {0}, others))
    assert not s.chain.filtered[-1], s.chain.filtered[-1]
    assert not s.chain.state.inclusion.pending.get(PARA)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await s.start(nursery)
            s.fetcher.availability.on_leaf(s.fetcher.chain.best)
            await trio.sleep(2 * s.slot_s)  # out of reach: still asking, across slots
            assert s.fetching and not s.held
            s.fetcher.chain.import_block(included)
            await trio.sleep(s.slot_s / 3)  # the next round finds it pending nowhere
            assert not s.fetching and not s.held
            nursery.cancel_scope.cancel()

    run(main)

"""An approval checker's recovery (`relay/service/recovery.py`): a small candidate comes whole from
one backer in one request; a backer serving data that does not match the erasure root is charged
and the checker falls back to the chunks; with the backers out of reach the chunks still serve.

Five validators on the in-memory network, in virtual time: 0, 1 and 2 backed the candidate (they
hold its data and every chunk), 3 checks it, 4 holds its own chunk. Two chunks recover it."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from relay_fixtures import Chain

from node import wiring
from node.net.memory import MemoryNetwork
from node.net.stack import NetworkStack
from proto.availability import make_chunks
from proto.candidate import AvailableData, PersistedValidationData, PoV
from proto.messages import FRAME_MAX, WireMessage
from proto.network import COST_MAJOR, Kind, PeerId, ReputationChange
from relay.service import recovery
from relay.service.validator import ValidatorService

N = 5
BACKERS = (0, 1, 2)
CHECKER = 3
CANDIDATE = b"\x07" * 32


def _data(pov: bytes) -> AvailableData:
    return AvailableData(PoV(pov), PersistedValidationData(b"parent head", 1, b"\x01" * 32, 1024))


class Setup:
    def __init__(self) -> None:
        chain = Chain(n_validators=N)
        self.data = _data(b"the pov " * 100)
        self.root, chunks = make_chunks(self.data, N)
        self.network = MemoryNetwork(random.Random(0), FRAME_MAX)
        self.nodes = [wiring.validator(f"v{i}", key, self.network.add_host(key.public),
                                       (chain.headers[0], chain.states[0]),
                                       [k.public for k in chain.keys])
                      for i, key in enumerate(chain.keys)]
        for i, node in enumerate(self.nodes):
            if i in BACKERS:
                node.availability.store_all(CANDIDATE, chain.headers[0].hash(), self.data, chunks)
            else:
                node.availability.own[CANDIDATE] = chunks[i]
        self.checker: ValidatorService = self.nodes[CHECKER]
        net = self.checker.net
        assert isinstance(net, NetworkStack)
        self.asked: list[tuple[int, int]] = []  # (kind, validator index) the checker asked
        self.charged: list[tuple[PeerId, ReputationChange]] = []
        net.peers.add_report_listener(lambda peer, change, _: self.charged.append((peer, change)))
        request = net.request
        index_of = {k.public: i for i, k in enumerate(chain.keys)}

        async def counted(peer: PeerId, kind: int, message: WireMessage) -> bytes:
            self.asked.append((kind, index_of[peer]))
            return await request(peer, kind, message)

        net.request = counted  # type: ignore[method-assign]

    def asked_of(self, kind: int) -> list[int]:
        return [i for k, i in self.asked if k == kind]

    def run(self, test: Callable[[], Awaitable[None]]) -> None:
        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.network.run)
                for node in self.nodes:
                    await nursery.start(node.net.run)
                for node in self.nodes:
                    if node is not self.checker:
                        assert await self.checker.net.peers.connect(node.net.peer_id)
                await test()
                nursery.cancel_scope.cancel()

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    async def recover(self) -> AvailableData | None:
        return await self.checker.approvals.recovery.recover(CANDIDATE, self.root, N, BACKERS)


def test_a_small_candidate_comes_from_one_backer_in_one_request() -> None:
    s = Setup()

    async def test() -> None:
        assert await s.recover() == s.data
        # Starting at its own index in the group (3 mod 3): checkers spread over the backers.
        assert s.asked == [(Kind.AVAILABLE_DATA, BACKERS[CHECKER % len(BACKERS)])]
        r = s.checker.approvals.recovery
        assert (r.recovered, r.recovered_from_backers, r.failed) == (1, 1, 0)
        assert s.charged == []

    s.run(test)


def test_backers_serving_other_data_are_charged_and_the_chunks_serve() -> None:
    s = Setup()
    for b in BACKERS:  # what they hold is not what the erasure root commits to
        s.nodes[b].availability.available[CANDIDATE] = _data(b"something else")

    async def test() -> None:
        assert await s.recover() == s.data
        assert sorted(s.asked_of(Kind.AVAILABLE_DATA)) == list(BACKERS)
        assert s.asked_of(Kind.CHUNK)  # fell back to the chunks
        backers = {s.nodes[b].net.peer_id for b in BACKERS}
        assert sorted(s.charged) == sorted((p, COST_MAJOR) for p in backers)
        r = s.checker.approvals.recovery
        assert (r.recovered, r.recovered_from_backers) == (1, 0)

    s.run(test)


def test_with_the_backers_out_of_reach_the_chunks_serve() -> None:
    s = Setup()

    async def test() -> None:
        s.network.partition({s.checker.net.peer_id}, {s.nodes[b].net.peer_id for b in BACKERS})
        assert await s.recover() == s.data
        assert sorted(s.asked_of(Kind.AVAILABLE_DATA)) == list(BACKERS)
        # Its own chunk and validator 4's (two of five); the backers asked too (spare requests).
        assert 4 in s.asked_of(Kind.CHUNK)
        assert s.charged == []  # out of reach is no misbehaviour
        r = s.checker.approvals.recovery
        assert (r.recovered, r.recovered_from_backers) == (1, 0)

    s.run(test)


def test_a_large_candidate_or_no_own_chunk_goes_to_the_chunks_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    s = Setup()
    chunk = s.checker.availability.own[CANDIDATE]
    # Our chunk times the recovery threshold (two of five) estimates the data's size.
    monkeypatch.setattr(recovery, "SMALL_POV_LIMIT", 2 * len(chunk.chunk))

    async def test() -> None:
        assert await s.recover() == s.data
        assert s.asked_of(Kind.AVAILABLE_DATA) == []
        monkeypatch.setattr(recovery, "SMALL_POV_LIMIT", 2 * len(chunk.chunk) + 1)
        del s.checker.availability.own[CANDIDATE]  # no estimate without it: polkadot's choice
        assert await s.recover() == s.data
        assert s.asked_of(Kind.AVAILABLE_DATA) == []
        assert await s.checker.approvals.recovery.from_backers(CANDIDATE, s.root, N,
                                                               BACKERS) is None
        s.checker.availability.own[CANDIDATE] = chunk  # small again, with our chunk
        assert await s.recover() == s.data
        assert len(s.asked_of(Kind.AVAILABLE_DATA)) == 1

    s.run(test)

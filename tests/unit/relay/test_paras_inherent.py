"""Spec §7 scenarios 51–59: `paras_inherent` (polkadot-sdk `paras_inherent/tests.rs`)."""

from __future__ import annotations

import msgspec
import pytest
from relay_fixtures import Chain, back, bitfields, make_candidate

from proto.relay_block import ParachainsInherentData, RelayBlock
from proto.ump_signals import ApprovedPeer, SelectCore
from relay.core.config import HostConfiguration
from relay.core.events import EventKind
from relay.core.inherent_errors import ANY_IMPORT_ERROR
from relay.core.paras_inherent import CANDIDATE_WEIGHT, inherent_weight
from relay.core.runtime import build_block, claim_queue, import_block


def kinds(chain: Chain) -> list[EventKind]:
    return [e.kind for e in chain.events[-1]]


def genesis_head(p: int) -> bytes:
    return bytes([p % 256, 0])


def test_s7_51_include_backed_candidates() -> None:
    chain = Chain(paras=((1, 1), (2, 1)))
    rp = chain.head
    first = [make_candidate(rp, p, genesis_head(p), bytes([p, 1]), core=p - 1) for p in (1, 2)]
    chain.block([back(chain, c, p - 1, rp.number) for p, c in zip((1, 2), first, strict=True)])
    rp = chain.head
    second = [make_candidate(rp, p, bytes([p, 1]), bytes([p, 2]), core=p - 1) for p in (1, 2)]
    chain.block([back(chain, c, p - 1, rp.number) for p, c in zip((1, 2), second, strict=True)],
                bitfields(chain, {0, 1}))
    assert chain.filtered[-1] == []
    assert kinds(chain) == [EventKind.INCLUDED] * 2 + [EventKind.BACKED] * 2
    occ = chain.state.inclusion.occupied_cores()
    assert {core: c.hash for core, c in occ.items()} == {0: second[0].hash(), 1: second[1].hash()}


def _elastic_chain() -> Chain:
    return Chain(n_validators=10, paras=((0, 1), (1, 1), (2, 3)))


def _elastic_candidates(chain: Chain, cores_of_2: list[int]) -> list:
    rp = chain.head
    out = [back(chain, make_candidate(rp, p, genesis_head(p), bytes([p, 1]), core=p), p, rp.number)
           for p in (0, 1)]
    head = genesis_head(2)
    for i, core in enumerate(cores_of_2):
        c = make_candidate(rp, 2, head, bytes([2, i + 1]), core=core,
                           signals=[SelectCore(core - 2, 0)])
        out.append(back(chain, c, core, rp.number))
        head = bytes([2, i + 1])
    return out


def test_s7_52_include_backed_candidates_elastic_scaling() -> None:
    chain = _elastic_chain()
    chain.block(_elastic_candidates(chain, [2, 3, 4]))
    assert chain.filtered[-1] == [] and kinds(chain) == [EventKind.BACKED] * 5
    assert [c.core for c in chain.state.inclusion.pending[2]] == [2, 3, 4]
    # make everything available: all enacted, the head is the last of the chain
    chain.block(bitfields=bitfields(chain, {0, 1, 2, 3, 4}))
    assert kinds(chain) == [EventKind.INCLUDED] * 5
    assert chain.state.paras.heads[2] == bytes([2, 3])
    # cores still occupied are not offered again: with core 0 and 4 unavailable, their
    # candidates are filtered and para 2 gets only the cores that are free
    chain2 = _elastic_chain()
    chain2.block(_elastic_candidates(chain2, [2, 3, 4]))
    chain2.block(bitfields=bitfields(chain2, {1, 2, 3}))
    assert [c.core for c in chain2.state.inclusion.pending[2]] == [4]
    rp = chain2.head
    again = [back(chain2, make_candidate(rp, 0, bytes([0, 1]), bytes([0, 2]), core=0), 0, rp.number)]
    # para 2's latest pending head is the candidate still on core 4: chain on it
    head = chain2.state.inclusion.pending[2][-1].commitments_head
    for i, core in enumerate([2, 3]):
        c = make_candidate(rp, 2, head, bytes([2, 10 + i]), core=core, signals=[SelectCore(core - 2, 0)])
        again.append(back(chain2, c, core, rp.number))
        head = bytes([2, 10 + i])
    chain2.block(again)
    assert any("para 0" in f for f in chain2.filtered[-1])  # core 0 still occupied
    assert [c.core for c in chain2.state.inclusion.pending[2]] == [4, 2, 3]


def test_s7_53_session_change_buffered() -> None:
    chain = Chain(paras=((1, 1),), config=HostConfiguration(session_length=4))
    chain.empty_blocks(1)
    rp = chain.head
    c = make_candidate(rp, 1, genesis_head(1), b"one")
    chain.block([back(chain, c, 0, rp.number)])
    queue_before = claim_queue(chain.state)
    rp = chain.head
    c2 = make_candidate(rp, 1, b"one", b"two")
    chain.block([back(chain, c2, 0, rp.number)], bitfields(chain, {0}))  # block 3: session ends
    assert kinds(chain) == [EventKind.INCLUDED]
    assert any("session change" in f for f in chain.filtered[-1])
    assert claim_queue(chain.state) == queue_before
    assert chain.state.session_index == 1


def test_s7_54_v2_signal_and_session_checks() -> None:
    chain = Chain(n_validators=6, paras=((1, 1), (2, 2)))
    rp = chain.head
    three = [SelectCore(0, 0), ApprovedPeer(b"p"), SelectCore(1, 0)]
    bad = make_candidate(rp, 2, genesis_head(2), b"x", core=1, signals=three)
    chain_copy_parent, parent_state = chain.head, chain.state
    chain.block([back(chain, bad, 1, rp.number)])
    assert kinds(chain) == [] and "InvalidUpwardMessages" in chain.filtered[-1][0]
    # enter() with the same candidate fails the whole block
    data = ParachainsInherentData([], [back(chain, bad, 1, rp.number)], chain_copy_parent.hash())
    block, _, _, _ = build_block(chain_copy_parent, parent_state, data, chain_copy_parent.slot + 1,
                                 chain.keys[1])
    forced = msgspec.structs.replace(block.body, backed_candidates=data.backed_candidates)
    header = msgspec.structs.replace(block.header, body_root=RelayBlock.body_root(forced))
    with pytest.raises(ANY_IMPORT_ERROR, match="FilteredDuringExecution"):
        import_block(chain_copy_parent, parent_state, RelayBlock(header.sealed(chain.keys[1]), forced))
    # no core selector on a multi-core para, with a core the para does not own
    rp = chain.head
    foreign = make_candidate(rp, 2, genesis_head(2), b"y", core=0)
    chain.block([back(chain, foreign, 0, rp.number)])
    assert "InvalidCoreIndex" in chain.filtered[-1][0]
    # session index 100 in the last candidate: exactly that one is filtered
    rp = chain.head
    ok = make_candidate(rp, 1, genesis_head(1), b"a", core=0)
    wrong = make_candidate(rp, 2, genesis_head(2), b"b", core=1, session=100)
    chain.block([back(chain, ok, 0, rp.number), back(chain, wrong, 1, rp.number)])
    assert kinds(chain) == [EventKind.BACKED]
    assert len(chain.filtered[-1]) == 1 and "InvalidSessionIndex" in chain.filtered[-1][0]


def test_s7_55_v2_descriptors_accepted() -> None:
    chain = Chain(n_validators=6, paras=((1, 1), (2, 2)))
    rp = chain.head
    single = make_candidate(rp, 1, genesis_head(1), b"a", core=0)  # no SelectCore needed
    e1 = make_candidate(rp, 2, genesis_head(2), b"b1", core=2, signals=[SelectCore(1, 0)])
    e2 = make_candidate(rp, 2, b"b1", b"b2", core=1, signals=[SelectCore(0, 0)])
    chain.block([back(chain, single, 0, rp.number), back(chain, e1, 2, rp.number),
                 back(chain, e2, 1, rp.number)])
    assert chain.filtered[-1] == [] and kinds(chain) == [EventKind.BACKED] * 3


def test_s7_56_candidate_relay_parent_ordering() -> None:
    config = HostConfiguration(allowed_ancestry_len=3, lookahead=4)

    def run(rps: dict[int, list[int]], context: dict[int, int] | None = None) -> dict[int, int]:
        c2 = Chain(n_validators=6, paras=((1, 3), (2, 3)), config=config)
        c2.empty_blocks(3)
        if context:
            c2.states[-1] = c2.state.copy()
            c2.state.paras.most_recent_context.update(context)
        items = []
        for para, numbers in rps.items():
            head = genesis_head(para)
            cores = [c for c, p in enumerate(c2.state.scheduler.assignments) if p == para]
            for i, n in enumerate(numbers):
                rp = c2.rp(n)
                c = make_candidate(rp, para, head, bytes([para, i + 1]), core=cores[i],
                                   signals=[SelectCore(i, 0)])
                items.append(back(c2, c, cores[i], n))
                head = bytes([para, i + 1])
        data = ParachainsInherentData([], items, c2.head.hash())
        slot = c2.head.slot + 1
        _, _state, events, _ = build_block(c2.head, c2.state, data, slot, c2.keys[slot % 6])
        counts: dict[int, int] = {}
        for e in events:
            counts[e.para_id] = counts.get(e.para_id, 0) + 1
        return counts

    assert run({1: [3, 2, 3], 2: [2, 3, 3]}) == {1: 1, 2: 3}
    assert run({1: [3, 2, 3], 2: [2, 3, 3]}, {1: 4, 2: 2}) == {2: 3}


def test_s7_57_nothing_scheduled_and_dropping_descendants() -> None:
    chain = Chain(paras=((1, 1),))
    rp = chain.head
    a = make_candidate(rp, 1, genesis_head(1), b"a")
    chain.block([back(chain, a, 0, rp.number)])
    rp = chain.head
    b = make_candidate(rp, 1, b"a", b"b")
    chain.block([back(chain, b, 0, rp.number)])  # the core is still occupied: nothing scheduled
    assert kinds(chain) == [] and "UnscheduledCandidate" in chain.filtered[-1][0]
    elastic = Chain(n_validators=6, paras=((1, 2),))
    rp = elastic.head
    first = make_candidate(rp, 1, genesis_head(1), b"a", core=0, signals=[SelectCore(0, 0)])
    second = make_candidate(rp, 1, b"a", b"b", core=1, signals=[SelectCore(1, 0)])
    elastic.block([back(elastic, first, 0, rp.number, tamper=True), back(elastic, second, 1, rp.number)])
    assert kinds(elastic) == [] and len(elastic.filtered[-1]) == 1  # the second went with it
    elastic.block([back(elastic, first, 0, rp.number), back(elastic, second, 1, rp.number, tamper=True)])
    assert kinds(elastic) == [EventKind.BACKED]


def test_s7_58_disabled_validators() -> None:
    config = HostConfiguration(minimum_backing_votes=1)
    chain = Chain(n_validators=4, paras=((1, 1),), config=config)  # one group of 4
    rp = chain.head
    c = make_candidate(rp, 1, genesis_head(1), b"a")
    chain.states[-1] = chain.state.copy()
    chain.state.disabled = frozenset({3})  # a disabled non-signer changes nothing
    chain.block([back(chain, c, 0, rp.number, votes=2)])
    assert kinds(chain) == [EventKind.BACKED]
    assert chain.state.inclusion.pending[1][0].backers == [True, True, False, False]
    chain2 = Chain(n_validators=4, paras=((1, 1),), config=config)
    chain2.states[-1] = chain2.state.copy()
    chain2.state.disabled = frozenset({1})  # a disabled signer: its vote is removed
    chain2.block([back(chain2, c, 0, rp.number, votes=2)])
    assert kinds(chain2) == [EventKind.BACKED]
    assert chain2.state.inclusion.pending[1][0].backers == [True, False, False, False]
    chain3 = Chain(n_validators=4, paras=((1, 1),), config=HostConfiguration(minimum_backing_votes=2))
    chain3.states[-1] = chain3.state.copy()
    chain3.state.disabled = frozenset({1})
    chain3.block([back(chain3, c, 0, rp.number, votes=2)])
    assert kinds(chain3) == [] and "InsufficientBacking" in chain3.filtered[-1][0]


def test_s7_59_weight_limit_takes_whole_chains() -> None:
    def candidates(chain: Chain) -> list:
        rp = chain.head
        out = [back(chain, make_candidate(rp, 1, genesis_head(1), b"s"), 0, rp.number)]
        head = genesis_head(1000)
        for i, core in enumerate([1, 2, 3]):
            c = make_candidate(rp, 1000, head, bytes([9, i]), core=core, signals=[SelectCore(i, 0)])
            out.append(back(chain, c, core, rp.number))
            head = bytes([9, i])
        return out

    for budget_candidates, expected in ((1, {1: 1}), (3, {1000: 3})):
        chain = Chain(n_validators=8, paras=((1, 1), (1000, 3)))
        bfs = bitfields(chain, set())
        budget = inherent_weight(len(bfs), 0) + budget_candidates * CANDIDATE_WEIGHT
        chain.block(candidates(chain), bfs, max_weight=budget)
        got: dict[int, int] = {}
        for e in chain.events[-1]:
            got[e.para_id] = got.get(e.para_id, 0) + 1
        assert got == expected
        assert not any("bitfield" in f for f in chain.filtered[-1])

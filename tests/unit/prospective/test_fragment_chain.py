"""Spec §7 scenarios 1–21: scope, candidate storage and the fragment chain (polkadot-sdk
`fragment_chain/tests.rs`)."""

from __future__ import annotations

import msgspec
import pytest
from fc_fixtures import (
    PARA,
    X,
    Y,
    Z,
    block,
    entry,
    make_candidate,
    make_constraints,
    scope,
    storage_of,
)

from proto.candidate import head_hash
from relay.core.prospective.candidate_storage import (
    CandidateEntry,
    CandidateState,
    CandidateStorage,
    StorageError,
)
from relay.core.prospective.fragment_chain import ChainError, FragmentChain, HypotheticalCandidate
from relay.core.prospective.inclusion_emulator import RelayChainBlockInfo
from relay.core.prospective.scope import PendingAvailability, Scope, UnexpectedAncestor

A = entry(X, b"\x0a", b"\x0b")
B = entry(Y, b"\x0b", b"\x0c")
C = entry(Z, b"\x0c", b"\x0d")


def info(n: int) -> RelayChainBlockInfo:
    return block(str(n).encode(), n)


def kind_of(chain: FragmentChain, c: CandidateEntry | HypotheticalCandidate) -> str | None:
    try:
        chain.can_add_candidate_as_potential(c)
    except ChainError as e:
        return e.kind
    return None


def best(chain: FragmentChain) -> list[bytes]:
    return chain.best_chain_vec()


def unconnected(chain: FragmentChain) -> set[bytes]:
    return {e.candidate_hash for e in chain.unconnected.candidates()}


def h(*entries: CandidateEntry) -> list[bytes]:
    return [e.candidate_hash for e in entries]


def test_s7_01_scope_rejects_ancestors_that_skip_blocks() -> None:
    with pytest.raises(UnexpectedAncestor) as e:
        Scope.with_ancestors(info(10), make_constraints(8, [], b"\x01"), [], 2, [info(8)])
    assert (e.value.number, e.value.prev) == (8, 10)


def test_s7_02_scope_rejects_ancestor_for_0_block() -> None:
    with pytest.raises(UnexpectedAncestor) as e:
        Scope.with_ancestors(info(0), make_constraints(0, [], b"\x01"), [], 2, [info(99999)])
    assert (e.value.number, e.value.prev) == (99999, 0)


def test_s7_03_scope_only_takes_ancestors_up_to_min() -> None:
    s = Scope.with_ancestors(info(5), make_constraints(3, [], b"\x01"), [], 2,
                             [info(4), info(3), info(2)])
    assert sorted(s.ancestors) == [3, 4]
    assert set(s.ancestors_by_hash) == {info(4).hash, info(3).hash}


def test_s7_04_scope_rejects_unordered_ancestors() -> None:
    with pytest.raises(UnexpectedAncestor) as e:
        Scope.with_ancestors(info(5), make_constraints(0, [], b"\x01"), [], 2,
                             [info(4), info(2), info(3)])
    assert (e.value.number, e.value.prev) == (2, 4)


def test_s7_05_candidate_storage_methods() -> None:
    pvd, receipt = make_candidate(X, b"\x0a", b"\x0b")
    altered = msgspec.structs.replace(pvd, relay_parent_number=7)
    with pytest.raises(StorageError, match="PersistedValidationDataMismatch"):
        CandidateEntry.new(receipt.hash(), receipt, altered, CandidateState.SECONDED)
    pvd_c, cycle = make_candidate(X, b"\x0a", b"\x0a")
    with pytest.raises(StorageError, match="ZeroLengthCycle"):
        CandidateEntry.new(cycle.hash(), cycle, pvd_c, CandidateState.SECONDED)

    s = CandidateStorage()
    a = CandidateEntry.new(receipt.hash(), receipt, pvd, CandidateState.SECONDED)
    s.add_candidate_entry(a)
    assert s.head_data_by_hash(head_hash(b"\x0b")) == b"\x0b"
    assert s.head_data_by_hash(head_hash(b"\x0a")) == b"\x0a"
    assert list(s.possible_backed_para_children(head_hash(b"\x0a"))) == []
    s.mark_backed(a.candidate_hash)
    s.mark_backed(a.candidate_hash)
    assert [c.candidate_hash for c in s.possible_backed_para_children(head_hash(b"\x0a"))] == \
        [a.candidate_hash]
    with pytest.raises(StorageError, match="CandidateAlreadyKnown"):
        s.add_candidate_entry(a)
    s.remove_candidate(a.candidate_hash)
    s.remove_candidate(a.candidate_hash)
    assert len(s) == 0 and s.head_data_by_hash(head_hash(b"\x0b")) is None
    assert s.by_parent_head == {} and s.by_output_head == {}
    # a second child of the same parent becomes a backed child only once marked backed
    s.add_candidate_entry(a)
    s.mark_backed(a.candidate_hash)
    fork = entry(X, b"\x0a", b"\x0f", backed=False)
    s.add_candidate_entry(fork)
    assert len(list(s.possible_backed_para_children(head_hash(b"\x0a")))) == 1
    s.mark_backed(fork.candidate_hash)
    assert {c.candidate_hash for c in s.possible_backed_para_children(head_hash(b"\x0a"))} == \
        {a.candidate_hash, fork.candidate_hash}


def test_s7_06_populate_empty() -> None:
    chain = FragmentChain.populate(scope(), CandidateStorage())
    assert chain.best_chain_len() == 0 and chain.unconnected_len() == 0


def test_s7_07_wrong_required_parent() -> None:
    chain = FragmentChain.populate(scope(required_parent=b"\x0e"), storage_of(A, B, C))
    assert best(chain) == []
    assert unconnected(chain) == set(h(A, B, C))


def test_s7_08_wrong_min_relay_parent() -> None:
    chain = FragmentChain.populate(scope(min_rp=1, ancestors=[Y]), storage_of(A, B, C))
    assert best(chain) == [] and unconnected(chain) == set()
    assert kind_of(chain, A) == "RelayParentNotInScope"
    assert kind_of(chain, B) is None and kind_of(chain, C) is None


def test_s7_09_depth_limits() -> None:
    expected = {0: (h(A), h(B, C)), 1: (h(A, B), h(C))}
    for depth in range(0, 6):
        chain = FragmentChain.populate(scope(max_depth=depth), storage_of(A, B, C))
        want_best, want_unconnected = expected.get(depth, (h(A, B, C), []))
        assert best(chain) == want_best, depth
        assert unconnected(chain) == set(want_unconnected), depth
    empty = FragmentChain.populate(scope(), CandidateStorage())
    assert [kind_of(empty, c) for c in (A, B, C)] == [None, None, None]


def test_s7_10_relay_parent_out_of_scope() -> None:
    chain = FragmentChain.populate(scope(ancestors=[Y]), storage_of(A, B, C))
    assert best(chain) == [] and unconnected(chain) == set()
    assert kind_of(chain, A) == "RelayParentNotInScope"
    assert kind_of(chain, B) is None and kind_of(chain, C) is None
    chain = FragmentChain.populate(scope(ancestors=[]), storage_of(A, B, C))
    assert kind_of(chain, A) == "RelayParentNotInScope"
    assert kind_of(chain, B) == "RelayParentNotInScope"
    assert kind_of(chain, C) is None


def test_s7_11_cycle() -> None:
    c_cycle = entry(Z, b"\x0c", b"\x0a")
    chain = FragmentChain.populate(scope(), storage_of(A, B, c_cycle))
    assert best(chain) == h(A, B) and unconnected(chain) == set()
    assert kind_of(chain, c_cycle) == "Cycle"
    assert kind_of(FragmentChain.populate(scope(), CandidateStorage()), c_cycle) is None


def test_s7_12_relay_parent_moves_backwards() -> None:
    c_back = entry(X, b"\x0c", b"\x0d", wm=0)
    chain = FragmentChain.populate(scope(), storage_of(A, B, c_back))
    assert best(chain) == h(A, B)
    assert kind_of(chain, c_back) == "RelayParentMovedBackwards"


def test_s7_13_unconnected_may_go_back() -> None:
    c2 = entry(X, b"\x0d", b"\x0e", wm=0)
    chain = FragmentChain.populate(scope(), storage_of(A, B, c2))
    assert best(chain) == h(A, B)
    assert unconnected(chain) == set(h(c2))


def test_s7_14_pending_availability_blocks_older_relay_parent() -> None:
    a_y = entry(Y, b"\x0a", b"\x0b")
    c2 = entry(X, b"\x0d", b"\x0e", wm=0)
    pending = [PendingAvailability(a_y.candidate_hash, Y)]
    chain = FragmentChain.populate(scope(pending=pending), storage_of(a_y, B, c2))
    assert best(chain) == h(a_y, B)
    assert kind_of(chain, c2) == "RelayParentPrecedesCandidatePendingAvailability"


def test_s7_15_no_fork_of_pending() -> None:
    a_y = entry(Y, b"\x0a", b"\x0b")
    pending = [PendingAvailability(a_y.candidate_hash, Y)]
    chain = FragmentChain.populate(scope(pending=pending), storage_of(a_y, B))
    fork = next(e for e in (entry(Y, b"\x0a", bytes([0x0b, n])) for n in range(256))
                if e.candidate_hash < a_y.candidate_hash)
    assert kind_of(chain, fork) == "ForkWithCandidatePendingAvailability"
    assert not chain.contains_unconnected_candidate(fork.candidate_hash)


def test_s7_16_pending_candidates() -> None:
    for n in (1, 2, 3):
        pend = [PendingAvailability(c.candidate_hash, rp) for c, rp in zip((A, B, C), (X, Y, Z), strict=True)][:n]
        chain = FragmentChain.populate(scope(max_depth=3, pending=pend), storage_of(A, B, C))
        assert best(chain) == h(A, B, C), n
    # A pending with a relay parent out of scope is still taken (only pending may be)
    pend = [PendingAvailability(A.candidate_hash, X)]
    chain = FragmentChain.populate(scope(max_depth=3, ancestors=[Y], pending=pend),
                                   storage_of(A, B, C))
    assert best(chain) == h(A, B, C)
    # even out-of-scope relay parents of pending candidates may not move backwards:
    # pending A recorded at #1, B at #0
    x1 = RelayChainBlockInfo(X.hash, 1, X.storage_root)
    y0 = RelayChainBlockInfo(Y.hash, 0, Y.storage_root)
    pend = [PendingAvailability(A.candidate_hash, x1), PendingAvailability(B.candidate_hash, y0)]
    chain = FragmentChain.populate(scope(max_depth=4, ancestors=[], pending=pend),
                                   storage_of(A, B, C))
    assert best(chain) == [] and unconnected(chain) == set()


def _forks() -> dict[str, CandidateEntry]:
    d = entry(Z, b"\x0d", b"\x0e")
    f = entry(Z, b"\x0f", b"\xf1", backed=False, wm=1000)

    def variant(parent: bytes, lower: bool, backed: bool) -> CandidateEntry:
        for n in range(1, 256):
            e = entry(X, parent, bytes([0x0b, n]), backed=backed)
            if (e.candidate_hash < A.candidate_hash) == lower:
                return e
        raise AssertionError

    a1 = variant(b"\x0a", lower=False, backed=True)
    b1 = entry(Y, a1.commitments.head_data, b"\xb1")
    c1 = entry(Z, b"\xb1", b"\xc1")
    c2 = entry(Z, b"\xb1", b"\xc2")
    a2 = variant(b"\x0a", lower=True, backed=False)
    b2 = entry(Y, a2.commitments.head_data, b"\xb2")
    return {"D": d, "F": f, "A1": a1, "B1": b1, "C1": c1, "C2": c2, "A2": a2, "B2": b2}


def test_s7_17_forks_and_trimming() -> None:
    x = _forks()
    storage = storage_of(A, B, C, *x.values())
    chain = FragmentChain.populate(scope(max_depth=2), storage)
    assert best(chain) == h(A, B, C)
    assert unconnected(chain) == set(h(x["D"], x["F"], x["A2"], x["B2"]))
    assert kind_of(chain, x["A1"]) == "ForkChoiceRule"
    assert kind_of(chain, A) == "CandidateAlreadyKnown"
    assert kind_of(chain, x["F"]) == "CandidateAlreadyKnown"


def test_s7_18_reorg_by_backing() -> None:
    x = _forks()
    chain = FragmentChain.populate(scope(max_depth=2), storage_of(A, B, C, *x.values()))
    chain.candidate_backed(x["A2"].candidate_hash)
    assert best(chain) == h(x["A2"], x["B2"])
    assert unconnected(chain) == set(h(x["F"]))
    assert kind_of(chain, A) == "ForkChoiceRule"
    assert kind_of(chain, x["A1"]) == "ForkChoiceRule"


def test_s7_19_advance_scope_after_inclusion() -> None:
    x = _forks()
    e = entry(Z, b"\x0e", b"\x0f", backed=False)
    pend = [PendingAvailability(c.candidate_hash, rp) for c, rp in zip((A, B, C), (X, Y, Z), strict=True)]
    chain = FragmentChain.populate(scope(max_depth=2, pending=pend),
                                   storage_of(A, B, C, e, *x.values()))
    assert best(chain) == h(A, B, C)
    assert unconnected(chain) == set(h(x["D"], x["F"], e))
    # A, B, C get included: the new leaf's base required parent is 0x0d
    leaf = block(b"W", 3)
    new_scope = Scope.with_ancestors(leaf, make_constraints(1, [1, 2, 3], b"\x0d"), [], 2, [Z, Y])
    advanced = FragmentChain.init(new_scope, CandidateStorage())
    advanced.populate_from_previous(chain)
    assert best(advanced) == h(x["D"])
    assert unconnected(advanced) == set(h(e, x["F"]))
    advanced.candidate_backed(e.candidate_hash)
    assert best(advanced) == h(x["D"], e)
    assert unconnected(advanced) == set()
    assert kind_of(advanced, x["F"]) == "CheckAgainstConstraints"


def _chain_of_six() -> tuple[FragmentChain, list[CandidateEntry]]:
    cs = [entry(Z, bytes([i]), bytes([i + 1]), backed=False) for i in range(6)]
    s = Scope.with_ancestors(Z, make_constraints(0, [0, 1, 2], b"\x00"), [], 5, [Y, X])
    chain = FragmentChain.populate(s, CandidateStorage())
    for c in cs:
        chain.try_adding_seconded_candidate(c)
    return chain, cs


def test_s7_20_find_ancestor_path_and_find_backable_chain() -> None:
    chain, cs = _chain_of_six()
    hs = [c.candidate_hash for c in cs]
    assert all(chain.find_backable_chain([], n) == [] for n in range(8))
    for i in (5, 3, 4, 1):
        chain.candidate_backed(hs[i])
        assert chain.find_backable_chain([], 6) == []
    chain.candidate_backed(hs[0])
    assert [x for x, _ in chain.find_backable_chain([], 1)] == hs[:1]
    assert [x for x, _ in chain.find_backable_chain([], 4)] == hs[:2]
    chain.candidate_backed(hs[2])
    assert [x for x, _ in chain.find_backable_chain([], 6)] == hs
    assert all(rp == Z.hash for _, rp in chain.find_backable_chain([], 6))
    unknown = b"\xff" * 32

    def start(ancestors: list[bytes], count: int = 6) -> list[bytes]:
        return [x for x, _ in chain.find_backable_chain(ancestors, count)]

    assert start([], 2) == hs[:2]
    assert start([unknown]) == hs and start([hs[1], unknown]) == hs and start([hs[1], hs[2]]) == hs
    assert start([hs[0], unknown]) == hs[1:]
    assert start(hs[:3], 2) == hs[3:5] and start(hs[:3], 3) == hs[3:]
    assert start([hs[0], hs[2]]) == hs[1:]
    assert start([hs[0], hs[1], hs[3]]) == hs[2:]
    assert start(hs[:2], 0) == []
    # with c3 pending availability, the backable chain stops before it
    s = Scope.with_ancestors(Z, make_constraints(0, [0, 1, 2], b"\x00"),
                             [PendingAvailability(c.candidate_hash, Z) for c in cs[:4]], 5, [Y, X])
    backed = [entry(Z, bytes([i]), bytes([i + 1])) for i in range(6)]
    pending_chain = FragmentChain.populate(s, storage_of(*backed))
    assert [x for x, _ in pending_chain.find_backable_chain(hs[:2], 3)] == []
    s3 = Scope.with_ancestors(Z, make_constraints(0, [0, 1, 2], b"\x00"),
                              [PendingAvailability(hs[3], Z)], 5, [Y, X])
    chain3 = FragmentChain.populate(s3, storage_of(*backed))
    assert [x for x, _ in chain3.find_backable_chain(hs[:2], 3)] == [hs[2]]


def test_s7_21_find_backable_chain_empty_best_chain() -> None:
    chain = FragmentChain.populate(scope(), CandidateStorage())
    assert chain.find_backable_chain([], 3) == []
    assert chain.find_backable_chain([A.candidate_hash], 3) == []
    assert chain.find_backable_chain([b"\x01" * 32, b"\x02" * 32], 0) == []


def test_seconded_candidates_never_enter_the_best_chain_directly() -> None:
    chain = FragmentChain.populate(scope(), CandidateStorage())
    seconded = entry(X, b"\x0a", b"\x0b", backed=False)
    chain.try_adding_seconded_candidate(seconded)
    assert best(chain) == [] and unconnected(chain) == {seconded.candidate_hash}
    with pytest.raises(ChainError, match="IntroduceBackedCandidate"):
        chain.try_adding_seconded_candidate(entry(Y, b"\x0b", b"\x0c"))
    chain.candidate_backed(seconded.candidate_hash)
    assert best(chain) == [seconded.candidate_hash]
    assert seconded.para_id == PARA

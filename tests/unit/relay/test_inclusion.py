"""Spec §7 scenarios 43–50: inclusion (polkadot-sdk `inclusion/tests.rs`)."""

from __future__ import annotations

import pytest
from relay_fixtures import CODE, Chain, back, bitfields, make_candidate

from proto.candidate import CandidateCommitments, CandidateDescriptor
from proto.hashing import blake2_256
from relay.core.config import HostConfiguration
from relay.core.events import EventKind
from relay.core.inclusion import (
    InclusionError,
    InclusionState,
    PendingCandidate,
    supermajority_threshold,
)
from relay.core.paras import FutureCode
from relay.core.paras_inherent import process_candidates
from relay.core.state import RelayState


def pending(para: int, core: int, head: bytes, n: int, tag: bytes = b"") -> PendingCandidate:
    d = CandidateDescriptor(para, bytes(32), 0, core, 0, bytes(32), bytes(32), bytes(32),
                            blake2_256(head), blake2_256(CODE))
    c = CandidateCommitments([], [], None, head, 0, 0)
    return PendingCandidate(core, blake2_256(head + tag), d, head, c, [False] * n, [], 0, 0, core)


def test_s7_43_availability_threshold_is_supermajority() -> None:
    assert [supermajority_threshold(n) for n in (4, 6, 7, 9)] == [3, 5, 5, 7]


def test_s7_44_supermajority_bitfields_trigger_availability() -> None:
    n = 7
    state = InclusionState()
    a = pending(1, 0, bytes([1, 2, 3, 4]), n)
    c1, c2, c3 = (pending(3, core, head, n) for core, head in
                  ((2, bytes([5, 6])), (3, bytes([7, 8])), (4, bytes([11, 12]))))
    state.pending = {1: [a], 3: [c1, c2, c3]}
    votes = [(v, [True, False, True, v < 4, True]) for v in range(5)]  # C2 gets only 4 of 5
    enacted = state.apply_bitfields(votes, n)
    assert {(c.core, c.hash) for c in enacted} == {(2, c1.hash), (0, a.hash)}
    assert [c.commitments_head for c in enacted if c.descriptor.para_id == 1] == [bytes([1, 2, 3, 4])]
    assert state.pending[3] == [c2, c3]
    assert sum(c2.availability_votes) == 4 and sum(c3.availability_votes) == 5  # C3 waits for C2
    enacted = state.apply_bitfields([(6, [False, False, False, True, False])], n)
    assert [c.hash for c in enacted] == [c2.hash, c3.hash]
    assert enacted[-1].commitments_head == bytes([11, 12]) and state.pending == {}


def test_s7_45_bitfield_checks() -> None:
    chain = Chain(paras=((1000, 1), (1001, 1)))
    rp = chain.head
    c = make_candidate(rp, 1000, bytes([1000 % 256, 0]), b"h1")
    chain.block([back(chain, c, 0, rp.number)])
    wrong = bitfields(chain, {0})
    too_many = [type(b)([*b.bits, False], b.validator_index, b.signature) for b in wrong[:1]]
    chain.block(bitfields=too_many)
    assert "wrong length" in chain.filtered[-1][0]
    assert chain.state.inclusion.pending  # nothing enacted
    # a bit on the free core 1, one vote on the occupied core and an empty bitfield: all kept
    bfs = bitfields(chain, {1}, [0]) + bitfields(chain, {0}, [1]) + bitfields(chain, set(), [2])
    chain.block(bitfields=bfs)
    assert chain.filtered[-1] == [] and chain.events[-1] == []
    assert sum(chain.state.inclusion.pending[1000][0].availability_votes) == 1


def test_s7_46_free_timedout_and_disputed() -> None:
    n = 5
    heads = iter(bytes([i]) for i in range(1, 100))
    layout = {"a": "T", "b": "o", "c": "To", "d": "TT", "e": "oTo", "f": "oo"}
    state = InclusionState()
    failed: set[bytes] = set()
    core = 0
    for para, marks in enumerate(layout.values()):
        for m in marks:
            cand = pending(para, core, next(heads), n)
            state.pending.setdefault(para, []).append(cand)
            if m == "T":
                failed.add(cand.hash)
            core += 1
    disputed = state.copy()
    freed = state.free_failed(lambda c: c.hash in failed)
    assert sorted(c.core for c in freed) == [0, 2, 3, 4, 5, 7, 8]
    assert [c.core for c in state.pending[4]] == [6]  # e's first stays
    assert sorted(c.core for c in disputed.free_failed(lambda c: c.hash in failed)) == \
        [0, 2, 3, 4, 5, 7, 8]


def _next_block_state(chain: Chain) -> tuple[RelayState, int]:
    s = chain.state.copy()
    h = chain.head
    s.allowed.update(h.hash(), h.state_root, s.scheduler.snapshot(), h.number,
                     s.config.allowed_ancestry_len)
    return s, h.number + 1


def _error(chain: Chain, items: list, state: RelayState | None = None) -> str:
    s, now = _next_block_state(chain) if state is None else (state, chain.head.number + 1)
    with pytest.raises(InclusionError) as e:
        process_candidates(s, items, now)
    return e.value.kind


def test_s7_47_candidate_checks() -> None:
    chain = Chain(n_validators=6, paras=((1000, 1), (2000, 2)))
    rp = chain.head
    g = bytes([2000 % 256, 0])
    b1 = make_candidate(rp, 2000, g, b"b1", core=1)
    b2 = make_candidate(rp, 2000, b"b1", b"b2", core=2)
    assert _error(chain, [(back(chain, b2, 2, rp.number), 2)]) == "ValidationDataHashMismatch"
    s, now = _next_block_state(chain)
    events = process_candidates(s, [(back(chain, b1, 2, rp.number), 2),
                                    (back(chain, b2, 1, rp.number), 1)], now)
    assert [e.core for e in events] == [2, 1]  # no core order needed
    b3 = make_candidate(rp, 2000, b"b1", b"b3", core=1)
    with pytest.raises(InclusionError, match="ValidationDataHashMismatch"):
        process_candidates(s, [(back(chain, b3, 1, rp.number), 1)], now)
    a = make_candidate(rp, 1000, bytes([1000 % 256, 0]), b"a1")
    assert _error(chain, [(back(chain, a, 0, rp.number, votes=1), 0)]) == "InsufficientBacking"
    assert _error(chain, [(back(chain, a, 0, rp.number, signer_group=1), 0)]) == "InvalidBacking"
    unknown = make_candidate(chain.head, 1000, bytes([1000 % 256, 0]), b"a1")
    unknown = type(unknown)(type(unknown.descriptor)(**{
        **{f: getattr(unknown.descriptor, f) for f in unknown.descriptor.__struct_fields__},
        "relay_parent": b"\x77" * 32}), unknown.commitments)
    assert _error(chain, [(back(chain, unknown, 0, rp.number), 0)]) == "DisallowedRelayParent"
    s, _ = _next_block_state(chain)
    s.paras.future_code[1000] = FutureCode(b"\x01" * 32, 100)
    up = make_candidate(rp, 1000, bytes([1000 % 256, 0]), b"a1", new_code=b"new code")
    assert _error(chain, [(back(chain, up, 0, rp.number), 0)], s) == "PrematureCodeUpgrade"
    bogus = make_candidate(rp, 1000, b"not the head", b"a1")
    assert _error(chain, [(back(chain, bogus, 0, rp.number), 0)]) == "ValidationDataHashMismatch"
    wrong_code = make_candidate(rp, 1000, bytes([1000 % 256, 0]), b"a1", code_hash=b"\x05" * 32)
    assert _error(chain, [(back(chain, wrong_code, 0, rp.number), 0)]) == "InvalidValidationCodeHash"
    random_head = make_candidate(rp, 1000, bytes([1000 % 256, 0]), b"a1",
                                 para_head_override=b"\x09" * 32)
    assert _error(chain, [(back(chain, random_head, 0, rp.number), 0)]) == "ParaHeadMismatch"


def test_s7_48_backing_works() -> None:
    chain = Chain(n_validators=6, paras=((1, 1), (2, 1), (3, 1)))
    rp = chain.head
    cands = [make_candidate(rp, p, bytes([p, 0]), bytes([p, 1]), core=p - 1) for p in (1, 2, 3)]
    chain.block([back(chain, c, c.descriptor.core_index, rp.number) for c in cands])
    occupied = chain.state.inclusion.occupied_cores()
    assert sorted((core, c.hash) for core, c in occupied.items()) == \
        [(i, cands[i].hash()) for i in range(3)]
    rec = occupied[0]
    now = chain.head.number
    assert (rec.relay_parent_number, rec.backed_in_number) == (now - 1, now)
    assert not any(rec.availability_votes) and rec.backers == [True, True]
    elastic = Chain(n_validators=6, paras=((1, 1), (2, 2)))
    rp = elastic.head
    b1 = make_candidate(rp, 2, bytes([2, 0]), b"b1", core=1)
    b2 = make_candidate(rp, 2, b"b1", b"b2", core=2)
    elastic.block([back(elastic, b1, 1, rp.number), back(elastic, b2, 2, rp.number)])
    recs = elastic.state.inclusion.pending[2]
    assert [(r.hash, r.core, r.backing_group) for r in recs] == [(b1.hash(), 1, 1), (b2.hash(), 2, 2)]


def test_s7_49_check_allowed_relay_parents() -> None:
    config = HostConfiguration(group_rotation_frequency=1, allowed_ancestry_len=3, lookahead=4)
    chain = Chain(n_validators=6, paras=((1, 1), (2, 1), (3, 1)), config=config)
    chain.empty_blocks(3)
    cands = []
    for p, rp_number in ((1, 1), (2, 2), (3, 3)):
        rp = chain.rp(rp_number)
        core = p - 1
        c = make_candidate(rp, p, bytes([p, 0]), bytes([p, 1]), core=core)
        group = (core + (rp_number + 1)) % 3
        assert chain.state.scheduler.group_assigned_to_core(core, rp_number + 1) == group
        cands.append(back(chain, c, core, rp_number))
    chain.block(cands)
    assert chain.filtered[-1] == []
    assert len([e for e in chain.events[-1] if e.kind is EventKind.BACKED]) == 3


def test_s7_50_session_change_wipes() -> None:
    chain = Chain(paras=((1000, 1), (2000, 1)), config=HostConfiguration(session_length=4))
    chain.empty_blocks(1)
    rp = chain.head
    cs = [make_candidate(rp, p, bytes([p % 256, 0]), b"x%d" % p, core=i)
          for i, p in enumerate((1000, 2000))]
    chain.block([back(chain, c, c.descriptor.core_index, rp.number) for c in cs])
    assert set(chain.state.inclusion.pending) == {1000, 2000}
    chain.empty_blocks(1)  # block 3 ends session 0
    assert chain.state.session_index == 1 and chain.state.inclusion.pending == {}

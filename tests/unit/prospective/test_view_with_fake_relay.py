"""The prospective-parachains view driven by a hand-made relay chain (spec §3.7–§3.8).

`FakeRelay` implements the `RelayChainInfo` protocol from plain dicts, so every input the view
sees (ancestry, sessions, constraints, pending candidates, claim queue, async backing params) is
chosen by the test. The fake is only the input; the view is what is tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
from fc_fixtures import MAX_POV, PARA, make_candidate, make_constraints

from proto.candidate import CommittedCandidateReceipt, PersistedValidationData, head_hash
from proto.hashing import blake2_256
from relay.core.constraints import BackingState, CandidatePendingAvailability
from relay.core.prospective.fragment_chain import HypotheticalCandidate
from relay.core.prospective.inclusion_emulator import RelayChainBlockInfo
from relay.core.prospective.view import ProspectiveParachains, RelayBlockHeaderInfo

OTHER_PARA = 6  # never in the claim queue


@dataclass
class FakeRelay:
    """A relay chain as dicts: blocks by hash, and per block what the runtime APIs answer."""

    params: tuple[int, int]  # (max_candidate_depth, allowed_ancestry_len)
    blocks: dict[bytes, RelayBlockHeaderInfo] = field(default_factory=dict)
    session_for_child: dict[bytes, int] = field(default_factory=dict)
    states: dict[tuple[bytes, int], BackingState] = field(default_factory=dict)
    paras: dict[bytes, set[int]] = field(default_factory=dict)

    def add_block(self, number: int, parent: bytes, fork: bytes = b"", session: int = 0) -> bytes:
        h = blake2_256(b"fake-block" + fork + number.to_bytes(4, "little"))
        self.blocks[h] = RelayBlockHeaderInfo(h, number, parent, blake2_256(b"root" + h))
        self.session_for_child[h] = session
        return h

    def chain(self, length: int, sessions: dict[int, int] | None = None) -> list[bytes]:
        """Blocks #0..#length-1; `sessions[n]` is the session of block n's children."""
        hashes: list[bytes] = []
        for n in range(length):
            parent = hashes[-1] if hashes else bytes(32)
            hashes.append(self.add_block(n, parent, session=(sessions or {}).get(n, 0)))
        return hashes

    def info(self, h: bytes) -> RelayChainBlockInfo:
        return self.blocks[h].info()

    def set_para(
        self, at: bytes, required_parent: bytes, min_rp: int,
        pending: tuple[CandidatePendingAvailability, ...] = (),
    ) -> None:
        number = self.blocks[at].number
        self.states[(at, PARA)] = BackingState(
            make_constraints(min_rp, list(range(number + 1)), required_parent), pending)
        self.paras.setdefault(at, set()).add(PARA)

    # -- RelayChainInfo ---------------------------------------------------------------------

    def block_info(self, block_hash: bytes) -> RelayBlockHeaderInfo | None:
        return self.blocks.get(block_hash)

    def backing_state(self, at: bytes, para_id: int) -> BackingState | None:
        return self.states.get((at, para_id))

    def claim_queue_paras(self, at: bytes) -> set[int]:
        return set(self.paras.get(at, set()))

    def async_backing_params(self, at: bytes) -> tuple[int, int]:
        return self.params

    def session_index_for_child(self, at: bytes) -> int:
        return self.session_for_child[at]


def candidate(
    relay: FakeRelay, rp: bytes, parent: bytes, out: bytes
) -> tuple[PersistedValidationData, CommittedCandidateReceipt]:
    return make_candidate(relay.info(rp), parent, out)


def pending_of(receipt: CommittedCandidateReceipt, relay: FakeRelay) -> CandidatePendingAvailability:
    rp_number = relay.blocks[receipt.descriptor.relay_parent].number
    return CandidatePendingAvailability(receipt.hash(), receipt.descriptor, receipt.commitments,
                                        rp_number, MAX_POV)


def hypothetical(receipt: CommittedCandidateReceipt, parent: bytes) -> HypotheticalCandidate:
    return HypotheticalCandidate(receipt.hash(), PARA, receipt.descriptor.relay_parent,
                                 head_hash(parent))


def async_setup(length: int = 6) -> tuple[FakeRelay, list[bytes], ProspectiveParachains]:
    """Depth 3, ancestry 2; the last block is the active leaf, required parent 0x0a."""
    relay = FakeRelay((3, 2))
    blocks = relay.chain(length)
    leaf = blocks[-1]
    relay.set_para(leaf, b"\x0a", min_rp=length - 3)
    view = ProspectiveParachains()
    view.activate_leaf(leaf, relay)
    return relay, blocks, view


def test_activate_leaf_builds_scope_and_implicit_view() -> None:
    relay, b, view = async_setup()
    leaf = b[5]
    assert view.active_leaves() == [leaf]
    assert view.allowed_relay_parents(PARA) == {b[5], b[4], b[3]}
    assert view.is_relay_parent_allowed(PARA, b[3])
    assert not view.is_relay_parent_allowed(PARA, b[2])
    assert view.allowed_relay_parents(OTHER_PARA) == set()
    assert view.get_minimum_relay_parents(leaf) == [(PARA, 3)]
    assert view.get_minimum_relay_parents(b[4]) == []  # not an active leaf
    # activating the same leaf twice changes nothing
    view.activate_leaf(leaf, relay)
    assert view.active_leaves() == [leaf]


def test_ancestry_stops_at_session_change() -> None:
    relay = FakeRelay((3, 3))
    # block #3 is the last whose children are in session 0: #4, #5, #6 are in session 1
    b = relay.chain(7, sessions={n: (1 if n >= 3 else 0) for n in range(7)})
    relay.set_para(b[6], b"\x0a", min_rp=2)
    view = ProspectiveParachains()
    view.activate_leaf(b[6], relay)
    # without the session check #3 would be allowed too (ancestry 3, min 2 ⇒ #5, #4, #3)
    assert view.allowed_relay_parents(PARA) == {b[6], b[5], b[4], b[3]}
    relay2 = FakeRelay((3, 3))
    b2 = relay2.chain(7, sessions={n: (1 if n >= 4 else 0) for n in range(7)})
    relay2.set_para(b2[6], b"\x0a", min_rp=2)
    view2 = ProspectiveParachains()
    view2.activate_leaf(b2[6], relay2)
    assert view2.allowed_relay_parents(PARA) == {b2[6], b2[5], b2[4]}
    assert view2.get_minimum_relay_parents(b2[6]) == [(PARA, 4)]


def test_introduce_back_and_get_backable() -> None:
    relay, b, view = async_setup()
    leaf = b[5]
    pvd1, c1 = candidate(relay, b[4], b"\x0a", b"\x0b")
    pvd2, c2 = candidate(relay, b[5], b"\x0b", b"\x0c")
    # the PVD a collator must have used comes from the base constraints
    assert view.get_prospective_validation_data(PARA, b[4], head_hash(b"\x0a")) == pvd1
    assert view.get_hypothetical_membership(hypothetical(c1, b"\x0a")) == [leaf]
    assert view.introduce_seconded_candidate(PARA, c1, pvd1)
    assert view.introduce_seconded_candidate(PARA, c1, pvd1)  # already known still counts
    assert view.get_backable_candidates(leaf, PARA, 1, []) == []  # seconded only
    view.candidate_backed(PARA, c1.hash())
    assert view.get_backable_candidates(leaf, PARA, 1, []) == [(c1.hash(), b[4])]
    # 0x0b is known only as c1's output, yet its PVD can be served
    assert view.get_prospective_validation_data(PARA, b[5], head_hash(b"\x0b")) == pvd2
    assert view.introduce_seconded_candidate(PARA, c2, pvd2)
    view.candidate_backed(PARA, c2.hash())
    both = [(c1.hash(), b[4]), (c2.hash(), b[5])]
    assert view.get_backable_candidates(leaf, PARA, 2, []) == both
    assert view.get_backable_candidates(leaf, PARA, 5, []) == both
    assert view.get_backable_candidates(leaf, PARA, 2, [c1.hash()]) == both[1:]
    assert view.get_backable_candidates(leaf, PARA, 0, []) == []
    assert view.get_backable_candidates(b[4], PARA, 2, []) == []  # not an active leaf
    assert view.get_backable_candidates(leaf, OTHER_PARA, 2, []) == []
    assert view.candidate_counts() == {"best_chain": 2, "unconnected": 0}
    assert view.candidate_entry(PARA, c2.hash()) is not None


def test_introduce_refusals() -> None:
    relay, b, view = async_setup()
    pvd, c = candidate(relay, b[4], b"\x0a", b"\x0b")
    tampered = msgspec.structs.replace(pvd, max_pov_size=MAX_POV - 1)
    assert not view.introduce_seconded_candidate(PARA, c, tampered)  # PVD hash mismatch
    pvd_old, old = candidate(relay, b[2], b"\x0a", b"\x0b")
    assert not view.introduce_seconded_candidate(PARA, old, pvd_old)  # relay parent out of scope
    assert view.get_hypothetical_membership(hypothetical(old, b"\x0a")) == []
    assert not view.introduce_seconded_candidate(OTHER_PARA, c, pvd)  # para has no chain
    assert view.candidate_counts() == {"best_chain": 0, "unconnected": 0}


def test_prospective_validation_data_queries() -> None:
    relay, b, view = async_setup()
    root = head_hash(b"\x0a")
    # supplied head data is used as is when it matches the hash, even if the view never saw it
    assert view.get_prospective_validation_data(PARA, b[3], head_hash(b"new"), b"new") == \
        PersistedValidationData(b"new", 3, relay.blocks[b[3]].storage_root, MAX_POV)
    assert view.get_prospective_validation_data(PARA, b[3], root, b"not 0x0a") is None
    assert view.get_prospective_validation_data(PARA, b[3], head_hash(b"unknown")) is None
    assert view.get_prospective_validation_data(PARA, b[2], root) is None  # out of scope
    assert view.get_prospective_validation_data(OTHER_PARA, b[5], root) is None


def test_pending_availability_pvds_are_rebuilt_by_chaining() -> None:
    relay = FakeRelay((3, 2))
    b = relay.chain(6)
    _, p1 = candidate(relay, b[3], b"\x0a", b"\x0b")
    _, p2 = candidate(relay, b[4], b"\x0b", b"\x0c")
    relay.set_para(b[5], b"\x0a", min_rp=3, pending=(pending_of(p1, relay), pending_of(p2, relay)))
    view = ProspectiveParachains()
    view.activate_leaf(b[5], relay)
    chain = view.leaves[b[5]].chains[PARA]
    # the rebuilt PVDs hash to the descriptors' (else the entries would have been refused)
    assert chain.best_chain_vec() == [p1.hash(), p2.hash()]
    assert view.get_backable_candidates(b[5], PARA, 3, []) == []  # pending ones are not offered
    pvd3, c3 = candidate(relay, b[5], b"\x0c", b"\x0d")
    assert view.get_prospective_validation_data(PARA, b[5], head_hash(b"\x0c")) == pvd3
    assert view.introduce_seconded_candidate(PARA, c3, pvd3)
    view.candidate_backed(PARA, c3.hash())
    assert view.get_backable_candidates(b[5], PARA, 1, [p1.hash(), p2.hash()]) == [(c3.hash(), b[5])]
    assert view.get_backable_candidates(b[5], PARA, 3, [p1.hash()]) == []  # stops at pending p2
    # a fork of a pending candidate has no membership
    _, fork = candidate(relay, b[5], b"\x0b", b"\x0c\x01")
    assert view.get_hypothetical_membership(hypothetical(fork, b"\x0b")) == []


def test_pending_chain_stops_at_unknown_relay_parent() -> None:
    relay = FakeRelay((3, 2))
    b = relay.chain(6)
    _, p1 = candidate(relay, b[3], b"\x0a", b"\x0b")
    unseen = RelayChainBlockInfo(blake2_256(b"a block this node never imported"), 4, bytes(32))
    _, p2 = make_candidate(unseen, b"\x0b", b"\x0c")
    # p3 builds on what a chaining that skipped p2 would give it, so only stopping leaves it out
    _, p3 = candidate(relay, b[5], b"\x0b", b"\x0d")
    pend2 = CandidatePendingAvailability(p2.hash(), p2.descriptor, p2.commitments, 4, MAX_POV)
    relay.set_para(b[5], b"\x0a", min_rp=3,
                   pending=(pending_of(p1, relay), pend2, pending_of(p3, relay)))
    view = ProspectiveParachains()
    view.activate_leaf(b[5], relay)
    # p2's relay parent is unknown: p2 and everything after it are left out
    assert view.leaves[b[5]].chains[PARA].best_chain_vec() == [p1.hash()]


def test_new_leaf_inherits_candidates_and_deactivation_prunes() -> None:
    relay = FakeRelay((3, 2))
    b = relay.chain(6)
    relay.set_para(b[4], b"\x0a", min_rp=2)
    relay.set_para(b[5], b"\x0a", min_rp=3)
    view = ProspectiveParachains()
    view.activate_leaf(b[4], relay)
    pvd1, c1 = candidate(relay, b[4], b"\x0a", b"\x0b")
    pvd2, c2 = candidate(relay, b[4], b"\x0b", b"\x0c")
    pvd_old, old = candidate(relay, b[2], b"\x0a", b"\x0f")  # allowed under #4, not under #5
    for pvd, c in ((pvd1, c1), (pvd2, c2), (pvd_old, old)):
        assert view.introduce_seconded_candidate(PARA, c, pvd)
    view.candidate_backed(PARA, c1.hash())
    view.activate_leaf(b[5], relay)
    view.deactivate_leaf(b[4])
    assert view.active_leaves() == [b[5]]
    assert view.allowed_relay_parents(PARA) == {b[5], b[4], b[3]}
    chain5 = view.leaves[b[5]].chains[PARA]
    assert chain5.best_chain_vec() == [c1.hash()]  # carried over, still backed
    assert chain5.contains_unconnected_candidate(c2.hash())
    assert chain5.candidate_entry(old.hash()) is None  # its relay parent left the scope
    assert view.get_backable_candidates(b[4], PARA, 2, []) == []
    assert view.get_minimum_relay_parents(b[4]) == []
    assert view.get_hypothetical_membership(hypothetical(c2, b"\x0b"), leaf=b[4]) == []
    view.candidate_backed(PARA, c2.hash())
    assert view.get_backable_candidates(b[5], PARA, 2, []) == [(c1.hash(), b[4]), (c2.hash(), b[4])]
    view.deactivate_leaf(b[5])
    assert view.active_leaves() == [] and view.allowed_relay_parents(PARA) == set()
    assert view.candidate_counts() == {"best_chain": 0, "unconnected": 0}
    assert view.get_prospective_validation_data(PARA, b[5], head_hash(b"\x0a")) is None
    pvd3, c3 = candidate(relay, b[5], b"\x0c", b"\x0d")
    assert not view.introduce_seconded_candidate(PARA, c3, pvd3)


def test_forked_leaves_keep_separate_chains() -> None:
    relay = FakeRelay((3, 2))
    b = relay.chain(5)
    left = relay.add_block(5, b[4], fork=b"left")
    right = relay.add_block(5, b[4], fork=b"right")
    for leaf in (left, right):
        relay.set_para(leaf, b"\x0a", min_rp=3)
    view = ProspectiveParachains()
    view.activate_leaf(left, relay)
    view.activate_leaf(right, relay)
    assert sorted(view.active_leaves()) == sorted([left, right])
    pvd, c = candidate(relay, left, b"\x0a", b"\x0b")
    assert view.get_hypothetical_membership(hypothetical(c, b"\x0a")) == [left]
    assert view.introduce_seconded_candidate(PARA, c, pvd)
    view.candidate_backed(PARA, c.hash())
    assert view.get_backable_candidates(left, PARA, 1, []) == [(c.hash(), left)]
    assert view.get_backable_candidates(right, PARA, 1, []) == []
    # a candidate on the common ancestry is a member under both leaves
    pvd_common, common = candidate(relay, b[4], b"\x0a", b"\x0c")
    assert set(view.get_hypothetical_membership(hypothetical(common, b"\x0a"))) == {left, right}
    assert view.introduce_seconded_candidate(PARA, common, pvd_common)
    view.deactivate_leaf(left)
    assert view.active_leaves() == [right]
    assert view.allowed_relay_parents(PARA) == {right, b[4], b[3]}


def test_sync_backing_is_the_degenerate_case() -> None:
    """Depth 0, ancestry 0: the relay parent must be the leaf and the chain holds one candidate."""
    relay = FakeRelay((0, 0))
    b = relay.chain(8)
    relay.set_para(b[5], b"\x0a", min_rp=5)
    view = ProspectiveParachains()
    view.activate_leaf(b[5], relay)
    assert view.allowed_relay_parents(PARA) == {b[5]}
    assert view.get_minimum_relay_parents(b[5]) == [(PARA, 5)]
    pvd_old, old = candidate(relay, b[4], b"\x0a", b"\x0b")
    assert not view.introduce_seconded_candidate(PARA, old, pvd_old)
    pvd1, c1 = candidate(relay, b[5], b"\x0a", b"\x0b")
    pvd2, c2 = candidate(relay, b[5], b"\x0b", b"\x0c")
    for pvd, c in ((pvd1, c1), (pvd2, c2)):
        assert view.introduce_seconded_candidate(PARA, c, pvd)
        view.candidate_backed(PARA, c.hash())
    assert view.get_backable_candidates(b[5], PARA, 2, []) == [(c1.hash(), b[5])]
    # #6: c1 is pending availability; c2's relay parent #5 is no longer allowed
    relay.set_para(b[6], b"\x0a", min_rp=6, pending=(pending_of(c1, relay),))
    view.activate_leaf(b[6], relay)
    view.deactivate_leaf(b[5])
    chain6 = view.leaves[b[6]].chains[PARA]
    assert chain6.best_chain_vec() == [c1.hash()] and chain6.unconnected_len() == 0
    assert view.get_backable_candidates(b[6], PARA, 1, [c1.hash()]) == []  # chain is full
    # #7: c1 included; the next candidate builds on its head with relay parent #7
    relay.set_para(b[7], b"\x0b", min_rp=7)
    view.activate_leaf(b[7], relay)
    view.deactivate_leaf(b[6])
    pvd3, c3 = candidate(relay, b[7], b"\x0b", b"\x0c\x03")
    assert view.get_prospective_validation_data(PARA, b[7], head_hash(b"\x0b")) == pvd3
    assert view.introduce_seconded_candidate(PARA, c3, pvd3)
    view.candidate_backed(PARA, c3.hash())
    assert view.get_backable_candidates(b[7], PARA, 1, []) == [(c3.hash(), b[7])]

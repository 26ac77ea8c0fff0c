"""Approval gossip checked once for all the simulated nodes (`ApprovalVoting.check_assignments` /
`check_approvals` through `proto.shared_work`) imports exactly what each node would import
checking alone: same verdicts, same peers charged, same votes, same messages held back. A bad
message is met by every node (a failure is never shared), and nodes that tracked a block
differently never take each other's results.

The nodes are `ApprovalChecking` services over a stub of the validator they run in: only their
gossip validators and the waiting room are exercised, the clock in ticks the test moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from approval_fixtures import keys, session
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.approvals import (
    IndirectAssignmentCert,
    IndirectSignedApprovalVote,
    RelayVRFDelay,
    SignedAssignment,
)
from proto.codec import encode
from proto.messages import ApprovalsMessage, AssignmentsMessage
from proto.network import (
    COST_INVALID_SIGNATURE,
    COST_MAJOR,
    Action,
    PeerId,
    ReputationChange,
    Topic,
)
from proto.shared_work import SharedWork, sharing
from relay.core.approval.criteria import IncludedCandidate, compute_assignments, relay_vrf_story
from relay.core.approval.ticks import slot_start_tick
from relay.service.approvals import ApprovalChecking

N = 10
KEYS = keys(N)
S = session(N, 5)  # backing groups of two, one per core
SLOT = 5
TICK = slot_start_tick(SLOT)  # the clock starts as the blocks' slot does: tranches > 19 wait
BLOCKS = [b"\xb1" * 32, b"\xb2" * 32]  # the first known from the start, the second arrives later
CANDIDATES = [IncludedCandidate(b"\xc0" * 32, 0, 0), IncludedCandidate(b"\xc1" * 32, 3, 3)]
PEER: PeerId = b"\x99" * 32


@dataclass
class _Peers:
    charged: list[tuple[PeerId, ReputationChange]] = field(default_factory=list)

    def report(self, peer: PeerId, change: ReputationChange) -> None:
        self.charged.append((peer, change))


class _Gossip:
    def __init__(self) -> None:
        self.validators: dict[int, Any] = {}

    def subscribe(self, topic: int, validate: Any, deliver: Any) -> None:
        self.validators[topic] = validate


class _Net:
    def __init__(self) -> None:
        self.gossip = _Gossip()
        self.peers = _Peers()


class _Validator:
    """What the gossip-in half of `ApprovalChecking` reads of its validator."""

    def __init__(self, index: int) -> None:
        self.key = KEYS[index]
        self.net = _Net()
        self.is_syncing = False
        self.slot_s = 6.0


class Node:
    def __init__(self, index: int, one_by_one: bool = False, tick: int = TICK + 12) -> None:
        """`one_by_one`: every message takes the item-by-item path (no batch check), as before
        batches were checked at once: the reference."""
        self.v = _Validator(index)
        self.checking = ApprovalChecking(self.v, None, 0.0)  # type: ignore[arg-type]
        self.tick = tick
        self.checking.tick_now = lambda: self.tick  # type: ignore[method-assign]
        if one_by_one:
            voting = self.checking.voting
            voting.check_assignments = lambda *_: None  # type: ignore[method-assign]
            voting.check_approvals = lambda *_: False  # type: ignore[method-assign]
        self.import_block(BLOCKS[0])

    def import_block(self, block: bytes, included: list[IncludedCandidate] = CANDIDATES) -> None:
        if self.checking.voting.import_block(block, bytes(32), 1, SLOT, 0, S, included):
            self.checking._retry_waiting(block)

    def receive(self, topic: int, data: bytes) -> Action:
        verdict = self.v.net.gossip.validators[topic](PEER, data)
        if verdict.cost is not None:  # as the gossip layer does with a rejection
            self.v.net.peers.report(PEER, verdict.cost)
        return verdict.action

    def state(self) -> tuple[Any, ...]:
        voting = self.checking.voting
        tranches = {h: [c.tranches for c in b.candidates] for h, b in voting.blocks.items()}
        waiting = self.checking.waiting
        return (tranches, voting.approvals, list(waiting._all.items()), dict(waiting._awaits),
                self.v.net.peers.charged)


def _assignment(v: int, index: int, block: bytes) -> SignedAssignment | None:
    ours = compute_assignments(S, v, relay_vrf_story(block), CANDIDATES)
    a = ours.get(CANDIDATES[index].core)
    if a is None:  # v backed it
        return None
    return SignedAssignment.sign(KEYS[v], IndirectAssignmentCert(block, v, a.cert), index)


def _approval(v: int, index: int, block: bytes, signer: int | None = None
              ) -> IndirectSignedApprovalVote:
    return IndirectSignedApprovalVote.sign(KEYS[v if signer is None else signer], block, index,
                                           v, CANDIDATES[index].candidate_hash, 0)


# An item of a message: (what, validator, candidate index, block); `what` picks a fault or none.
ASSIGNMENT_KINDS = ("good", "good", "good", "bad_signature", "bad_cert", "bad_index")
APPROVAL_KINDS = ("good", "good", "good", "bad_signature", "bad_index", "bad_validator")
items = st.tuples(st.integers(0, N - 1), st.integers(0, 1), st.sampled_from(BLOCKS))


def _assignment_item(kind: str, v: int, index: int, block: bytes) -> SignedAssignment | None:
    signed = _assignment(v, index, block)
    if signed is None:
        return None
    a = signed.assignment
    if kind == "bad_signature":
        return SignedAssignment.sign(KEYS[(v + 1) % N], a, index)
    if kind == "bad_cert":  # a delay certificate for the other candidate's core
        other = IndirectAssignmentCert(block, v, RelayVRFDelay(CANDIDATES[1 - index].core))
        return SignedAssignment.sign(KEYS[v], other, index)
    if kind == "bad_index":
        return SignedAssignment.sign(KEYS[v], a, 7)
    return signed


def _approval_item(kind: str, v: int, index: int, block: bytes) -> IndirectSignedApprovalVote:
    if kind == "bad_signature":
        return _approval(v, index, block, signer=(v + 1) % N)
    if kind == "bad_index":
        return IndirectSignedApprovalVote.sign(KEYS[v], block, 7, v, b"\x00" * 32, 0)
    if kind == "bad_validator":
        return IndirectSignedApprovalVote.sign(KEYS[v], block, index, N + 3,
                                               CANDIDATES[index].candidate_hash, 0)
    return _approval(v, index, block)


@st.composite
def message(draw: st.DrawFn) -> tuple[int, bytes] | str:
    """An encoded assignments or approvals message of one to three items, or "block": the
    second block arrives, or "later": six ticks pass."""
    what = draw(st.sampled_from(["assignments", "approvals", "approvals", "block", "later"]))
    if what in ("block", "later"):
        return what
    n = draw(st.integers(1, 3))
    if what == "assignments":
        signed = [_assignment_item(draw(st.sampled_from(ASSIGNMENT_KINDS)), *draw(items))
                  for _ in range(n)]
        return Topic.ASSIGNMENT, encode(AssignmentsMessage([s for s in signed if s is not None]))
    votes = [_approval_item(draw(st.sampled_from(APPROVAL_KINDS)), *draw(items))
             for _ in range(n)]
    return Topic.APPROVAL, encode(ApprovalsMessage(votes))


def _play(nodes: list[Node], script: list[tuple[int, bytes] | str]) -> list[list[Action]]:
    verdicts: list[list[Action]] = [[] for _ in nodes]
    for event in script:
        for node, seen in zip(nodes, verdicts, strict=True):
            if event == "block":
                node.import_block(BLOCKS[1])
            elif event == "later":
                node.tick += 6
            else:
                topic, data = event
                seen.append(node.receive(topic, bytes(bytearray(data))))  # bytes of its own
    return verdicts


@settings(max_examples=150, deadline=None)
@given(st.lists(message(), min_size=1, max_size=14))
def test_shared_batches_import_what_one_by_one_imports(
        script: list[tuple[int, bytes] | str]) -> None:
    alone = Node(9, one_by_one=True, tick=TICK)
    (expected,) = _play([alone], script)
    unshared = Node(9, tick=TICK)  # without sharing (a real node): one by one as always
    verdicts = _play([unshared], script)
    with sharing(SharedWork()):
        nodes = [Node(9, tick=TICK), Node(8, tick=TICK), Node(9, tick=TICK)]
        verdicts += _play(nodes, script)
    assert all(v == expected for v in verdicts)
    assert all(n.state() == alone.state() for n in [*nodes, unshared] if n.v.key == alone.v.key)


def _shared(work: SharedWork, kind: str) -> dict[str, int]:
    return work.counts().get(kind, {"computed": 0, "reused": 0})


def test_a_good_message_is_checked_once_for_all_nodes() -> None:
    signed = [s for v in range(2, 6) if (s := _assignment(v, 0, BLOCKS[0])) is not None]
    assignments = encode(AssignmentsMessage(signed))
    approvals = encode(ApprovalsMessage([_approval(s.assignment.validator, 0, BLOCKS[0])
                                         for s in signed]))
    with sharing(SharedWork()) as work:
        assert work is not None
        nodes = [Node(i) for i in (7, 8, 9)]
        for node in nodes:
            assert node.receive(Topic.ASSIGNMENT, bytes(bytearray(assignments))) is Action.ACCEPT
            assert node.receive(Topic.APPROVAL, bytes(bytearray(approvals))) is Action.ACCEPT
    assert _shared(work, "assignment_batch") == {"computed": 1, "reused": 2}
    assert _shared(work, "approval_batch") == {"computed": 1, "reused": 2}
    for node in nodes:
        assert node.checking.voting.approvals[CANDIDATES[0].candidate_hash] == \
            {s.assignment.validator for s in signed}


def test_every_node_rejects_a_bad_signature_and_charges_its_sender() -> None:
    good = _assignment(4, 0, BLOCKS[0])
    assert good is not None
    assignment = encode(AssignmentsMessage([good]))
    forged = encode(ApprovalsMessage([_approval(4, 0, BLOCKS[0]),
                                      _approval(4, 0, BLOCKS[0], signer=5)]))
    forged_assignment = encode(AssignmentsMessage(
        [good, SignedAssignment.sign(KEYS[6], good.assignment, 0)]))
    with sharing(SharedWork()) as work:
        assert work is not None
        nodes = [Node(i) for i in (7, 8, 9)]
        for node in nodes:
            assert node.receive(Topic.ASSIGNMENT, assignment) is Action.ACCEPT
            assert node.receive(Topic.APPROVAL, forged) is Action.REJECT
            assert node.receive(Topic.ASSIGNMENT, forged_assignment) is Action.REJECT
    for node in nodes:
        assert node.v.net.peers.charged == [(PEER, COST_INVALID_SIGNATURE), (PEER, COST_MAJOR)]
        # the good approval in the forged message still counts, as it would without sharing
        assert node.checking.voting.approvals[CANDIDATES[0].candidate_hash] == {4}
    # The failed batches were never stored: each node checked them itself.
    assert _shared(work, "approval_batch")["computed"] == 0
    assert _shared(work, "assignment_batch") == {"computed": 1, "reused": 2}


def test_nodes_that_tracked_a_block_differently_do_not_share_its_checks() -> None:
    signed = _assignment(4, 0, BLOCKS[0])
    assert signed is not None
    data = encode(AssignmentsMessage([signed]))
    with sharing(SharedWork()) as work:
        assert work is not None
        alike, different = Node(8), Node(9)
        # the same block hash, its candidates on other cores: the assignment's core is wrong
        different.checking.voting.drop_blocks([BLOCKS[0]])
        different.import_block(BLOCKS[0], [IncludedCandidate(b"\xc0" * 32, 1, 1), CANDIDATES[1]])
        assert alike.receive(Topic.ASSIGNMENT, data) is Action.ACCEPT
        assert different.receive(Topic.ASSIGNMENT, data) is Action.REJECT
    assert _shared(work, "assignment_batch") == {"computed": 1, "reused": 0}


def test_a_tranche_far_ahead_of_the_clock_is_not_imported_from_a_batch_either() -> None:
    far, now = _assignment(5, 0, BLOCKS[0]), _assignment(3, 0, BLOCKS[0])  # tranches 22 and 0
    assert far is not None and now is not None
    data = encode(AssignmentsMessage([far, now]))
    with sharing(SharedWork()):
        nodes = [Node(9, one_by_one=True, tick=TICK), Node(9, tick=TICK), Node(8, tick=TICK)]
        for node in nodes:
            assert node.receive(Topic.ASSIGNMENT, data) is Action.ACCEPT
            assert node.checking.voting.blocks[BLOCKS[0]].candidates[0].tranches == {0: {3: TICK}}
            node.tick += 3  # tranche 22 is now within TICK_TOO_FAR_IN_FUTURE
            assert node.receive(Topic.ASSIGNMENT, data) is Action.ACCEPT
            assert node.checking.voting.blocks[BLOCKS[0]].candidates[0].tranches == \
                {0: {3: TICK}, 22: {5: TICK + 3}}


def test_a_node_alone_in_its_process_checks_one_by_one_as_always() -> None:
    signed = _assignment(4, 0, BLOCKS[0])
    assert signed is not None
    voting = Node(9).checking.voting
    assert voting.check_assignments(b"message", [signed]) is None
    assert not voting.check_approvals(b"message", [_approval(4, 0, BLOCKS[0])])
    with sharing(SharedWork()):
        assert voting.check_assignments(b"message", [signed]) == (12,)  # its tranche
        assert voting.check_approvals(b"message", [_approval(4, 0, BLOCKS[0])])

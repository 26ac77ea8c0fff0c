"""Approval voting: per relay block and included candidate, who is assigned, who approved, and
whether the candidate (and so the block) is approved; which own assignments trigger; the finality
target (polkadot-sdk's approval-voting subsystem, pure).

State lives by lifetime: a `BlockEntry` per imported relay block holds one `ApprovalEntry` per
candidate the block included (its tranches of assignments, this validator's own assignment);
approvals are kept per candidate, since one approval counts wherever the candidate was included
(on every fork), but only from validators assigned under that block. Handlers check every rule
before they write: a bad assignment or approval raises `AssignmentCheckError` /
`ApprovalCheckError` (with polkadot's names) and changes nothing.

The caller drives time: `process_tick(tick)` re-counts every block not yet approved, marks what
became approved, and returns this validator's assignments that are due (to gossip) with the
candidates it must now recover and re-execute; after a successful check, `issue_approval` signs
the vote to gossip. `approved_ancestor` is the highest block on a chain whose candidates, and all
its ancestors' down to the finalized block, are approved: what a validator may vote final.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from proto.approvals import IndirectAssignmentCert, IndirectSignedApprovalVote, SignedAssignment
from proto.keys import Keypair
from proto.shared_work import shared, sharing_active
from relay.core.approval.checking import (
    All,
    Approved,
    ApprovedOneThird,
    Pending,
    RequiredTranches,
    check_approval,
    tranches_to_approve,
)
from relay.core.approval.criteria import (
    Assignment,
    IncludedCandidate,
    InvalidAssignment,
    SessionInfo,
    check_assignment_cert,
    compute_assignments,
    relay_vrf_story,
)
from relay.core.approval.ticks import (
    APPROVAL_DELAY,
    TICK_TOO_FAR_IN_FUTURE,
    no_show_duration,
    slot_start_tick,
)
from relay.core.block_tree import BlockTree, BlockTreeError
from relay.core.errors import NamedError
from relay.core.finality_vote import vote_target


class AssignmentCheckErrorKind(StrEnum):
    UnknownBlock = "UnknownBlock"
    InvalidCandidateIndex = "InvalidCandidateIndex"
    InvalidCert = "InvalidCert"


class AssignmentCheckError(NamedError):
    """An assignment to ignore, reporting the peer that sent it."""


class ApprovalCheckErrorKind(StrEnum):
    UnknownBlock = "UnknownBlock"
    InvalidCandidateIndex = "InvalidCandidateIndex"
    InvalidValidatorIndex = "InvalidValidatorIndex"
    InvalidSignature = "InvalidSignature"
    NoAssignment = "NoAssignment"


class ApprovalCheckError(NamedError):
    """An approval to ignore, reporting the peer that sent it."""


class ApprovalVotingError(ValueError):
    """A call the caller should not have made (a block that does not fit, an approval without an
    assignment): a bug above, not a peer's fault."""


class AssignmentCheckResult(StrEnum):
    Accepted = "Accepted"  # new: gossip it on
    AcceptedDuplicate = "AcceptedDuplicate"  # known: do not gossip again
    TooFarInFuture = "TooFarInFuture"  # for a tranche far ahead of our clock: not imported


class ApprovalCheckResult(StrEnum):
    Accepted = "Accepted"
    AcceptedDuplicate = "AcceptedDuplicate"


@dataclass
class ApprovalEntry:
    """One candidate under one relay block."""

    candidate_hash: bytes
    core: int
    backing_group: int
    our_assignment: Assignment | None
    tranches: dict[int, dict[int, int]] = field(default_factory=dict)  # tranche → {v: tick}
    triggered: bool = False
    approved: bool = False
    # Every validator in `tranches`, whatever its tranche: each assignment and approval that
    # arrives asks whether its validator is assigned, hundreds of times per block per node.
    assigned: set[int] = field(init=False)

    def __post_init__(self) -> None:
        self.assigned = {v for tranche in self.tranches.values() for v in tranche}

    def is_assigned(self, validator: int) -> bool:
        return validator in self.assigned

    def import_assignment(self, tranche: int, validator: int, tick: int) -> None:
        self.tranches.setdefault(tranche, {})[validator] = tick
        self.assigned.add(validator)


@dataclass
class BlockEntry:
    block_hash: bytes
    parent_hash: bytes
    number: int
    slot: int
    session_index: int
    session: SessionInfo
    relay_vrf_story: bytes
    candidates: list[ApprovalEntry]
    # Stands for what checking gossip about the block reads (its session and candidates): one
    # object for every simulated node that imported the block alike (`shared`), so a message's
    # check is keyed by it cheaply and shared only between nodes that would check it alike.
    token: object = field(default_factory=object, compare=False)
    block_tick: int = field(init=False)  # the tick its slot began at: read per gossip message

    def __post_init__(self) -> None:
        self.block_tick = slot_start_tick(self.slot)

    @property
    def approved(self) -> bool:
        return all(c.approved for c in self.candidates)


@dataclass(frozen=True)
class ApprovalWork:
    """A candidate this validator must now recover and re-execute, then approve or dispute."""

    block_hash: bytes
    candidate_index: int
    candidate_hash: bytes
    session_index: int
    tranche: int


@dataclass
class TickOutcome:
    approved_candidates: list[tuple[bytes, bytes]] = field(default_factory=list)  # (block, cand)
    approved_blocks: list[bytes] = field(default_factory=list)  # oldest first
    assignments: list[SignedAssignment] = field(default_factory=list)  # own, to gossip
    work: list[ApprovalWork] = field(default_factory=list)


def _check_assignment(block: BlockEntry, entry: ApprovalEntry, signed: SignedAssignment) -> int:
    """The tranche `signed` assigns its validator to `entry` in, or `AssignmentCheckError`."""
    a = signed.assignment
    try:
        tranche = check_assignment_cert(entry.core, a.validator, block.session,
                                        block.relay_vrf_story, a.cert, entry.backing_group)
    except InvalidAssignment as exc:
        raise AssignmentCheckError(AssignmentCheckErrorKind.InvalidCert,
                                   f"validator {a.validator}: {exc}") from None
    if not signed.check(block.session.validators[a.validator]):
        raise AssignmentCheckError(AssignmentCheckErrorKind.InvalidCert,
                                   f"validator {a.validator}: bad signature")
    return tranche


def _tranche_zero_pending(entry: ApprovalEntry) -> bool:
    ours = entry.our_assignment
    return ours is not None and ours.tranche == 0 and not entry.triggered


def should_trigger_assignment(entry: ApprovalEntry, required: RequiredTranches,
                              tranche_now: int) -> bool:
    """Whether this validator's own assignment to `entry` is due to be announced now."""
    ours = entry.our_assignment
    if ours is None or entry.triggered:
        return False
    if ours.tranche == 0:
        return True  # tranche-0 checkers always check, approved or not
    if entry.approved:
        return False
    if isinstance(required, All):
        return True
    if isinstance(required, Pending):
        due = max(0, tranche_now - required.clock_drift)
        return ours.tranche <= required.maximum_broadcast and ours.tranche <= due
    return False  # Exact: no further checkers are needed right now


class ApprovalVoting:
    def __init__(self, key: Keypair | None = None) -> None:
        self.key = key  # this validator's session key; None on a node that does not check
        self.own_public = key.public if key is not None else None
        self.blocks: dict[bytes, BlockEntry] = {}
        self.approvals: dict[bytes, set[int]] = {}  # candidate hash → validators that approved

    # -- blocks -----------------------------------------------------------------------------------

    def our_index(self, session: SessionInfo) -> int | None:
        if self.own_public is None or self.own_public not in session.validators:
            return None
        return session.validators.index(self.own_public)

    def import_block(self, block_hash: bytes, parent_hash: bytes, number: int, slot: int,
                     session_index: int, session: SessionInfo,
                     included: Sequence[IncludedCandidate]) -> bool:
        """Start tracking a relay block and the candidates it included (its `CandidateIncluded`
        events, in order: the candidate index of assignments and approvals). False if known."""
        if block_hash in self.blocks:
            return False
        cores = [c.core for c in included]
        if len(set(cores)) != len(cores):
            raise ApprovalVotingError(f"block #{number} includes two candidates on one core")
        bad = [c for c in cores if not 0 <= c < session.n_cores]
        if bad:
            raise ApprovalVotingError(f"block #{number} includes a candidate on core {bad[0]} "
                                      f"of {session.n_cores}")
        story = relay_vrf_story(block_hash)
        me = self.our_index(session)
        ours = compute_assignments(session, me, story, included) if me is not None else {}
        entries = [ApprovalEntry(c.candidate_hash, c.core, c.backing_group, ours.get(c.core))
                   for c in included]
        token = shared("approval_block", (block_hash, session_index, session, tuple(included)),
                       object)
        self.blocks[block_hash] = BlockEntry(block_hash, parent_hash, number, slot, session_index,
                                             session, story, entries, token)
        for c in included:
            self.approvals.setdefault(c.candidate_hash, set())
        return True

    def is_approved(self, block_hash: bytes) -> bool:
        b = self.blocks.get(block_hash)
        return b is not None and b.approved

    def prune_finalized(self, finalized_number: int) -> None:
        """Forget blocks at or below the finalized height, and approvals nothing refers to."""
        final = [h for h, b in self.blocks.items() if b.number <= finalized_number]
        if final:  # approvals outlive no block (`drop_blocks`): with none dropped, none go
            self.drop_blocks(final)

    def drop_blocks(self, hashes: Sequence[bytes]) -> None:
        """Forget blocks (finalized, pruned or reverted)."""
        for h in hashes:
            self.blocks.pop(h, None)
        live = {c.candidate_hash for b in self.blocks.values() for c in b.candidates}
        self.approvals = {h: v for h, v in self.approvals.items() if h in live}

    # -- gossip in ---------------------------------------------------------------------------------

    def _entry(self, block_hash: bytes, index: int,
               err: type[NamedError], kinds: Any) -> tuple[BlockEntry, ApprovalEntry]:
        block = self.blocks.get(block_hash)
        if block is None:
            raise err(kinds.UnknownBlock, f"block 0x{block_hash.hex()[:16]}")
        if not 0 <= index < len(block.candidates):
            raise err(kinds.InvalidCandidateIndex,
                      f"{index} of {len(block.candidates)} in block #{block.number}")
        return block, block.candidates[index]

    def check_and_import_assignment(self, signed: SignedAssignment,
                                    tick_now: int) -> AssignmentCheckResult:
        a = signed.assignment
        K = AssignmentCheckErrorKind
        block, entry = self._entry(a.block_hash, signed.candidate_index, AssignmentCheckError, K)
        # The same signed assignment under the same block (its hash is in the assignment)
        # checks out alike on every node: a simulation checks it once for all of them.
        tranche = shared("assignment", (signed, entry.core, entry.backing_group),
                         lambda: _check_assignment(block, entry, signed))
        return self.import_assignment(signed, tranche, tick_now)

    def check_assignments(self, batch: Hashable,
                          signed: Sequence[SignedAssignment]) -> tuple[int, ...] | None:
        """Each of `signed`'s tranche, if all are for one tracked block and check out (the
        checking half of `check_and_import_assignment`, for `import_assignments`); None if not,
        changing nothing: the caller then takes them one at a time and meets each error.
        `batch` is a key `signed` is a function of (the message's bytes): simulated nodes that
        track the block alike check the message once for all of them. (An honest validator
        sends one message per block; one naming several goes one at a time.) A node alone in
        its process (no `sharing`) gains nothing here and goes one at a time as always: a bad
        message must not cost it the check twice."""
        if not (signed and sharing_active()):
            return None
        block = self.blocks.get(signed[0].assignment.block_hash)
        if block is None:
            return None

        def check() -> tuple[int, ...]:
            tranches = []
            for s in signed:
                if s.assignment.block_hash != block.block_hash:
                    raise AssignmentCheckError(AssignmentCheckErrorKind.UnknownBlock)
                _, entry = self._entry(block.block_hash, s.candidate_index, AssignmentCheckError,
                                       AssignmentCheckErrorKind)
                tranches.append(_check_assignment(block, entry, s))
            return tuple(tranches)

        try:  # a failure is never shared: each node that meets one goes one by one
            return shared("assignment_batch", (batch, block.token), check)
        except AssignmentCheckError:
            return None

    def import_assignment(self, signed: SignedAssignment, tranche: int,
                          tick_now: int) -> AssignmentCheckResult:
        """Import an assignment that checked out at `tranche` (for a block still tracked)."""
        a = signed.assignment
        block = self.blocks[a.block_hash]
        entry = block.candidates[signed.candidate_index]
        if tranche >= max(0, tick_now - block.block_tick) + TICK_TOO_FAR_IN_FUTURE:
            return AssignmentCheckResult.TooFarInFuture
        if a.validator in entry.assigned:
            return AssignmentCheckResult.AcceptedDuplicate
        entry.import_assignment(tranche, a.validator, tick_now)
        return AssignmentCheckResult.Accepted

    def import_assignments(self, signed: Sequence[SignedAssignment], tranches: Sequence[int],
                           tick_now: int) -> bool:
        """`import_assignment` of each of a batch `check_assignments` passed, in order: whether
        any was `Accepted`. One block's lookups for them all: a node imports about every
        assignment of every block."""
        block = self.blocks[signed[0].assignment.block_hash]
        candidates = block.candidates
        horizon = max(0, tick_now - block.block_tick) + TICK_TOO_FAR_IN_FUTURE
        accepted = False
        for s, tranche in zip(signed, tranches, strict=True):
            entry = candidates[s.candidate_index]
            v = s.assignment.validator
            if tranche < horizon and v not in entry.assigned:
                entry.import_assignment(tranche, v, tick_now)
                accepted = True
        return accepted

    def check_and_import_approval(self, vote: IndirectSignedApprovalVote) -> ApprovalCheckResult:
        K = ApprovalCheckErrorKind
        block, entry = self._entry(vote.block_hash, vote.candidate_index, ApprovalCheckError, K)
        v = vote.validator
        if not 0 <= v < block.session.n_validators:
            raise ApprovalCheckError(K.InvalidValidatorIndex, f"validator {v}")
        if not entry.is_assigned(v):
            raise ApprovalCheckError(K.NoAssignment, f"validator {v}")
        if not vote.check(block.session.validators[v], entry.candidate_hash, block.session_index):
            raise ApprovalCheckError(K.InvalidSignature, f"validator {v}")
        approvals = self.approvals[entry.candidate_hash]
        if v in approvals:
            return ApprovalCheckResult.AcceptedDuplicate
        approvals.add(v)
        return ApprovalCheckResult.Accepted

    def check_approvals(self, batch: Hashable, votes: Sequence[IndirectSignedApprovalVote]) -> bool:
        """Whether all of `votes` are for one tracked block, name validators of its session and
        are signed by them (what `check_and_import_approval` checks but the assignment, which
        `import_approvals` checks); False if not: the caller then takes them one at a time and
        meets each error. `batch` and a node alone as in `check_assignments`."""
        if not (votes and sharing_active()):
            return False
        block = self.blocks.get(votes[0].block_hash)
        if block is None:
            return False

        def check() -> bool:
            K = ApprovalCheckErrorKind
            session = block.session
            for vote in votes:
                if vote.block_hash != block.block_hash:
                    raise ApprovalCheckError(K.UnknownBlock)
                _, entry = self._entry(block.block_hash, vote.candidate_index, ApprovalCheckError,
                                       K)
                v = vote.validator
                if not 0 <= v < session.n_validators:
                    raise ApprovalCheckError(K.InvalidValidatorIndex, f"validator {v}")
                if not vote.check(session.validators[v], entry.candidate_hash,
                                  block.session_index):
                    raise ApprovalCheckError(K.InvalidSignature, f"validator {v}")
            return True

        try:  # a failure is never shared: each node that meets one goes one by one
            return shared("approval_batch", (batch, block.token), check)
        except ApprovalCheckError:
            return False

    def import_approvals(self, votes: Sequence[IndirectSignedApprovalVote]
                         ) -> tuple[bool, list[IndirectSignedApprovalVote]]:
        """Import a batch `check_approvals` passed: whether any was new (`Accepted`), and those
        whose validator's assignment is not here yet (`NoAssignment`, not imported), in order."""
        candidates = self.blocks[votes[0].block_hash].candidates
        approvals = self.approvals
        accepted = False
        unassigned = []
        for vote in votes:
            entry = candidates[vote.candidate_index]
            v = vote.validator
            if v not in entry.assigned:
                unassigned.append(vote)
                continue
            approved = approvals[entry.candidate_hash]
            if v not in approved:
                approved.add(v)
                accepted = True
        return accepted, unassigned

    # -- own work ----------------------------------------------------------------------------------

    def process_tick(self, tick_now: int) -> TickOutcome:
        """Re-count every block not yet approved at `tick_now`: what became approved, and this
        validator's assignments that are now due (signed, imported as its own)."""
        key = self.key
        out = TickOutcome()
        for block in sorted(self.blocks.values(), key=lambda b: (b.number, b.block_hash)):
            if block.approved and not any(_tranche_zero_pending(c) for c in block.candidates):
                continue
            was_approved = block.approved
            tranche_now = max(0, tick_now - block.block_tick)
            for index, entry in enumerate(block.candidates):
                ours = entry.our_assignment
                if entry.approved:
                    # Nothing left to count; only a tranche-0 assignment of ours may be due
                    # (tranche-0 checkers check approved or not), which needs no tranche count.
                    if key is not None and ours is not None and _tranche_zero_pending(entry):
                        self._announce(out, block, index, entry, key, tick_now)
                    continue
                required = self._required(block, entry, tranche_now)
                if self._approved(block, entry, required, tick_now):
                    entry.approved = True
                    out.approved_candidates.append((block.block_hash, entry.candidate_hash))
                if key is not None and ours is not None and should_trigger_assignment(
                        entry, required, tranche_now):
                    self._announce(out, block, index, entry, key, tick_now)
            if block.approved and not was_approved:
                out.approved_blocks.append(block.block_hash)
        return out

    @staticmethod
    def _checkers(block: BlockEntry, entry: ApprovalEntry) -> int:
        """How many validators may check the candidate: all but its backing group (whose
        members are never assigned to it)."""
        s = block.session
        group = s.validator_groups[entry.backing_group] \
            if 0 <= entry.backing_group < len(s.validator_groups) else ()
        return s.n_validators - len(group)

    def _required(self, block: BlockEntry, entry: ApprovalEntry,
                  tranche_now: int) -> RequiredTranches:
        s = block.session
        # A network smaller than polkadot's may have fewer possible checkers than
        # `needed_approvals` (4 validators in one backing group have none): all of them will do.
        needed = max(1, min(s.needed_approvals, self._checkers(block, entry)))
        return tranches_to_approve(entry.tranches, self.approvals[entry.candidate_hash],
                                   tranche_now, block.block_tick,
                                   no_show_duration(s.no_show_slots), needed,
                                   s.n_validators).required

    def _approved(self, block: BlockEntry, entry: ApprovalEntry, required: RequiredTranches,
                  tick_now: int) -> bool:
        if self._checkers(block, entry) == 0:
            return True  # every validator backed it: backing was the only check there can be
        check = check_approval(entry.tranches, self.approvals[entry.candidate_hash],
                               block.session.n_validators, required)
        if isinstance(check, Approved):
            last = check.last_assignment_tick
            return last is None or last <= tick_now - APPROVAL_DELAY
        return isinstance(check, ApprovedOneThird)

    def _announce(self, out: TickOutcome, block: BlockEntry, index: int, entry: ApprovalEntry,
                  key: Keypair, tick_now: int) -> None:
        """Our assignment to `entry` is due: signed into `out`, and the check to run."""
        out.assignments.append(self._trigger(block, index, entry, key, tick_now))
        assert entry.our_assignment is not None
        out.work.append(ApprovalWork(block.block_hash, index, entry.candidate_hash,
                                     block.session_index, entry.our_assignment.tranche))

    def _trigger(self, block: BlockEntry, index: int, entry: ApprovalEntry, key: Keypair,
                 tick_now: int) -> SignedAssignment:
        ours = entry.our_assignment
        assert ours is not None
        entry.triggered = True
        entry.import_assignment(ours.tranche, ours.validator_index, tick_now)
        cert = IndirectAssignmentCert(block.block_hash, ours.validator_index, ours.cert)
        return SignedAssignment.sign(key, cert, index)

    def issue_approval(self, block_hash: bytes, candidate_index: int) -> IndirectSignedApprovalVote:
        """Sign and import this validator's approval after it re-executed the candidate."""
        key = self.key
        block = self.blocks.get(block_hash)
        if block is None or not 0 <= candidate_index < len(block.candidates):
            raise ApprovalVotingError("approval for a candidate this node does not track")
        entry = block.candidates[candidate_index]
        ours = entry.our_assignment
        if key is None or ours is None or not entry.triggered:
            raise ApprovalVotingError(f"no triggered assignment for candidate {candidate_index} "
                                      f"of block #{block.number}")
        vote = IndirectSignedApprovalVote.sign(key, block_hash, candidate_index,
                                               ours.validator_index, entry.candidate_hash,
                                               block.session_index)
        self.approvals[entry.candidate_hash].add(ours.validator_index)
        return vote

    # -- finality ----------------------------------------------------------------------------------

    def approved_ancestor(self, chain: BlockTree[Any], head: bytes) -> bytes:
        """The highest block on `head`'s chain such that it and every block between it and the
        finalized one are approved; the finalized block if the first one above it is not.
        (A validator's vote also heeds disputes: `relay.core.finality_vote`.)"""
        try:
            path = chain.path_above_finalized(head)
        except BlockTreeError:
            raise ApprovalVotingError("head does not descend from the finalized block") from None
        n = vote_target(path, self.is_approved, lambda _: True).approved
        return path[n - 1] if n else chain.finalized

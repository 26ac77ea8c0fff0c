"""The dispute coordinator (polkadot-sdk's dispute-coordinator and the runtime's dispute rules,
pure): every vote on every candidate that may be disputed, whether it is disputed, what a
conclusion means for the chain.

- A candidate is disputed once it has votes on both sides. Backing votes come with its inclusion
  (`note_included`), approvals when they are cast; an explicit invalid vote from a checker or a
  backer starts the dispute (`DisputeInitiated`). Every validator then re-executes the candidate
  and votes (`issue_local_statement`); `dispute_message` is what it sends the others.
- More than two thirds on one side conclude it (`DisputeConcluded`). Invalid: the blocks that
  included the candidate go with their descendants (`Revert(number)` per including block, the
  blocks themselves from `revert.blocks_to_revert` over the caller's block tree); whoever voted
  valid lost: the backers (`ForInvalidBacked`) and approvers (`ForInvalidApproved`). Valid: whoever
  voted invalid lost (`AgainstValid`). Losers are reported as offences and to be disabled
  (`disabled_after` keeps at most a byzantine third of the validators disabled, as polkadot's
  disabling limit does).
- Finality must not pass a block with a candidate that is disputed and not concluded valid
  (`undisputed_chain`).

Polkadot reverts a little earlier, once more than a third voted invalid (at least one honest
validator did); here the revert follows the conclusion, which a third plus the honest rest
reaches soon after. Handlers check every statement before they count any: a bad one raises
`DisputeError` and nothing changes.

Backing votes that come with an inclusion are checked at once but, while they could not decide
anything (no invalid vote, fewer than a supermajority for), held uncounted (`CandidateVotes.held`)
until anything else reads or changes that candidate's votes. Nearly every candidate is never
disputed, and every validator imports every block: counting each block's backing votes on the
spot was most of the coordinator's work. Counting later gives the same state (valid votes only
add up), so every call answers as if they had been counted on arrival.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from proto.candidate import CandidateReceipt
from proto.disputes import SignedDisputeStatement, UncheckedDisputeMessage
from proto.keys import Keypair
from proto.shared_work import shared
from relay.core.disputes.state import (
    DisputeFlags,
    DisputeState,
    ImportSummary,
    Vote,
    byzantine_threshold,
    import_votes,
)
from relay.core.errors import NamedError
from relay.core.events import (
    DisputeEvent,
    DisputeEventKind,
    DisputeLocation,
    DisputeResult,
    OffenceEvent,
    OffenceKind,
    RelayEvent,
)
from relay.core.inclusion import supermajority_threshold


class DisputeErrorKind(StrEnum):
    AncientDisputeStatement = "AncientDisputeStatement"
    UnknownSession = "UnknownSession"
    ValidatorIndexOutOfBounds = "ValidatorIndexOutOfBounds"
    InvalidSignature = "InvalidSignature"
    StatementForAnotherCandidate = "StatementForAnotherCandidate"


class DisputeError(NamedError):
    """Dispute statements that cannot be imported (from a peer: report it)."""


class DisputeStatus(StrEnum):
    Active = "Active"
    Confirmed = "Confirmed"
    ConcludedFor = "ConcludedFor"
    ConcludedAgainst = "ConcludedAgainst"

    @property
    def possibly_invalid(self) -> bool:
        return self is not DisputeStatus.ConcludedFor


class CandidateVotes:
    """Every vote on one candidate: `state` counts them, `valid` and `invalid` keep the signed
    statements (the first of each validator). `held`: checked backing votes not counted yet
    (see the module docstring); reading `state` or `valid` counts them first. `noted_at`: the
    relay block number when the first vote came."""

    def __init__(self, session_index: int, candidate_hash: bytes, state: DisputeState,
                 receipt: CandidateReceipt | None = None, noted_at: int = 0) -> None:
        self.session_index = session_index
        self.candidate_hash = candidate_hash
        self.noted_at = noted_at
        self._state = state
        self.receipt = receipt
        self._valid: dict[int, SignedDisputeStatement] = {}
        self.invalid: dict[int, SignedDisputeStatement] = {}
        self.included_in: dict[bytes, int] = {}  # block hash → number
        self.initiated = False
        self.held: list[SignedDisputeStatement] = []
        self._held_voters: set[int] = set()

    @property
    def state(self) -> DisputeState:
        self._count_held()
        return self._state

    @state.setter
    def state(self, state: DisputeState) -> None:
        self._count_held()
        self._state = state

    @property
    def valid(self) -> dict[int, SignedDisputeStatement]:
        self._count_held()
        return self._valid

    def can_hold(self, backing: Sequence[SignedDisputeStatement]) -> bool:
        """Whether counting these backing votes now would decide nothing: no invalid vote, not
        concluded, and still short of a supermajority for (backing votes are all valid)."""
        s = self._state
        if self.invalid or s.validators_against or s.concluded_at is not None:
            return False
        voters = s.validators_for | self._held_voters | {v.validator_index for v in backing}
        return len(voters) < supermajority_threshold(s.n_validators)

    def hold(self, backing: Sequence[SignedDisputeStatement]) -> None:
        self.held.extend(backing)
        self._held_voters.update(v.validator_index for v in backing)

    def _count_held(self) -> None:
        if not self.held:
            return
        held, self.held = self.held, []
        self._held_voters = set()
        # Valid votes only, short of a supermajority (`can_hold`): nothing concludes, so `now`
        # is never recorded, and the state is what counting them one block at a time gave.
        summary = import_votes(self._state, [Vote(v.validator_index, True, v.kind.is_backing)
                                             for v in held], 0)
        self._state = summary.state
        for v in held:
            self._valid.setdefault(v.validator_index, v)

    @property
    def disputed(self) -> bool:
        """Votes on both sides (held backing votes are all for, and only held without any
        against)."""
        return not self.held and self._state.disputed

    @property
    def concluded_at(self) -> int | None:
        return None if self.held else self._state.concluded_at

    @property
    def concluded_invalid(self) -> bool:
        return not self.held and self._state.concluded_invalid

    def has_voted(self, validator: int) -> bool:
        return validator in self._held_voters or validator in self._valid \
            or validator in self.invalid

    @property
    def status(self) -> DisputeStatus | None:
        if not self.disputed:
            return None
        s = self.state
        flags = s.flags
        if DisputeFlags.AGAINST_SUPERMAJORITY in flags:
            return DisputeStatus.ConcludedAgainst
        if DisputeFlags.FOR_SUPERMAJORITY in flags:
            return DisputeStatus.ConcludedFor
        return DisputeStatus.Confirmed if DisputeFlags.CONFIRMED in flags else DisputeStatus.Active


@dataclass
class DisputeOutcome:
    """What one import means: events for the relay chain, who lost, what to revert."""

    initiated: bool = False
    concluded: list[DisputeResult] = field(default_factory=list)
    events: list[RelayEvent] = field(default_factory=list)
    offenders: frozenset[int] = frozenset()  # to report and disable
    revert_from: frozenset[bytes] = frozenset()  # including blocks: `blocks_to_revert` roots


def disabled_after(disabled: frozenset[int], offenders: Iterable[int],
                   n_validators: int) -> frozenset[int]:
    """`disabled` plus `offenders`, lowest index first, up to a byzantine third of the set."""
    out = set(disabled)
    limit = byzantine_threshold(n_validators)
    for v in sorted(set(offenders) - out):
        if len(out) >= limit:
            break
        out.add(v)
    return frozenset(out)


def _first_bad(candidate_hash: bytes, session_index: int, validators: Sequence[bytes],
               statements: Sequence[SignedDisputeStatement]) -> tuple[DisputeErrorKind, int] | None:
    """What is wrong with the first bad statement, and whose it is; None if all are good."""
    K = DisputeErrorKind
    for s in statements:
        if s.candidate_hash != candidate_hash or s.session_index != session_index:
            return K.StatementForAnotherCandidate, s.validator_index
        if not 0 <= s.validator_index < len(validators):
            return K.ValidatorIndexOutOfBounds, s.validator_index
        if not s.check(validators[s.validator_index]):
            return K.InvalidSignature, s.validator_index
    return None


class DisputeCoordinator:
    def __init__(self, dispute_period: int, post_conclusion_acceptance_period: int) -> None:
        self.dispute_period = dispute_period
        self.post_conclusion_acceptance_period = post_conclusion_acceptance_period
        self.sessions: dict[int, tuple[bytes, ...]] = {}
        self.current_session = 0
        self.candidates: dict[tuple[int, bytes], CandidateVotes] = {}

    # -- sessions and inclusions -------------------------------------------------------------

    def note_session(self, session_index: int, validators: Sequence[bytes]) -> None:
        """A session's validator set; sessions older than `dispute_period` are forgotten."""
        if session_index in self.sessions and session_index <= self.current_session:
            return  # every block of a session notes it: nothing ages out until a newer one
        self.sessions[session_index] = tuple(validators)
        self.current_session = max(self.current_session, session_index)
        oldest = self.current_session - self.dispute_period
        self.sessions = {s: v for s, v in self.sessions.items() if s >= oldest}
        self.candidates = {k: c for k, c in self.candidates.items() if k[0] >= oldest}

    def note_included(self, session_index: int, receipt: CandidateReceipt, block_hash: bytes,
                      block_number: int, backing_votes: Sequence[SignedDisputeStatement],
                      now: int) -> DisputeOutcome:
        """A relay block included the candidate; its backing votes count as valid votes. If it was
        already concluded invalid, this block is to be reverted too."""
        h = receipt.hash()
        key = (session_index, h)
        votes = self.candidates.get(key)
        validators: tuple[bytes, ...] | None = None  # set once the backing votes are checked
        if backing_votes and (votes is None or votes.receipt is not None):
            # Checked now (as the import would), counted when anything else comes about this
            # candidate if counting them now could decide nothing (the module docstring).
            validators = self._check(session_index, h, backing_votes, now)
            holder = votes if votes is not None else CandidateVotes(
                session_index, h, DisputeState(len(validators)), receipt, noted_at=now)
            if holder.can_hold(backing_votes):
                holder.hold(backing_votes)
                self.candidates[key] = votes = holder
                backing_votes = ()
        if backing_votes or votes is None or votes.receipt is None \
                or votes.concluded_at is not None:
            if validators is None:
                validators = self._check(session_index, h, backing_votes, now)
            # Checked above when they might have been held: not verified a second time.
            outcome = self._import_checked(session_index, h, backing_votes, now, receipt,
                                           validators)
            votes = self.candidates[key]
        else:
            # Known, not concluded, and no votes to count now (the inclusion of a candidate
            # backed earlier, or backing votes held): an import of nothing changes nothing; only
            # the including block is new. (A concluded one goes the whole way: its acceptance
            # period is checked there.)
            outcome = DisputeOutcome()
        votes.included_in[block_hash] = block_number
        if votes.concluded_invalid:
            outcome.revert_from = outcome.revert_from | {block_hash}
            outcome.events.append(DisputeEvent(DisputeEventKind.REVERT, session_index, h,
                                               revert_number=block_number))
        return outcome

    # -- votes ---------------------------------------------------------------------------------

    def _check(self, session_index: int, candidate_hash: bytes,
               statements: Sequence[SignedDisputeStatement], now: int) -> tuple[bytes, ...]:
        K = DisputeErrorKind
        if session_index < self.current_session - self.dispute_period:
            raise DisputeError(K.AncientDisputeStatement, f"session {session_index}")
        validators = self.sessions.get(session_index)
        if validators is None:
            raise DisputeError(K.UnknownSession, f"session {session_index}")
        known = self.candidates.get((session_index, candidate_hash))
        concluded_at = known.concluded_at if known is not None else None
        if concluded_at is not None and now > concluded_at + self.post_conclusion_acceptance_period:
            raise DisputeError(K.AncientDisputeStatement, "the dispute concluded long ago")
        if statements:
            # Pure, so the simulated nodes check each block's backing votes once
            # (`proto.shared_work`), keyed by everything it reads.
            bad = shared("dispute_statements",
                         (candidate_hash, session_index, validators, tuple(statements)),
                         lambda: _first_bad(candidate_hash, session_index, validators, statements))
            if bad is not None:
                raise DisputeError(bad[0], f"validator {bad[1]}")
        return validators

    def import_statements(self, session_index: int, candidate_hash: bytes,
                          statements: Sequence[SignedDisputeStatement], now: int,
                          receipt: CandidateReceipt | None = None) -> DisputeOutcome:
        """Count signed votes on one candidate (`now`: the current relay block number)."""
        validators = self._check(session_index, candidate_hash, statements, now)
        return self._import_checked(session_index, candidate_hash, statements, now, receipt,
                                    validators)

    def _import_checked(self, session_index: int, candidate_hash: bytes,
                        statements: Sequence[SignedDisputeStatement], now: int,
                        receipt: CandidateReceipt | None,
                        validators: tuple[bytes, ...]) -> DisputeOutcome:
        """`import_statements` once `_check` passed them (`validators`: their session's)."""
        if receipt is not None and receipt.hash() != candidate_hash:
            raise DisputeError(DisputeErrorKind.StatementForAnotherCandidate, "receipt")
        key = (session_index, candidate_hash)
        votes = self.candidates.get(key) or CandidateVotes(
            session_index, candidate_hash, DisputeState(len(validators)), noted_at=now)
        summary = import_votes(votes.state, [Vote(s.validator_index, s.valid, s.kind.is_backing)
                                             for s in statements], now)
        # every check passed: write
        self.candidates[key] = votes
        votes.state = summary.state
        if receipt is not None:
            votes.receipt = receipt
        for s in statements:
            (votes.valid if s.valid else votes.invalid).setdefault(s.validator_index, s)
        return self._outcome(votes, summary)

    def _outcome(self, votes: CandidateVotes, summary: ImportSummary) -> DisputeOutcome:
        out = DisputeOutcome()
        s, h = votes.session_index, votes.candidate_hash
        if votes.state.disputed and not votes.initiated:
            votes.initiated = out.initiated = True
            where = DisputeLocation.LOCAL if votes.included_in else DisputeLocation.REMOTE
            out.events.append(DisputeEvent(DisputeEventKind.INITIATED, s, h, location=where))
        if DisputeFlags.FOR_SUPERMAJORITY in summary.new_flags:
            out.concluded.append(DisputeResult.VALID)
        if DisputeFlags.AGAINST_SUPERMAJORITY in summary.new_flags:
            out.concluded.append(DisputeResult.INVALID)
            out.revert_from = frozenset(votes.included_in)
        for result in out.concluded:
            out.events.append(DisputeEvent(DisputeEventKind.CONCLUDED, s, h, result=result))
        if out.revert_from:
            for number in sorted(set(votes.included_in.values())):
                out.events.append(DisputeEvent(DisputeEventKind.REVERT, s, h,
                                               revert_number=number))
        backers = summary.state.backers
        for kind, who in ((OffenceKind.ForInvalidBacked, summary.slash_for & backers),
                          (OffenceKind.ForInvalidApproved, summary.slash_for - backers),
                          (OffenceKind.AgainstValid, summary.slash_against)):
            if who:
                out.events.append(OffenceEvent(kind, s, h, tuple(sorted(who))))
        out.offenders = summary.slash_for | summary.slash_against
        return out

    def issue_local_statement(self, key: Keypair, validator_index: int, session_index: int,
                              candidate_hash: bytes, valid: bool,
                              now: int) -> tuple[SignedDisputeStatement, DisputeOutcome]:
        """This validator's own verdict after re-executing the candidate, signed and counted."""
        statement = SignedDisputeStatement.explicit(key, valid, candidate_hash, session_index,
                                                    validator_index)
        return statement, self.import_statements(session_index, candidate_hash, [statement], now)

    def dispute_message(self, session_index: int, candidate_hash: bytes,
                        own: SignedDisputeStatement) -> UncheckedDisputeMessage | None:
        """The message to send every validator: `own` vote and one from the other side. None
        while the receipt or an opposing vote is missing (nothing to dispute yet)."""
        votes = self.candidates.get((session_index, candidate_hash))
        if votes is None or votes.receipt is None:
            return None
        other = votes.invalid if own.valid else votes.valid
        if not other:
            return None
        counter = other[min(other)]
        invalid, valid = (counter, own) if own.valid else (own, counter)
        return UncheckedDisputeMessage(votes.receipt, session_index, invalid, valid)

    # -- queries -------------------------------------------------------------------------------

    def status(self, session_index: int, candidate_hash: bytes) -> DisputeStatus | None:
        votes = self.candidates.get((session_index, candidate_hash))
        return votes.status if votes is not None else None

    def has_voted(self, session_index: int, candidate_hash: bytes, validator: int) -> bool:
        votes = self.candidates.get((session_index, candidate_hash))
        return votes is not None and votes.has_voted(validator)

    def active_disputes(self) -> list[tuple[int, bytes]]:
        return sorted(k for k, c in self.candidates.items()
                      if c.status in (DisputeStatus.Active, DisputeStatus.Confirmed))

    def undisputed_chain(self, base: bytes,
                         blocks: Sequence[tuple[bytes, int, Sequence[bytes]]]) -> bytes:
        """The highest of `blocks` (each `(hash, session, included candidate hashes)`, in chain
        order above `base`) below the first one holding a candidate that is disputed and not
        concluded valid: how far finality may go (polkadot's `DetermineUndisputedChain`)."""
        last = base
        for block_hash, session_index, included in blocks:
            if any(self.possibly_invalid(session_index, h) for h in included):
                return last
            last = block_hash
        return last

    def possibly_invalid(self, session_index: int, candidate_hash: bytes) -> bool:
        """Disputed and not concluded valid: finality must not pass a block that backed it."""
        status = self.status(session_index, candidate_hash)
        return status is not None and status.possibly_invalid

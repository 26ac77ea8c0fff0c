"""The votes of one dispute and what they decide (polkadot-sdk's `DisputeState` and its importer).

A dispute is about one candidate in one session. Each validator's votes count once per side:
backing statements and approvals are votes for validity, explicit statements for either side. A
validator that voted on both sides (it can only be dishonest) counts on both.

Thresholds over the session's `n` validators, the project's supermajority:
- confirmed: more than `byzantine_threshold(n) = (n-1)//3` validators took part, so at least one
  honest validator did;
- concluded valid (`FOR_SUPERMAJORITY`) or invalid (`AGAINST_SUPERMAJORITY`): at least
  `supermajority_threshold(n) = n - (n-1)//3` votes on that side, more than two thirds.

When a side first reaches its supermajority, every validator on the other side lost; a vote on the
losing side that arrives later loses too (it is reported when it comes). A dispute that concludes
in one direction can, with more than a third of the validators dishonest, conclude in the other
as well; each direction concludes once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Flag, auto

from relay.core.inclusion import supermajority_threshold


def byzantine_threshold(n: int) -> int:
    """The most validators that may be faulty: `(n-1)//3` (4→1, 7→2, 10→3)."""
    return (n - 1) // 3 if n > 0 else 0


class DisputeFlags(Flag):
    NONE = 0
    CONFIRMED = auto()
    FOR_SUPERMAJORITY = auto()
    AGAINST_SUPERMAJORITY = auto()
    AGAINST_BYZANTINE = auto()  # more than a third voted invalid: at least one honest did


class DisputeStateError(ValueError):
    """A vote from a validator index outside the session."""


@dataclass(frozen=True)
class Vote:
    validator: int
    valid: bool
    backing: bool = False


@dataclass(frozen=True)
class DisputeState:
    n_validators: int
    validators_for: frozenset[int] = frozenset()
    validators_against: frozenset[int] = frozenset()
    backers: frozenset[int] = frozenset()
    concluded_at: int | None = None

    @property
    def flags(self) -> DisputeFlags:
        n = self.n_validators
        byz, sup = byzantine_threshold(n), supermajority_threshold(n)
        f = DisputeFlags.NONE
        if len(self.validators_for | self.validators_against) > byz:
            f |= DisputeFlags.CONFIRMED
        if len(self.validators_for) >= sup:
            f |= DisputeFlags.FOR_SUPERMAJORITY
        if len(self.validators_against) > byz:
            f |= DisputeFlags.AGAINST_BYZANTINE
        if len(self.validators_against) >= sup:
            f |= DisputeFlags.AGAINST_SUPERMAJORITY
        return f

    @property
    def disputed(self) -> bool:
        """Votes on both sides: a dispute, not just votes."""
        return bool(self.validators_for) and bool(self.validators_against)

    @property
    def concluded_invalid(self) -> bool:
        return DisputeFlags.AGAINST_SUPERMAJORITY in self.flags

    @property
    def concluded_valid(self) -> bool:
        return DisputeFlags.FOR_SUPERMAJORITY in self.flags


@dataclass(frozen=True)
class ImportSummary:
    state: DisputeState
    new_flags: DisputeFlags
    slash_for: frozenset[int]  # voted valid on a candidate concluded invalid (incl. backers)
    slash_against: frozenset[int]  # voted invalid on a candidate concluded valid
    new_participants: frozenset[int]


def import_votes(state: DisputeState, votes: Iterable[Vote], now: int) -> ImportSummary:
    """Count `votes` (duplicates count once) and say who newly lost. Pure: `state` is unchanged;
    an out-of-range validator raises before anything is counted."""
    votes = list(votes)
    bad = [v.validator for v in votes if not 0 <= v.validator < state.n_validators]
    if bad:
        raise DisputeStateError(f"validator {bad[0]} is not in a session of {state.n_validators}")
    before = state
    pre_flags = state.flags
    valid = set(state.validators_for)
    invalid = set(state.validators_against)
    backers = set(state.backers)
    for v in votes:
        (valid if v.valid else invalid).add(v.validator)
        if v.valid and v.backing:
            backers.add(v.validator)
    after = replace(state, validators_for=frozenset(valid), validators_against=frozenset(invalid),
                    backers=frozenset(backers))
    post_flags = after.flags
    new_flags = post_flags & ~pre_flags
    if after.concluded_at is None and new_flags & (DisputeFlags.FOR_SUPERMAJORITY
                                                   | DisputeFlags.AGAINST_SUPERMAJORITY):
        after = replace(after, concluded_at=now)

    slash_against: frozenset[int] = frozenset()
    if DisputeFlags.FOR_SUPERMAJORITY in new_flags:
        slash_against = after.validators_against
    elif DisputeFlags.FOR_SUPERMAJORITY in pre_flags:
        slash_against = after.validators_against - before.validators_against
    slash_for: frozenset[int] = frozenset()
    if DisputeFlags.AGAINST_SUPERMAJORITY in new_flags:
        slash_for = after.validators_for
    elif DisputeFlags.AGAINST_SUPERMAJORITY in pre_flags:
        # late valid voters, and validators whose backing vote only now came to light
        slash_for = (after.validators_for - before.validators_for) | (after.backers - before.backers)
    participants = (after.validators_for | after.validators_against) - (
        before.validators_for | before.validators_against)
    return ImportSummary(after, new_flags, slash_for, slash_against, frozenset(participants))

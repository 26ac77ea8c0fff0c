"""Events a relay block emits: about candidates (`CandidateBacked`, `CandidateIncluded`,
`CandidateTimedOut`), about disputes (`DisputeInitiated`, `DisputeConcluded`, `Revert`) and the
offences that follow a concluded dispute (`Offence`), with polkadot-sdk's names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from proto.candidate import CandidateReceipt


class EventKind(Enum):
    BACKED = "CandidateBacked"
    INCLUDED = "CandidateIncluded"
    TIMED_OUT = "CandidateTimedOut"


@dataclass(frozen=True)
class CandidateEvent:
    kind: EventKind
    para_id: int
    candidate_hash: bytes
    receipt: CandidateReceipt
    head_data: bytes
    core: int
    group: int
    relay_parent_number: int
    backed_in_number: int

    def to_json(self) -> dict[str, object]:
        return {"type": self.kind.value, "para_id": self.para_id,
                "candidate_hash": "0x" + self.candidate_hash.hex(),
                "relay_parent_number": self.relay_parent_number, "core": self.core,
                "group": self.group, "backed_in": self.backed_in_number}


class DisputeEventKind(Enum):
    INITIATED = "DisputeInitiated"
    CONCLUDED = "DisputeConcluded"
    REVERT = "Revert"


class DisputeResult(StrEnum):
    VALID = "Valid"
    INVALID = "Invalid"


class DisputeLocation(StrEnum):
    """Whether the disputed candidate was included on this chain (polkadot's `DisputeLocation`)."""

    LOCAL = "Local"
    REMOTE = "Remote"


@dataclass(frozen=True)
class DisputeEvent:
    """`DisputeInitiated(candidate, location)`, `DisputeConcluded(candidate, result)` or
    `Revert(number)`: the block at `revert_number` and everything built on it are to go."""

    kind: DisputeEventKind
    session_index: int
    candidate_hash: bytes
    location: DisputeLocation | None = None
    result: DisputeResult | None = None
    revert_number: int | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"type": self.kind.value, "session_index": self.session_index,
                                  "candidate_hash": "0x" + self.candidate_hash.hex()}
        if self.location is not None:
            out["location"] = self.location.value
        if self.result is not None:
            out["result"] = self.result.value
        if self.revert_number is not None:
            out["revert_number"] = self.revert_number
        return out


class OffenceKind(StrEnum):
    """polkadot-sdk's `DisputeOffenceKind`: backing an invalid candidate is the major offence,
    approving one the medium, disputing a valid one the minor."""

    ForInvalidBacked = "ForInvalidBacked"
    ForInvalidApproved = "ForInvalidApproved"
    AgainstValid = "AgainstValid"


@dataclass(frozen=True)
class OffenceEvent:
    """An offence reported after a concluded dispute: the losers of one side, per kind. The time
    slot is the (session, candidate) pair, so each dispute reports each kind once."""

    kind: OffenceKind
    session_index: int
    candidate_hash: bytes
    offenders: tuple[int, ...]

    def describe(self) -> str:
        """One line for logs and `system event contains` checks; zombienet's 0004 test looks
        for the words "There is an offence reported"."""
        return (f"There is an offence reported: {self.kind} in session {self.session_index} "
                f"for candidate 0x{self.candidate_hash.hex()}, offenders "
                f"{', '.join(map(str, self.offenders))}")

    def to_json(self) -> dict[str, object]:
        return {"type": "Offence", "kind": self.kind.value, "session_index": self.session_index,
                "candidate_hash": "0x" + self.candidate_hash.hex(),
                "offenders": list(self.offenders), "description": self.describe()}


RelayEvent = CandidateEvent | DisputeEvent | OffenceEvent

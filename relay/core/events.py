"""Events a relay block emits about candidates (`CandidateBacked`, `CandidateIncluded`,
`CandidateTimedOut`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

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

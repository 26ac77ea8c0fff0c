"""The network vocabulary every service speaks, whatever network carries it: peer ids, gossip
topics and request kinds, the verdicts a gossip validator gives, the reputation changes a peer's
behaviour earns, and the errors a request can end in.

Pure data: the services (`relay/service`, `collator/service.py`) and the network implementations
under `node/net` both import it from here, so neither depends on the other for a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

PeerId = bytes
"""A node's identity: its Ed25519 public key bytes."""


class Kind:
    """Request kinds (ids on the request lane)."""

    BLOCKS = 1
    COLLATION = 2
    ATTESTED = 3
    POV = 4
    CHUNK = 5
    PARA_BLOCK = 6
    AVAILABLE_DATA = 7  # a candidate's whole `AvailableData`, from a backer (`recovery.py`)


class Topic:
    """Gossip topics."""

    BLOCK = 1
    BITFIELD = 2
    FINALITY = 3
    BACKED = 4
    STATEMENT = 5
    ASSIGNMENT = 6  # approval distribution: signed assignments (`AssignmentsMessage`)
    APPROVAL = 7  # approval distribution: approval votes (`ApprovalsMessage`)
    DISPUTE = 8  # UncheckedDisputeMessage: raising or joining a dispute


# -- reputation ---------------------------------------------------------------------------------

I32_MIN = -(2**31)
I32_MAX = 2**31 - 1


@dataclass(frozen=True)
class ReputationChange:
    value: int
    reason: str


# The magnitudes of polkadot's UnifiedReputationChange; a malicious report is fatal (i32::MIN).
COST_MINOR = ReputationChange(-100_000, "minor misbehaviour")
COST_MAJOR = ReputationChange(-300_000, "major misbehaviour")
COST_MINOR_REPEATED = ReputationChange(-200_000, "repeated minor misbehaviour")
COST_MAJOR_REPEATED = ReputationChange(-600_000, "repeated major misbehaviour")
MALICIOUS = ReputationChange(I32_MIN, "malicious")
COST_MALICIOUS = MALICIOUS
BENEFIT_MINOR_FIRST = ReputationChange(15_000, "first useful message (minor)")
BENEFIT_MINOR = ReputationChange(10_000, "useful message (minor)")
BENEFIT_MAJOR_FIRST = ReputationChange(300_000, "first useful message (major)")
BENEFIT_MAJOR = ReputationChange(200_000, "useful message (major)")

# Named costs used by the plumbing and by the protocols above it.
COST_INVALID_SIGNATURE = ReputationChange(I32_MIN, "invalid signature")
COST_UNEXPECTED_MESSAGE = ReputationChange(COST_MINOR.value, "unexpected message")
COST_MALFORMED_MESSAGE = ReputationChange(COST_MINOR.value, "malformed message")
COST_OVERSIZED_FRAME = ReputationChange(COST_MAJOR.value, "oversized frame")
COST_OVERSIZED_RESPONSE = ReputationChange(COST_MAJOR.value, "oversized response")
# A message that made a handler raise: a bug it found or one it aims at. Major, not malicious: an
# honest peer can trip one of our bugs, and the bug is ours to fix, not a reason to ban it at once.
COST_HANDLER_ERROR = ReputationChange(COST_MAJOR.value, "message made a handler fail")
# A frame over its lane's budget (node/net/lanes.py): dropped unread. Repeated minor: a burst costs
# little, a peer that keeps flooding (about 7,500 frames over its budget) is banned.
COST_FLOOD = ReputationChange(COST_MINOR_REPEATED.value, "frames over the lane's budget")


# -- gossip verdicts ----------------------------------------------------------------------------


class Action(Enum):
    ACCEPT = "accept"
    IGNORE = "ignore"
    REJECT = "reject"


@dataclass(frozen=True)
class Verdict:
    action: Action
    cost: ReputationChange | None = None


ACCEPT = Verdict(Action.ACCEPT)
IGNORE = Verdict(Action.IGNORE)


def reject(cost: ReputationChange) -> Verdict:
    return Verdict(Action.REJECT, cost)


# -- request errors -----------------------------------------------------------------------------


class RequestError(Exception):
    """A request that produced no usable response."""


class RequestTimeout(RequestError):
    pass


class RequestRefused(RequestError):
    pass


class NotConnected(RequestError):
    pass


def deliver_nothing(_source: PeerId | None, _data: bytes) -> None:
    """The delivery callback of a gossip topic whose validator already acted on the message."""

"""Approval checking on the wire: assignment certificates, signed assignments, approval votes.

Names follow polkadot-sdk's approval-voting: an `IndirectAssignmentCert` says which validator
claims to check a candidate of a relay block and why (`RelayVRFModulo { sample }`: a tranche-0
draw, `RelayVRFDelay { core_index }`: a delay tranche for that core); an
`IndirectSignedApprovalVote` says it re-executed the candidate and found it valid.

Signed payloads:
- assignments `"ASGN" ‖ enc([block_hash, validator, cert, candidate_index])`. Polkadot needs no
  signature here (the VRF proof authenticates the claim); this model's stand-in VRF can be
  recomputed by anyone (relay/core/approval/criteria.py), so the claim is signed to stop a peer from
  announcing another validator's assignment and turning it into a no-show.
- approvals `"APPR" ‖ enc([candidate_hash, session_index])`: like polkadot's `ApprovalVote`, the
  signature names the candidate and session, not the relay block, so the same vote counts as a
  valid vote in a dispute (proto/disputes.py, `APPROVAL_CHECKING`).
"""

from __future__ import annotations

from proto.codec import encode
from proto.keys import Keypair, verify
from proto.primitives import U32, Hash, Signature, Struct, ValidatorIndex

ASSIGNMENT_DOMAIN = b"ASGN"
APPROVAL_DOMAIN = b"APPR"


class RelayVRFModulo(Struct, frozen=True, tag=1):
    """Tranche 0: the `sample`-th modulo draw of the validator's relay VRF picked this core."""

    sample: U32


class RelayVRFDelay(Struct, frozen=True, tag=2):
    """A delay tranche drawn for one core from the validator's relay VRF."""

    core_index: U32


AssignmentCert = RelayVRFModulo | RelayVRFDelay


class IndirectAssignmentCert(Struct, frozen=True):
    block_hash: Hash
    validator: ValidatorIndex
    cert: AssignmentCert


class SignedAssignment(Struct, frozen=True):
    """A validator's claim to check the `candidate_index`-th candidate included in a block."""

    assignment: IndirectAssignmentCert
    candidate_index: U32
    signature: Signature

    @staticmethod
    def payload(assignment: IndirectAssignmentCert, candidate_index: int) -> bytes:
        return encode([assignment, candidate_index])

    @classmethod
    def sign(cls, key: Keypair, assignment: IndirectAssignmentCert,
             candidate_index: int) -> SignedAssignment:
        return cls(assignment, candidate_index,
                   key.sign(ASSIGNMENT_DOMAIN, cls.payload(assignment, candidate_index)))

    def check(self, public: bytes) -> bool:
        return verify(public, ASSIGNMENT_DOMAIN,
                      self.payload(self.assignment, self.candidate_index), self.signature)


def approval_vote_payload(candidate_hash: bytes, session_index: int) -> bytes:
    """What an approval signs (polkadot's `ApprovalVote(candidate_hash).signing_payload(session)`)."""
    return encode([candidate_hash, session_index])


class IndirectSignedApprovalVote(Struct, frozen=True):
    """A validator's approval of the `candidate_index`-th candidate included in `block_hash`."""

    block_hash: Hash
    candidate_index: U32
    validator: ValidatorIndex
    signature: Signature

    @classmethod
    def sign(cls, key: Keypair, block_hash: bytes, candidate_index: int, validator: int,
             candidate_hash: bytes, session_index: int) -> IndirectSignedApprovalVote:
        sig = key.sign(APPROVAL_DOMAIN, approval_vote_payload(candidate_hash, session_index))
        return cls(block_hash, candidate_index, validator, sig)

    def check(self, public: bytes, candidate_hash: bytes, session_index: int) -> bool:
        return verify(public, APPROVAL_DOMAIN, approval_vote_payload(candidate_hash, session_index),
                      self.signature)


"""What a backer checks before it signs a collation (polkadot's candidate-validation plus the
backing subsystem's own checks): the receipt commits to exactly this PoV and validation data, the
validation function re-executes it within the backing timeout, its outputs are the committed
ones, and the erasure root is the root of the chunks this PoV encodes to.

Everything is recomputed from the collator's bytes; nothing it claims is taken on trust.
"""

from __future__ import annotations

from enum import StrEnum

from collator.core.pvf import InvalidBlock, validate_candidate
from proto.availability import ErasureChunk, make_chunks
from proto.candidate import (
    AvailableData,
    CandidateReceipt,
    CommittedCandidateReceipt,
    PersistedValidationData,
    PoV,
)
from proto.hashing import blake2_256
from proto.shared_work import shared
from relay.core.errors import NamedError


class CollationInvalidKind(StrEnum):
    """The reference implementation's names for a `CollationInvalid`."""

    CommitmentsHashMismatch = "CommitmentsHashMismatch"
    ErasureRootMismatch = "ErasureRootMismatch"
    InvalidBlock = "InvalidBlock"
    ParaHeadHashMismatch = "ParaHeadHashMismatch"
    PersistedValidationDataMismatch = "PersistedValidationDataMismatch"
    PoVHashMismatch = "PoVHashMismatch"


class CollationInvalid(NamedError):
    """A collation no honest backer may sign; `kind` names the failed check."""


def validate_collation(
    receipt: CandidateReceipt,
    pov: PoV,
    pvd: PersistedValidationData,
    n_validators: int,
    timeout_ms: int,
) -> tuple[CommittedCandidateReceipt, list[ErasureChunk]]:
    """The committed receipt and every validator's erasure chunk, or `CollationInvalid`.

    Pure, so the simulated nodes of one process validate each collation once
    (`proto.shared_work`), keyed by the content hashes of everything it reads."""
    key = (receipt.hash(), pov.hash(), pvd.hash(), n_validators, timeout_ms)
    committed, chunks = shared("collation", key, lambda: _validate_collation(
        receipt, pov, pvd, n_validators, timeout_ms), large=True)
    return committed, list(chunks)


def _validate_collation(
    receipt: CandidateReceipt,
    pov: PoV,
    pvd: PersistedValidationData,
    n_validators: int,
    timeout_ms: int,
) -> tuple[CommittedCandidateReceipt, list[ErasureChunk]]:
    d = receipt.descriptor
    if d.persisted_validation_data_hash != pvd.hash():
        raise CollationInvalid(CollationInvalidKind.PersistedValidationDataMismatch)
    if d.pov_hash != pov.hash():
        raise CollationInvalid(CollationInvalidKind.PoVHashMismatch)
    try:
        commitments = validate_candidate(pvd, pov, timeout_ms)
    except InvalidBlock as exc:
        raise CollationInvalid(CollationInvalidKind.InvalidBlock, str(exc)) from None
    if commitments.hash() != receipt.commitments_hash:
        raise CollationInvalid(CollationInvalidKind.CommitmentsHashMismatch)
    if d.para_head != blake2_256(commitments.head_data):
        raise CollationInvalid(CollationInvalidKind.ParaHeadHashMismatch)
    root, chunks = make_chunks(AvailableData(pov, pvd), n_validators)
    if root != d.erasure_root:
        raise CollationInvalid(CollationInvalidKind.ErasureRootMismatch)
    return CommittedCandidateReceipt(d, commitments), chunks

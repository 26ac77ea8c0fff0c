"""Collation building (spec §5.1): fill a block from the pool up to the weight limit, execute it,
and wrap it as a candidate: PoV, PVD, commitments, erasure root and a v2 descriptor that commits to
a core and a session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from collator.core.consensus_hook import BlockInvalid
from collator.core.para_runtime import (
    Extrinsic,
    ParaBlock,
    ParaHeader,
    ValidationInherent,
    read_int,
    weight_of,
)
from collator.core.parachain_system import execute_block
from collator.core.storage_keys import WEIGHT_LIMIT_KEY
from collator.core.validation import VALIDATION_CODE_HASH, make_pov
from proto.availability import erasure_root
from proto.candidate import (
    AvailableData,
    CandidateCommitments,
    CandidateDescriptor,
    CommittedCandidateReceipt,
    PersistedValidationData,
    PoV,
    head_hash,
)
from proto.hashing import ZERO_HASH
from proto.relay_state import StateProof, state_root


@dataclass(frozen=True)
class RelayParentData:
    hash: bytes
    number: int
    storage_root: bytes
    proof: StateProof  # of `relay_view.relay_proof_keys(para_id)` at this block


@dataclass(frozen=True)
class Collation:
    receipt: CommittedCandidateReceipt
    pov: PoV
    pvd: PersistedValidationData
    block: ParaBlock
    entries: dict[bytes, bytes]
    weight: int

    @property
    def candidate_hash(self) -> bytes:
        return self.receipt.hash()


def select_transactions(entries: dict[bytes, bytes], pool: list[Extrinsic]) -> list[Extrinsic]:
    """The longest prefix of `pool` (in order) that fits the block weight limit."""
    limit = read_int(entries, WEIGHT_LIMIT_KEY, 0)
    out, weight = [], 0
    for x in pool:
        if weight + weight_of(x) > limit:
            break
        weight += weight_of(x)
        out.append(x)
    return out


def build_collation(
    parent_entries: dict[bytes, bytes],
    parent_header: ParaHeader,
    relay_parent: RelayParentData,
    pool: list[Extrinsic],
    core_index: int,
    core_selector: int | None,
    session_index: int,
    n_validators: int,
    max_pov_size: int,
) -> Collation:
    """Build and wrap a block; `BlockInvalid` if the runtime refuses it (segment full, velocity)."""
    pvd = PersistedValidationData(parent_header.head_data(), relay_parent.number,
                                  relay_parent.storage_root, max_pov_size)
    inherent = ValidationInherent(pvd, relay_parent.proof, [], [])
    txs = select_transactions(parent_entries, pool)
    selector = None if core_selector is None else core_selector % 256
    entries, out = execute_block(parent_entries, parent_header, inherent, txs, selector)
    block = ParaBlock(out.header, inherent, txs)
    pov = make_pov(parent_entries, block)
    if len(pov.block_data) > max_pov_size:
        raise BlockInvalid(f"PoV of {len(pov.block_data)} bytes exceeds {max_pov_size}")
    commitments = CandidateCommitments(out.upward_messages, out.horizontal_messages,
                                       out.new_validation_code, out.header.head_data(),
                                       out.processed_downward_messages, out.hrmp_watermark)
    descriptor = CandidateDescriptor(
        para_id=parent_header.para_id, relay_parent=relay_parent.hash, version=0,
        core_index=core_index, session_index=session_index,
        persisted_validation_data_hash=pvd.hash(), pov_hash=pov.hash(),
        erasure_root=erasure_root(AvailableData(pov, pvd), n_validators),
        para_head=head_hash(commitments.head_data), validation_code_hash=VALIDATION_CODE_HASH)
    return Collation(CommittedCandidateReceipt(descriptor, commitments), pov, pvd, block, entries,
                     out.weight)


def spent_collations(built: Mapping[bytes, Collation], min_relay_parent_number: int,
                     included_number: int | None, keep_at_most: int) -> list[bytes]:
    """The candidate hashes of `built` that no validator will fetch any more, so a collator can
    forget them:

    - a relay parent older than `min_relay_parent_number` (the allowed ancestry of the latest
      relay block): prospective parachains refuses such a candidate, and the collator protocol
      drops what it advertised there once the relay parent leaves its view;
    - a para block at or below the included head's number (`included_number`, None while the
      included block is unknown here): that block or a rival at its height is included, so the
      candidate cannot chain from the para's head again.

    Whatever the relay node reports, at most `keep_at_most` are kept (the oldest relay parents
    go first): a bound on memory, not a rule of the protocol."""
    spent = {h for h, c in built.items()
             if c.pvd.relay_parent_number < min_relay_parent_number
             or (included_number is not None and c.block.header.number <= included_number)}
    left = sorted((c.pvd.relay_parent_number, c.block.header.number, h)
                  for h, c in built.items() if h not in spent)
    return [*spent, *(h for _, _, h in left[:max(0, len(left) - keep_at_most)])]


def genesis_header(para_id: int, entries: dict[bytes, bytes]) -> ParaHeader:
    return ParaHeader(para_id, 0, ZERO_HASH, state_root(entries), ZERO_HASH, 0, 0)

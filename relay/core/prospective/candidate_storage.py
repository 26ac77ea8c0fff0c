"""Candidate storage for fragment chains (spec §3.4): entries indexed by hash, parent head and
output head, so chains can be followed head to head in both directions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum, StrEnum

from proto.candidate import (
    CandidateCommitments,
    CommittedCandidateReceipt,
    PersistedValidationData,
    head_hash,
)


class CandidateState(Enum):
    SECONDED = "Seconded"
    BACKED = "Backed"


class StorageErrorKind(StrEnum):
    """The reference implementation's names for a `StorageError`."""

    CandidateAlreadyKnown = "CandidateAlreadyKnown"
    PersistedValidationDataMismatch = "PersistedValidationDataMismatch"
    ZeroLengthCycle = "ZeroLengthCycle"


class StorageError(ValueError):
    def __init__(self, kind: StorageErrorKind) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class CandidateEntry:
    candidate_hash: bytes
    para_id: int
    parent_head_data_hash: bytes
    output_head_data_hash: bytes
    relay_parent: bytes
    commitments: CandidateCommitments
    persisted_validation_data: PersistedValidationData
    pov_hash: bytes
    validation_code_hash: bytes
    state: CandidateState

    @classmethod
    def new(
        cls,
        candidate_hash: bytes,
        receipt: CommittedCandidateReceipt,
        pvd: PersistedValidationData,
        state: CandidateState,
    ) -> CandidateEntry:
        d = receipt.descriptor
        if pvd.hash() != d.persisted_validation_data_hash:
            raise StorageError(StorageErrorKind.PersistedValidationDataMismatch)
        parent = head_hash(pvd.parent_head)
        output = head_hash(receipt.commitments.head_data)
        if parent == output:
            raise StorageError(StorageErrorKind.ZeroLengthCycle)
        return cls(candidate_hash, d.para_id, parent, output, d.relay_parent, receipt.commitments,
                   pvd, d.pov_hash, d.validation_code_hash, state)

    @property
    def is_backed(self) -> bool:
        return self.state is CandidateState.BACKED


class CandidateStorage:
    def __init__(self) -> None:
        self.by_candidate_hash: dict[bytes, CandidateEntry] = {}
        self.by_parent_head: dict[bytes, set[bytes]] = {}
        self.by_output_head: dict[bytes, set[bytes]] = {}

    def copy(self) -> CandidateStorage:
        out = CandidateStorage()
        out.by_candidate_hash = dict(self.by_candidate_hash)
        out.by_parent_head = {k: set(v) for k, v in self.by_parent_head.items()}
        out.by_output_head = {k: set(v) for k, v in self.by_output_head.items()}
        return out

    def add_candidate_entry(self, entry: CandidateEntry) -> None:
        if entry.candidate_hash in self.by_candidate_hash:
            raise StorageError(StorageErrorKind.CandidateAlreadyKnown)
        self.by_candidate_hash[entry.candidate_hash] = entry
        self.by_parent_head.setdefault(entry.parent_head_data_hash, set()).add(entry.candidate_hash)
        self.by_output_head.setdefault(entry.output_head_data_hash, set()).add(entry.candidate_hash)

    def add_pending_availability_candidate(
        self, candidate_hash: bytes, receipt: CommittedCandidateReceipt, pvd: PersistedValidationData
    ) -> None:
        self.add_candidate_entry(CandidateEntry.new(candidate_hash, receipt, pvd,
                                                    CandidateState.BACKED))

    def remove_candidate(self, candidate_hash: bytes) -> None:
        entry = self.by_candidate_hash.pop(candidate_hash, None)
        if entry is None:
            return
        for index, key in ((self.by_parent_head, entry.parent_head_data_hash),
                           (self.by_output_head, entry.output_head_data_hash)):
            hashes = index.get(key)
            if hashes is not None:
                hashes.discard(candidate_hash)
                if not hashes:
                    del index[key]

    def mark_backed(self, candidate_hash: bytes) -> None:
        entry = self.by_candidate_hash.get(candidate_hash)
        if entry is not None and not entry.is_backed:
            self.by_candidate_hash[candidate_hash] = replace(entry, state=CandidateState.BACKED)

    def contains(self, candidate_hash: bytes) -> bool:
        return candidate_hash in self.by_candidate_hash

    def get(self, candidate_hash: bytes) -> CandidateEntry | None:
        return self.by_candidate_hash.get(candidate_hash)

    def candidates(self) -> Iterator[CandidateEntry]:
        return iter(list(self.by_candidate_hash.values()))

    def __len__(self) -> int:
        return len(self.by_candidate_hash)

    def possible_backed_para_children(self, parent_head_hash: bytes) -> Iterator[CandidateEntry]:
        for h in sorted(self.by_parent_head.get(parent_head_hash, ())):
            entry = self.by_candidate_hash.get(h)
            if entry is not None and entry.is_backed:
                yield entry

    def head_data_by_hash(self, h: bytes) -> bytes | None:
        """Head data with hash `h`: looked up among outputs first, then among parents."""
        for c in sorted(self.by_output_head.get(h, ())):
            return self.by_candidate_hash[c].commitments.head_data
        for c in sorted(self.by_parent_head.get(h, ())):
            return self.by_candidate_hash[c].persisted_validation_data.parent_head
        return None

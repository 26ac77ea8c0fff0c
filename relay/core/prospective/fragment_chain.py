"""The fragment chain (spec §3.6): per relay parent and para, the best chain of backed candidates
that prospective parachains offers block authors, and the unconnected candidates that may join it.

Invariants: the best chain is every candidate pending availability (in order) followed by backed
candidates only, at most `max_depth + 1` long; among backed children of one parent a pending one
wins, otherwise the lower candidate hash (so every validator picks the same chain); forks and
cycles may sit among the unconnected candidates, never in the best chain.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from proto.candidate import CandidateCommitments, PersistedValidationData, head_hash
from relay.core.prospective.candidate_storage import (
    CandidateEntry,
    CandidateState,
    CandidateStorage,
    StorageError,
)
from relay.core.prospective.inclusion_emulator import (
    ConstraintModifications,
    Fragment,
    FragmentValidityError,
    ModificationError,
    RelayChainBlockInfo,
    apply_modifications,
    check_against_constraints,
)
from relay.core.prospective.scope import Scope


class ChainErrorKind(StrEnum):
    """The reference implementation's names for a `ChainError`."""

    CandidateAlreadyKnown = "CandidateAlreadyKnown"
    CheckAgainstConstraints = "CheckAgainstConstraints"
    ComputeConstraints = "ComputeConstraints"
    Cycle = "Cycle"
    ForkChoiceRule = "ForkChoiceRule"
    ForkWithCandidatePendingAvailability = "ForkWithCandidatePendingAvailability"
    IntroduceBackedCandidate = "IntroduceBackedCandidate"
    MultiplePaths = "MultiplePaths"
    PersistedValidationDataMismatch = "PersistedValidationDataMismatch"
    RelayParentMovedBackwards = "RelayParentMovedBackwards"
    RelayParentNotInScope = "RelayParentNotInScope"
    RelayParentPrecedesCandidatePendingAvailability = "RelayParentPrecedesCandidatePendingAvailability"
    ZeroLengthCycle = "ZeroLengthCycle"


class ChainError(ValueError):
    """Why a candidate cannot (yet) be part of this chain; `kind` is the reference's name."""

    def __init__(self, kind: ChainErrorKind, detail: Any = None) -> None:
        super().__init__(kind if detail is None else f"{kind}({detail})")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class HypotheticalCandidate:
    """A candidate known only by its advertisement (incomplete) or fully (complete)."""

    candidate_hash: bytes
    para_id: int
    relay_parent: bytes
    parent_head_data_hash: bytes
    output_head_data_hash: bytes | None = None
    commitments: CandidateCommitments | None = None
    persisted_validation_data: PersistedValidationData | None = None
    validation_code_hash: bytes | None = None

    @classmethod
    def of(cls, entry: CandidateEntry) -> HypotheticalCandidate:
        return cls(entry.candidate_hash, entry.para_id, entry.relay_parent,
                   entry.parent_head_data_hash, entry.output_head_data_hash, entry.commitments,
                   entry.persisted_validation_data, entry.validation_code_hash)


Candidate = CandidateEntry | HypotheticalCandidate


@dataclass(frozen=True)
class FragmentNode:
    fragment: Fragment
    candidate_hash: bytes
    cumulative_modifications: ConstraintModifications
    parent_head_data_hash: bytes
    output_head_data_hash: bytes
    entry: CandidateEntry

    @property
    def relay_parent(self) -> bytes:
        return self.fragment.relay_parent.hash


class BackedChain:
    def __init__(self) -> None:
        self.chain: list[FragmentNode] = []
        self.by_parent_head: dict[bytes, bytes] = {}
        self.by_output_head: dict[bytes, bytes] = {}
        self.candidates: set[bytes] = set()

    def push(self, node: FragmentNode) -> None:
        self.candidates.add(node.candidate_hash)
        self.by_parent_head[node.parent_head_data_hash] = node.candidate_hash
        self.by_output_head[node.output_head_data_hash] = node.candidate_hash
        self.chain.append(node)

    def clear(self) -> list[FragmentNode]:
        removed, self.chain = self.chain, []
        self.by_parent_head.clear()
        self.by_output_head.clear()
        self.candidates.clear()
        return removed

    def revert_to_parent_hash(self, parent_head_hash: bytes) -> list[FragmentNode]:
        """Drop every node after the one whose output is `parent_head_hash`."""
        for i, node in enumerate(self.chain):
            if node.output_head_data_hash == parent_head_hash:
                removed = self.chain[i + 1 :]
                self.chain = self.chain[: i + 1]
                for n in removed:
                    self.candidates.discard(n.candidate_hash)
                    self.by_parent_head.pop(n.parent_head_data_hash, None)
                    self.by_output_head.pop(n.output_head_data_hash, None)
                return removed
        return []

    def contains(self, candidate_hash: bytes) -> bool:
        return candidate_hash in self.candidates

    def copy(self) -> BackedChain:
        out = BackedChain()
        out.chain = list(self.chain)
        out.by_parent_head = dict(self.by_parent_head)
        out.by_output_head = dict(self.by_output_head)
        out.candidates = set(self.candidates)
        return out


def _backed_entry(node: FragmentNode) -> CandidateEntry:
    return replace(node.entry, state=CandidateState.BACKED)


class FragmentChain:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.best_chain = BackedChain()
        self.unconnected = CandidateStorage()

    @classmethod
    def init(cls, scope: Scope, candidates_pending_availability: CandidateStorage) -> FragmentChain:
        """A chain of just the pending candidates (they must chain from the included head)."""
        chain = cls(scope)
        chain._populate_chain(candidates_pending_availability.copy())
        return chain

    @classmethod
    def populate(cls, scope: Scope, storage: CandidateStorage) -> FragmentChain:
        """A chain for `scope` built from every candidate in `storage` that still fits."""
        chain = cls.init(scope, CandidateStorage())
        prev = cls(scope)
        prev.unconnected = storage.copy()
        chain.populate_from_previous(prev)
        return chain

    def copy(self) -> FragmentChain:
        """A chain that changes independently of this one (nodes and entries are immutable)."""
        out = FragmentChain(self.scope)
        out.best_chain = self.best_chain.copy()
        out.unconnected = self.unconnected.copy()
        return out

    # -- queries ------------------------------------------------------------------------------

    def best_chain_len(self) -> int:
        return len(self.best_chain.chain)

    def best_chain_vec(self) -> list[bytes]:
        return [n.candidate_hash for n in self.best_chain.chain]

    def unconnected_len(self) -> int:
        return len(self.unconnected)

    def contains_unconnected_candidate(self, h: bytes) -> bool:
        return self.unconnected.contains(h)

    def is_candidate_backed(self, h: bytes) -> bool:
        entry = self.unconnected.get(h)
        return self.best_chain.contains(h) or (entry is not None and entry.is_backed)

    def candidate_entry(self, h: bytes) -> CandidateEntry | None:
        for node in self.best_chain.chain:
            if node.candidate_hash == h:
                return node.entry
        return self.unconnected.get(h)

    def get_head_data_by_hash(self, h: bytes) -> bytes | None:
        required = self.scope.base_constraints.required_parent
        if head_hash(required) == h:
            return required
        for node in self.best_chain.chain:
            if node.output_head_data_hash == h:
                return node.entry.commitments.head_data
            if node.parent_head_data_hash == h:
                return node.entry.persisted_validation_data.parent_head
        return self.unconnected.head_data_by_hash(h)

    def find_backable_chain(self, ancestors: Iterable[bytes], count: int) -> list[tuple[bytes, bytes]]:
        """Up to `count` (candidate hash, relay parent) after the prefix found in `ancestors`,
        stopping at any candidate pending availability."""
        if count == 0:
            return []
        base = self._find_ancestor_path(set(ancestors))
        out = []
        for node in self.best_chain.chain[base : base + count]:
            if self.scope.get_pending_availability(node.candidate_hash) is not None:
                break
            out.append((node.candidate_hash, node.relay_parent))
        return out

    def _find_ancestor_path(self, ancestors: set[bytes]) -> int:
        for i, node in enumerate(self.best_chain.chain):
            if node.candidate_hash not in ancestors:
                return i
            ancestors.discard(node.candidate_hash)
        return len(self.best_chain.chain)

    # -- admission ----------------------------------------------------------------------------

    def can_add_candidate_as_potential(self, c: Candidate) -> None:
        if self.best_chain.contains(c.candidate_hash) or self.unconnected.contains(c.candidate_hash):
            raise ChainError(ChainErrorKind.CandidateAlreadyKnown)
        self.check_potential(c)

    def try_adding_seconded_candidate(self, entry: CandidateEntry) -> None:
        if entry.is_backed:
            raise ChainError(ChainErrorKind.IntroduceBackedCandidate)
        self.can_add_candidate_as_potential(entry)
        try:
            self.unconnected.add_candidate_entry(entry)
        except StorageError as exc:
            raise ChainError(ChainErrorKind(exc.kind)) from None

    def candidate_backed(self, candidate_hash: bytes) -> None:
        """Mark a candidate backed; if it connects, rebuild the best chain from it (re-org)."""
        if self.best_chain.contains(candidate_hash):
            return
        entry = self.unconnected.get(candidate_hash)
        if entry is None:
            return
        self.unconnected.mark_backed(candidate_hash)
        parent = entry.parent_head_data_hash
        if not self._revert_to(parent):
            return
        storage, self.unconnected = self.unconnected, CandidateStorage()
        self._populate_chain(storage)
        self._trim_uneligible_forks(storage, parent)
        self._populate_unconnected_potential_candidates(storage)

    def populate_from_previous(self, prev: FragmentChain) -> None:
        """Carry candidates over from the chain of the previous leaf (§3.6 `advance_scope`)."""
        storage = prev.unconnected.copy()
        for node in prev.best_chain.chain:
            # Skip what was pending before (included now, or re-added from the chain state) and
            # what this chain already holds: a candidate backed under the previous leaf may be
            # pending availability under this one. Left in storage, it would be trimmed as a fork
            # of itself and take its unconnected descendants with it.
            if self.best_chain.contains(node.candidate_hash):
                continue
            if prev.scope.get_pending_availability(node.candidate_hash) is None:
                with contextlib.suppress(StorageError):
                    storage.add_candidate_entry(_backed_entry(node))
        if not len(storage):
            return  # nothing to carry over (most validators hold no candidate of most paras)
        self._populate_chain(storage)
        self._trim_uneligible_forks(storage, None)
        self._populate_unconnected_potential_candidates(storage)

    # -- the rules ----------------------------------------------------------------------------

    def check_potential(self, c: Candidate) -> None:
        """Whether `c` could ever be part of this chain (§3.6, checks in order)."""
        if c.output_head_data_hash is not None and c.output_head_data_hash == c.parent_head_data_hash:
            raise ChainError(ChainErrorKind.ZeroLengthCycle)
        rp = self.scope.ancestor(c.relay_parent)
        if rp is None:
            raise ChainError(ChainErrorKind.RelayParentNotInScope,
                             (c.relay_parent, self.scope.earliest_relay_parent().hash))
        earliest_pending = self._earliest_relay_parent_pending_availability()
        if rp.number < earliest_pending.number:
            raise ChainError(ChainErrorKind.RelayParentPrecedesCandidatePendingAvailability,
                             (rp.hash, earliest_pending.hash))
        other = self.best_chain.by_parent_head.get(c.parent_head_data_hash)
        if other is not None:
            if self.scope.get_pending_availability(other) is not None:
                raise ChainError(ChainErrorKind.ForkWithCandidatePendingAvailability, other)
            if other < c.candidate_hash:
                raise ChainError(ChainErrorKind.ForkChoiceRule, other)
        parent_hash = self.best_chain.by_output_head.get(c.parent_head_data_hash)
        min_rp_of_parent: int | None = None
        if parent_hash is not None:
            parent = next(n for n in self.best_chain.chain if n.candidate_hash == parent_hash)
            try:
                constraints = apply_modifications(self.scope.base_constraints,
                                                  parent.cumulative_modifications)
            except ModificationError as exc:
                raise ChainError(ChainErrorKind.ComputeConstraints, exc) from None
            parent_rp = self.scope.ancestor(parent.relay_parent)
            min_rp_of_parent = parent_rp.number if parent_rp is not None else None
        elif self._required_parent_hash() == c.parent_head_data_hash:
            constraints = self.scope.base_constraints
        else:
            return  # unknown parent: nothing more can be checked yet
        if c.output_head_data_hash is not None:
            self._check_cycles_or_invalid_tree(c.output_head_data_hash)
        if (c.commitments is not None and c.persisted_validation_data is not None
                and c.validation_code_hash is not None):
            try:
                check_against_constraints(rp, constraints, c.commitments, c.validation_code_hash,
                                          c.persisted_validation_data)
            except FragmentValidityError as exc:
                raise ChainError(ChainErrorKind.CheckAgainstConstraints, exc) from None
        if rp.number < constraints.min_relay_parent_number:
            raise ChainError(ChainErrorKind.RelayParentMovedBackwards)
        if min_rp_of_parent is not None and rp.number < min_rp_of_parent:
            raise ChainError(ChainErrorKind.RelayParentMovedBackwards)

    def _required_parent_hash(self) -> bytes:
        return head_hash(self.scope.base_constraints.required_parent)

    def _check_cycles_or_invalid_tree(self, output_head_hash: bytes) -> None:
        if output_head_hash in self.best_chain.by_parent_head:
            raise ChainError(ChainErrorKind.Cycle)
        if output_head_hash in self.best_chain.by_output_head:
            raise ChainError(ChainErrorKind.MultiplePaths)

    def _earliest_relay_parent_pending_availability(self) -> RelayChainBlockInfo:
        for node in reversed(self.best_chain.chain):
            p = self.scope.get_pending_availability(node.candidate_hash)
            if p is not None:
                return p.relay_parent
        return self.scope.earliest_relay_parent()

    def _earliest_relay_parent(self) -> RelayChainBlockInfo | None:
        if not self.best_chain.chain:
            return self.scope.earliest_relay_parent()
        last = self.best_chain.chain[-1]
        rp = self.scope.ancestor(last.relay_parent)
        if rp is not None:
            return rp
        p = self.scope.get_pending_availability(last.candidate_hash)
        return p.relay_parent if p is not None else None

    def _revert_to(self, parent_head_hash: bytes) -> bool:
        removed: list[FragmentNode] | None = None
        if self._required_parent_hash() == parent_head_hash:
            removed = self.best_chain.clear()
        elif parent_head_hash in self.best_chain.by_output_head:
            removed = self.best_chain.revert_to_parent_hash(parent_head_hash)
        if removed is None:
            return False
        for node in removed:
            with contextlib.suppress(StorageError):
                self.unconnected.add_candidate_entry(_backed_entry(node))
        return True

    def _populate_chain(self, storage: CandidateStorage) -> None:
        """Greedily extend the best chain from `storage` (removing what it takes)."""
        mods = (self.best_chain.chain[-1].cumulative_modifications if self.best_chain.chain
                else ConstraintModifications.identity())
        earliest_rp = self._earliest_relay_parent()
        if earliest_rp is None:
            return
        while len(self.best_chain.chain) <= self.scope.max_depth:
            try:
                child_constraints = apply_modifications(self.scope.base_constraints, mods)
            except ModificationError:
                break
            options: list[tuple[Fragment, CandidateEntry]] = []
            for c in storage.possible_backed_para_children(head_hash(child_constraints.required_parent)):
                pending = self.scope.get_pending_availability(c.candidate_hash)
                rp = pending.relay_parent if pending is not None else self.scope.ancestor(c.relay_parent)
                if rp is None:
                    continue
                try:
                    self._check_cycles_or_invalid_tree(c.output_head_data_hash)
                except ChainError:
                    continue
                min_rp = (pending.relay_parent.number if pending is not None and not self.best_chain.chain
                          else earliest_rp.number)
                if rp.number < min_rp or self.best_chain.contains(c.candidate_hash):
                    continue
                constraints = child_constraints
                if pending is not None:
                    constraints = replace(constraints, min_relay_parent_number=pending.relay_parent.number)
                try:
                    fragment = Fragment.new(rp, constraints, c.commitments,
                                            c.persisted_validation_data, c.validation_code_hash)
                except FragmentValidityError:
                    continue
                options.append((fragment, c))
            if not options:
                break
            pending_options = [o for o in options
                               if self.scope.get_pending_availability(o[1].candidate_hash) is not None]
            fragment, best = (pending_options or sorted(options, key=lambda o: o[1].candidate_hash))[0]
            storage.remove_candidate(best.candidate_hash)
            mods = mods.stack(fragment.modifications)
            earliest_rp = fragment.relay_parent
            self.best_chain.push(FragmentNode(fragment, best.candidate_hash, mods,
                                              best.parent_head_data_hash, best.output_head_data_hash,
                                              best))

    def _trim_uneligible_forks(self, storage: CandidateStorage, start: bytes | None) -> None:
        """Drop stored candidates whose ancestry lost its potential (breadth-first from the
        chain's parents, or from `start`)."""
        if start is not None:
            queue = deque([(start, True)])
        elif not self.best_chain.chain:
            queue = deque([(self._required_parent_hash(), True)])
        else:
            queue = deque((n.parent_head_data_hash, True) for n in self.best_chain.chain)
        visited: set[bytes] = set()
        while queue:
            parent, has_potential = queue.popleft()
            visited.add(parent)
            to_remove = []
            for child_hash in sorted(storage.by_parent_head.get(parent, ())):
                child = storage.get(child_hash)
                if child is None or child.output_head_data_hash in visited:
                    continue
                keep = has_potential
                if keep:
                    try:
                        self.check_potential(child)
                    except ChainError:
                        keep = False
                if keep:
                    queue.append((child.output_head_data_hash, True))
                else:
                    to_remove.append(child_hash)
                    queue.append((child.output_head_data_hash, False))
            for h in to_remove:
                storage.remove_candidate(h)

    def _populate_unconnected_potential_candidates(self, storage: CandidateStorage) -> None:
        for entry in storage.candidates():
            if self.scope.get_pending_availability(entry.candidate_hash) is not None:
                continue
            try:
                self.can_add_candidate_as_potential(entry)
                self.unconnected.add_candidate_entry(entry)
            except (ChainError, StorageError):
                pass

    def all_candidates(self) -> Iterable[CandidateEntry]:
        yield from (n.entry for n in self.best_chain.chain)
        yield from self.unconnected.candidates()

    def __repr__(self) -> str:
        return (f"FragmentChain(best={[h.hex()[:8] for h in self.best_chain_vec()]}, "
                f"unconnected={len(self.unconnected)})")


# `CandidateState` is re-exported for callers that build entries.
__all__ = ["CandidateState", "ChainError", "FragmentChain", "HypotheticalCandidate"]

"""The prospective-parachains subsystem (spec §3.7–§3.8): one fragment chain per (active leaf,
para), rebuilt on every new leaf from the previous leaf's chain, and the queries backing and the
block author use. Relay-chain data comes through the `RelayChainInfo` protocol, so the subsystem
is pure and any relay-chain store can drive it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from proto.candidate import CommittedCandidateReceipt, PersistedValidationData, head_hash
from proto.shared_work import shared
from relay.core.constraints import BackingState
from relay.core.prospective.candidate_storage import (
    CandidateEntry,
    CandidateState,
    CandidateStorage,
    StorageError,
)
from relay.core.prospective.fragment_chain import (
    ChainError,
    ChainErrorKind,
    FragmentChain,
    HypotheticalCandidate,
)
from relay.core.prospective.inclusion_emulator import RelayChainBlockInfo
from relay.core.prospective.scope import PendingAvailability, Scope, UnexpectedAncestor


@dataclass(frozen=True)
class RelayBlockHeaderInfo:
    hash: bytes
    number: int
    parent_hash: bytes
    storage_root: bytes

    def info(self) -> RelayChainBlockInfo:
        return RelayChainBlockInfo(self.hash, self.number, self.storage_root)


class RelayChainInfo(Protocol):
    def block_info(self, block_hash: bytes) -> RelayBlockHeaderInfo | None: ...
    def backing_state(self, at: bytes, para_id: int) -> BackingState | None: ...
    def claim_queue_paras(self, at: bytes) -> set[int]: ...
    def async_backing_params(self, at: bytes) -> tuple[int, int]: ...
    def session_index_for_child(self, at: bytes) -> int: ...


@dataclass
class LeafView:
    info: RelayBlockHeaderInfo
    chains: dict[int, FragmentChain]
    allowed: dict[int, set[bytes]]  # para → relay parents allowed under this leaf


class ProspectiveParachains:
    def __init__(self) -> None:
        self.leaves: dict[bytes, LeafView] = {}  # active leaves
        # Deactivated leaves still within some active leaf's allowed relay parents: new leaves
        # inherit their candidates, and seconded/backed notifications keep them current.
        self.retained: dict[bytes, LeafView] = {}

    # -- leaves ---------------------------------------------------------------------------------

    def activate_leaf(self, leaf_hash: bytes, relay: RelayChainInfo) -> None:
        leaf = relay.block_info(leaf_hash)
        if leaf is None or leaf_hash in self.leaves:
            return
        depth, ancestry_len = relay.async_backing_params(leaf_hash)
        session = relay.session_index_for_child(leaf_hash)
        ancestors: list[RelayBlockHeaderInfo] = []
        cursor = leaf
        while len(ancestors) < ancestry_len and cursor.number > 0:
            parent = relay.block_info(cursor.parent_hash)
            if parent is None or relay.session_index_for_child(parent.hash) != session:
                break
            ancestors.append(parent)
            cursor = parent
        prev = self.leaves.get(leaf.parent_hash) or self.retained.get(leaf.parent_hash)
        view = LeafView(leaf, {}, {})
        ancestry = tuple(a.hash for a in ancestors)
        for para in sorted(relay.claim_queue_paras(leaf_hash)):
            # The chain of the candidates pending availability is the same on every node that
            # has this leaf: the simulated nodes build it once (`proto.shared_work`), keyed by
            # the leaf's hash, which commits to its state and so to the para's backing state,
            # the async backing parameters and the ancestors' headers (named in the key too, as
            # this node found them). Each node takes its own copy to grow.
            initial = shared("pending_chain", (leaf_hash, para, depth, ancestry),
                             partial(self._pending_chain, relay, leaf, para, depth, ancestors))
            if initial is None:
                continue
            chain = initial.copy()
            if prev is not None and para in prev.chains:
                chain.populate_from_previous(prev.chains[para])
            view.chains[para] = chain
            view.allowed[para] = {leaf_hash} | {a.hash for a in chain.scope.ancestors.values()}
        self.leaves[leaf_hash] = view
        self.retained.pop(leaf_hash, None)
        self._prune_retained()

    @classmethod
    def _pending_chain(cls, relay: RelayChainInfo, leaf: RelayBlockHeaderInfo, para: int,
                       depth: int, ancestors: list[RelayBlockHeaderInfo]) -> FragmentChain | None:
        """The para's chain under `leaf` with only its candidates pending availability; None
        if the para has no backing state there or its ancestry does not fit."""
        bs = relay.backing_state(leaf.hash, para)
        if bs is None:
            return None
        pending_storage = CandidateStorage()
        pending: list[PendingAvailability] = []
        parent_head = bs.constraints.required_parent
        for p in bs.pending_availability:
            rp = cls._relay_parent_info(relay, p.descriptor.relay_parent)
            if rp is None:
                break
            pvd = PersistedValidationData(parent_head, rp.number, rp.storage_root, p.max_pov_size)
            receipt = CommittedCandidateReceipt(p.descriptor, p.commitments)
            try:
                pending_storage.add_pending_availability_candidate(p.candidate_hash, receipt, pvd)
            except StorageError:
                break
            pending.append(PendingAvailability(p.candidate_hash, rp))
            parent_head = p.commitments.head_data
        try:
            scope = Scope.with_ancestors(leaf.info(), bs.constraints, pending, depth,
                                         [a.info() for a in ancestors])
        except UnexpectedAncestor:
            return None
        return FragmentChain.init(scope, pending_storage)

    @staticmethod
    def _relay_parent_info(relay: RelayChainInfo, h: bytes) -> RelayChainBlockInfo | None:
        b = relay.block_info(h)
        return b.info() if b is not None else None

    def deactivate_leaf(self, leaf_hash: bytes) -> None:
        view = self.leaves.pop(leaf_hash, None)
        if view is not None:
            self.retained[leaf_hash] = view
        self._prune_retained()

    def update_leaves(self, activated: list[bytes], deactivated: list[bytes],
                      relay: RelayChainInfo) -> None:
        """One `ActiveLeavesUpdate`: new leaves first, so they inherit from the leaves they
        replace, then the deactivations."""
        for h in activated:
            self.activate_leaf(h, relay)
        for h in deactivated:
            self.deactivate_leaf(h)

    def _prune_retained(self) -> None:
        """Keep a deactivated leaf's chains only while an active leaf can still use it as a
        relay parent."""
        reachable: set[bytes] = set()
        for view in self.leaves.values():
            for allowed in view.allowed.values():
                reachable |= allowed
        self.retained = {h: v for h, v in self.retained.items() if h in reachable}

    def _all_views(self) -> list[LeafView]:
        return [*self.leaves.values(), *self.retained.values()]

    def active_leaves(self) -> list[bytes]:
        return list(self.leaves)

    # -- implicit view ------------------------------------------------------------------------

    def allowed_relay_parents(self, para_id: int) -> set[bytes]:
        out: set[bytes] = set()
        for view in self.leaves.values():
            out |= view.allowed.get(para_id, set())
        return out

    def relay_parents_in_scope(self) -> set[bytes]:
        """Every relay parent some active leaf allows for some para, and the leaves themselves:
        what backing keeps state for."""
        out = set(self.leaves)
        for view in self.leaves.values():
            for allowed in view.allowed.values():
                out |= allowed
        return out

    def is_relay_parent_allowed(self, para_id: int, relay_parent: bytes) -> bool:
        return relay_parent in self.allowed_relay_parents(para_id)

    # -- candidates ---------------------------------------------------------------------------

    def introduce_seconded_candidate(
        self, para_id: int, receipt: CommittedCandidateReceipt, pvd: PersistedValidationData
    ) -> bool:
        try:
            entry = CandidateEntry.new(receipt.hash(), receipt, pvd, CandidateState.SECONDED)
        except StorageError:
            return False
        added = False
        for view in self._all_views():
            chain = view.chains.get(para_id)
            if chain is None:
                continue
            try:
                chain.try_adding_seconded_candidate(entry)
                added = True
            except ChainError as exc:
                if exc.kind == ChainErrorKind.CandidateAlreadyKnown:
                    added = True
        return added

    def candidate_backed(self, para_id: int, candidate_hash: bytes) -> None:
        for view in self._all_views():
            chain = view.chains.get(para_id)
            if chain is not None:
                chain.candidate_backed(candidate_hash)

    def get_backable_candidates(
        self, leaf: bytes, para_id: int, count: int, ancestors: Iterable[bytes]
    ) -> list[tuple[bytes, bytes]]:
        view = self.leaves.get(leaf)
        chain = view.chains.get(para_id) if view else None
        return chain.find_backable_chain(ancestors, count) if chain else []

    def get_hypothetical_membership(
        self, candidate: HypotheticalCandidate, leaf: bytes | None = None
    ) -> list[bytes]:
        """Active leaves under which the candidate could be (or already is) in the chain."""
        out = []
        for h, view in self.leaves.items():
            if leaf is not None and h != leaf:
                continue
            chain = view.chains.get(candidate.para_id)
            if chain is None:
                continue
            try:
                chain.can_add_candidate_as_potential(candidate)
            except ChainError as exc:
                if exc.kind != ChainErrorKind.CandidateAlreadyKnown:
                    continue
            out.append(h)
        return out

    def get_minimum_relay_parents(self, leaf: bytes) -> list[tuple[int, int]]:
        view = self.leaves.get(leaf)
        if view is None:
            return []
        return [(p, c.scope.earliest_relay_parent().number) for p, c in sorted(view.chains.items())]

    def get_prospective_validation_data(
        self, para_id: int, candidate_relay_parent: bytes, parent_head_hash: bytes,
        parent_head_data: bytes | None = None,
    ) -> PersistedValidationData | None:
        head = parent_head_data
        if head is not None and head_hash(head) != parent_head_hash:
            return None
        for view in self.leaves.values():
            chain = view.chains.get(para_id)
            if chain is None:
                continue
            rp = chain.scope.ancestor(candidate_relay_parent)
            if rp is None:
                continue
            if head is None:
                head = chain.get_head_data_by_hash(parent_head_hash)
            if head is None:
                continue
            return PersistedValidationData(head, rp.number, rp.storage_root,
                                           chain.scope.base_constraints.max_pov_size)
        return None

    def candidate_entry(self, para_id: int, candidate_hash: bytes) -> CandidateEntry | None:
        for view in self.leaves.values():
            chain = view.chains.get(para_id)
            e = chain.candidate_entry(candidate_hash) if chain else None
            if e is not None:
                return e
        return None

    def candidate_counts(self) -> dict[str, int]:
        """For the `prospective_parachains_candidate_count{type}` metric."""
        backed = sum(c.best_chain_len() for v in self.leaves.values() for c in v.chains.values())
        unconnected = sum(c.unconnected_len() for v in self.leaves.values() for c in v.chains.values())
        return {"best_chain": backed, "unconnected": unconnected}

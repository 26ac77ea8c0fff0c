"""The scope of a fragment chain (spec §3.5): the leaf, the ancestors that may serve as relay
parents, the candidates pending availability and the base constraints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from relay.core.constraints import Constraints
from relay.core.prospective.inclusion_emulator import RelayChainBlockInfo


class UnexpectedAncestor(ValueError):
    def __init__(self, number: int, prev: int) -> None:
        super().__init__(f"UnexpectedAncestor(number={number}, prev={prev})")
        self.number = number
        self.prev = prev


@dataclass(frozen=True)
class PendingAvailability:
    candidate_hash: bytes
    relay_parent: RelayChainBlockInfo


@dataclass(frozen=True)
class Scope:
    relay_parent: RelayChainBlockInfo
    ancestors: dict[int, RelayChainBlockInfo] = field(hash=False)  # by number
    ancestors_by_hash: dict[bytes, RelayChainBlockInfo] = field(hash=False)
    pending_availability: tuple[PendingAvailability, ...]
    base_constraints: Constraints
    max_depth: int

    @classmethod
    def with_ancestors(
        cls,
        relay_parent: RelayChainBlockInfo,
        base_constraints: Constraints,
        pending_availability: Sequence[PendingAvailability],
        max_depth: int,
        ancestors: Sequence[RelayChainBlockInfo],
    ) -> Scope:
        """`ancestors` newest first, numbers decreasing by one from the leaf's parent; those
        older than the constraints' minimum relay parent are ignored."""
        by_number: dict[int, RelayChainBlockInfo] = {}
        by_hash: dict[bytes, RelayChainBlockInfo] = {}
        prev = relay_parent.number
        for ancestor in ancestors:
            if prev == 0 or ancestor.number != prev - 1:
                raise UnexpectedAncestor(ancestor.number, prev)
            if prev == base_constraints.min_relay_parent_number:
                break
            prev = ancestor.number
            by_number[ancestor.number] = ancestor
            by_hash[ancestor.hash] = ancestor
        return cls(relay_parent, by_number, by_hash, tuple(pending_availability),
                   base_constraints, max_depth)

    def earliest_relay_parent(self) -> RelayChainBlockInfo:
        return self.ancestors[min(self.ancestors)] if self.ancestors else self.relay_parent

    def ancestor(self, h: bytes) -> RelayChainBlockInfo | None:
        if h == self.relay_parent.hash:
            return self.relay_parent
        return self.ancestors_by_hash.get(h)

    def get_pending_availability(self, candidate_hash: bytes) -> PendingAvailability | None:
        for p in self.pending_availability:
            if p.candidate_hash == candidate_hash:
                return p
        return None

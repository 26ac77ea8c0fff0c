"""Consensus hooks (cumulus `aura-ext`, spec §4.4): how many blocks a parachain may author per
relay slot (velocity) and how many may wait unincluded (capacity).

`FixedVelocityConsensusHook(V, C)`: V' = max(V, 1); V'+1 blocks per relay slot are tolerated (the
extra one lets the segment fill after a missed slot); capacity max(C, 1). Sync backing is V = C = 1
with the parent required to be included: the same hook, other numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collator.core.unincluded_segment import Ancestor, size_after_included


class BlockInvalid(ValueError):
    """The block breaks a runtime rule; the reference panics, which makes the block invalid."""


@dataclass(frozen=True)
class RelaySlotInfo:
    relay_slot: int
    authored: int


@dataclass(frozen=True)
class FixedVelocityConsensusHook:
    velocity: int
    capacity: int
    relay_slot_ms: int

    @property
    def effective_velocity(self) -> int:
        return max(self.velocity, 1)

    @property
    def effective_capacity(self) -> int:
        return max(self.capacity, 1)

    def on_state_proof(
        self,
        relay_slot: int,
        para_slot: int,
        para_slot_ms: int,
        slot_info: RelaySlotInfo | None,
    ) -> tuple[int, RelaySlotInfo]:
        """(unincluded capacity, new slot info) for a block in `relay_slot`; `BlockInvalid` if
        the relay slot went backwards, the velocity limit is reached, or the para slot is ahead
        of the relay slot."""
        authored = 0
        if slot_info is not None:
            if relay_slot < slot_info.relay_slot:
                raise BlockInvalid("Slot moved backwards")
            if relay_slot == slot_info.relay_slot:
                authored = slot_info.authored
        if authored > self.effective_velocity:
            raise BlockInvalid("authored blocks limit is reached for the slot")
        derived = relay_slot * self.relay_slot_ms // para_slot_ms
        if para_slot > derived:
            raise BlockInvalid(
                f"Parachain slot is too far in the future: parachain_slot={para_slot}, "
                f"derived_from_relay_slot={derived}"
            )
        return self.effective_capacity, RelaySlotInfo(relay_slot, authored + 1)

    def can_build_upon(
        self,
        included_hash: bytes,
        new_relay_slot: int,
        slot_info: RelaySlotInfo | None,
        segment: Sequence[Ancestor],
    ) -> bool:
        """The runtime API collators ask before authoring (`AuraUnincludedSegmentApi`)."""
        if slot_info is None:
            return True
        if size_after_included(included_hash, segment) >= self.effective_capacity:
            return False
        if slot_info.relay_slot == new_relay_slot:
            return slot_info.authored < self.effective_velocity + 1
        return slot_info.relay_slot < new_relay_slot


@dataclass(frozen=True)
class ExpectParentIncluded:
    """Capacity 1 and the parent must already be included (sync-compatible)."""

    capacity: int = 1
    requires_parent_included: bool = True

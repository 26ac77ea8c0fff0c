"""Allowed relay parents (the `shared` pallet, spec §2.2): the recent relay blocks a candidate may
use as its relay parent, each with its state root and claim-queue snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AllowedRelayParent:
    hash: bytes
    state_root: bytes
    claim_queue: dict[int, tuple[int, ...]] = field(hash=False)  # core → paras, at that block


@dataclass(frozen=True)
class RelayParentInfo:
    state_root: bytes
    number: int
    claim_queue: dict[int, tuple[int, ...]] = field(hash=False)


@dataclass
class AllowedRelayParentsTracker:
    buffer: list[AllowedRelayParent] = field(default_factory=list)  # oldest first
    latest_number: int = 0

    def copy(self) -> AllowedRelayParentsTracker:
        return AllowedRelayParentsTracker(list(self.buffer), self.latest_number)

    def update(
        self,
        parent_hash: bytes,
        parent_state_root: bytes,
        claim_queue: dict[int, tuple[int, ...]],
        parent_number: int,
        max_ancestry_len: int,
    ) -> None:
        """Push the parent of the block being built; keep `max_ancestry_len + 1` entries (the
        parent itself is always allowed)."""
        self.buffer.append(AllowedRelayParent(parent_hash, parent_state_root, dict(claim_queue)))
        del self.buffer[: max(0, len(self.buffer) - (max_ancestry_len + 1))]
        self.latest_number = parent_number

    def acquire_info(self, relay_parent: bytes, prev_number: int | None = None) -> RelayParentInfo | None:
        for pos, entry in enumerate(self.buffer):
            if entry.hash == relay_parent:
                number = self.latest_number - (len(self.buffer) - 1 - pos)
                if prev_number is not None and prev_number > number:
                    return None  # the relay parent would go backwards
                return RelayParentInfo(entry.state_root, number, entry.claim_queue)
        return None

    def hypothetical_earliest_block_number(self, now: int, max_ancestry_len: int) -> int:
        return now - min(max_ancestry_len, len(self.buffer))

    def clear(self) -> None:
        self.buffer.clear()

"""The unincluded segment as the runtime keeps it from block to block (spec §4.3): the ancestors
(oldest first) and their aggregate, with the three steps every block takes on them.

1. `note_parent_head` (on_initialize): the newest ancestor learns its own head hash, which is only
   known once the next block starts.
2. `prune_included` (set_validation_data): drop every ancestor up to the included one, read from
   the relay state proof, and check the block fits (`check_capacity`).
3. `append` (on_finalize): add this block's usage to the tracker against the relay limits.

Each step returns a new value; a refused step raises and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collator.core.consensus_hook import BlockInvalid
from collator.core.unincluded_segment import (
    Ancestor,
    BandwidthUpdateError,
    HrmpWatermarkUpdate,
    OutboundBandwidthLimits,
    SegmentTracker,
)

NO_SPACE = "no space left for the block in the unincluded segment"


@dataclass(frozen=True)
class UnincludedSegment:
    ancestors: tuple[Ancestor, ...] = ()
    tracker: SegmentTracker = field(default_factory=SegmentTracker)

    def __len__(self) -> int:
        return len(self.ancestors)

    def note_parent_head(self, parent_hash: bytes) -> UnincludedSegment:
        if not self.ancestors:
            return self
        last = self.ancestors[-1]
        updated = Ancestor(last.used_bandwidth, parent_hash, last.consumed_go_ahead_signal)
        return UnincludedSegment((*self.ancestors[:-1], updated), self.tracker)

    def prune_included(
        self,
        included_hash: bytes | None,
        parent_hash: bytes,
        expects_parent_included: bool = False,
    ) -> UnincludedSegment:
        """Drop the ancestors the relay chain has included. `included_hash` is the hash of the
        included head in the proof (None when the proof lacks it). With
        `expects_parent_included` the included head must be the parent (a missing one is taken
        to be the parent); otherwise a missing head makes the block invalid."""
        if expects_parent_included:
            if included_hash is not None and included_hash != parent_hash:
                raise BlockInvalid("expected parent to be included")
            included_hash = parent_hash
        elif included_hash is None:
            raise BlockInvalid("relay state proof lacks the included para head")
        for i, ancestor in enumerate(self.ancestors):
            if ancestor.para_head_hash == included_hash:
                tracker = self.tracker
                for dropped in self.ancestors[: i + 1]:
                    tracker = tracker.subtract(dropped)
                return UnincludedSegment(self.ancestors[i + 1 :], tracker)
        return self

    def check_capacity(self, capacity: int) -> None:
        if len(self.ancestors) >= capacity:
            raise BlockInvalid(f"{NO_SPACE}: new_len({len(self.ancestors)}) < capacity({capacity})")

    def append(
        self,
        block: Ancestor,
        watermark: HrmpWatermarkUpdate,
        limits: OutboundBandwidthLimits,
    ) -> UnincludedSegment:
        try:
            tracker = self.tracker.append(block, watermark, limits)
        except BandwidthUpdateError as exc:
            raise BlockInvalid(str(exc)) from None
        return UnincludedSegment((*self.ancestors, block), tracker)

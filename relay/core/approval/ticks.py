"""Approval time: ticks, a twelfth of a slot, counted from the Unix epoch like the slots.

Polkadot counts approval time in 500 ms ticks, twelve to a 6 s slot; delay tranches are ticks after
the block's slot began, and a no-show is `no_show_slots` slots of ticks. Keeping twelve ticks a slot
whatever `slot_ms` is keeps every ratio of the reference at 1 s test slots too. The caller turns its
clock into ticks (`tick_of`); nothing here reads a clock.
"""

from __future__ import annotations

TICKS_PER_SLOT = 12
# An assignment for a tranche this many ticks beyond now is held back (`TooFarInFuture`), not
# imported: polkadot's `TICK_TOO_FAR_IN_FUTURE`, 10 s of 500 ms ticks.
TICK_TOO_FAR_IN_FUTURE = 20
# A candidate counts as approved by its required tranches only once the last assignment counted
# is this many ticks old, so an assignment still in flight to other nodes is not overtaken
# (polkadot's `APPROVAL_DELAY`).
APPROVAL_DELAY = 2


def tick_of(now_ms: int, slot_ms: int) -> int:
    """The tick a wall-clock (or virtual) time in milliseconds falls in."""
    return now_ms * TICKS_PER_SLOT // slot_ms


def slot_start_tick(slot: int) -> int:
    """The tick a slot begins at: a relay block's `block_tick`, tranche 0 of its candidates."""
    return slot * TICKS_PER_SLOT


def no_show_duration(no_show_slots: int) -> int:
    """Ticks an assigned checker has to approve before it counts as a no-show."""
    return no_show_slots * TICKS_PER_SLOT

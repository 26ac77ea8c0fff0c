"""Spec §7 scenarios 39–42: the fixed-velocity consensus hook (cumulus `aura-ext` tests)."""

from __future__ import annotations

import pytest

from collator.core.consensus_hook import BlockInvalid, FixedVelocityConsensusHook, RelaySlotInfo
from collator.core.unincluded_segment import Ancestor, UsedBandwidth


def test_s7_39_velocity_limit_and_reset() -> None:
    hook = FixedVelocityConsensusHook(velocity=2, capacity=10, relay_slot_ms=6000)
    info = None
    seen = []
    for _ in range(3):
        _, info = hook.on_state_proof(10, 10, 6000, info)
        seen.append(info)
    assert seen == [RelaySlotInfo(10, 1), RelaySlotInfo(10, 2), RelaySlotInfo(10, 3)]
    with pytest.raises(BlockInvalid, match="authored blocks limit is reached"):
        hook.on_state_proof(10, 10, 6000, info)
    capacity, info = hook.on_state_proof(11, 11, 6000, info)
    assert (capacity, info) == (10, RelaySlotInfo(11, 1))


def test_s7_40_backward_relay_slot_not_tolerated() -> None:
    hook = FixedVelocityConsensusHook(velocity=2, capacity=10, relay_slot_ms=6000)
    _, info = hook.on_state_proof(10, 10, 6000, None)
    with pytest.raises(BlockInvalid, match="Slot moved backwards"):
        hook.on_state_proof(9, 9, 6000, info)


def test_s7_41_para_slot_too_high() -> None:
    hook = FixedVelocityConsensusHook(velocity=10, capacity=10, relay_slot_ms=6000)
    for para_slot in (31, 32):
        with pytest.raises(BlockInvalid, match="too far in the future"):
            hook.on_state_proof(10, para_slot, 2000, None)
    for para_slot in (30, 29, 1):
        hook.on_state_proof(10, para_slot, 2000, None)
    hook.on_state_proof(11, 33, 2000, None)
    with pytest.raises(BlockInvalid, match="too far in the future"):
        hook.on_state_proof(10, 11, 6000, None)
    for para_slot in (10, 9, 1):
        hook.on_state_proof(10, para_slot, 6000, None)


def test_s7_42_can_build_upon() -> None:
    hook = FixedVelocityConsensusHook(velocity=2, capacity=10, relay_slot_ms=6000)
    assert hook.can_build_upon(b"\x01", 10, None, [])
    info = RelaySlotInfo(10, 2)
    assert hook.can_build_upon(b"\x01", 11, info, [])
    assert hook.can_build_upon(b"\x01", 10, info, [])
    assert not hook.can_build_upon(b"\x01", 9, info, [])
    assert not hook.can_build_upon(b"\x01", 10, RelaySlotInfo(10, 3), [])
    small = FixedVelocityConsensusHook(velocity=2, capacity=2, relay_slot_ms=6000)
    segment = [Ancestor(UsedBandwidth(), bytes([h])) for h in (1, 2, 3)]
    assert not small.can_build_upon(b"\x01", 11, info, segment)
    assert small.can_build_upon(b"\x02", 11, info, segment)

"""Approval gossip waiting for its block (relay/core/approval/waiting.py): bounded in all and per
peer, so junk about blocks that never come from one peer pushes out only that peer's messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.core.approval.waiting import Added, WaitingRoom

ASSIGNMENT, APPROVAL = 1, 2


def block(i: int) -> bytes:
    return i.to_bytes(32, "big")


def test_a_peer_over_its_cap_loses_its_own_oldest_and_nobody_elses() -> None:
    room: WaitingRoom[str] = WaitingRoom(max_total=100, max_per_peer=10)
    assert room.add(ASSIGNMENT, block(0), b"honest-0", "honest") is Added.NEW
    results = [room.add(ASSIGNMENT, block(1000 + i), b"junk-%d" % i, "junk") for i in range(13)]
    assert room.add(APPROVAL, block(0), b"honest-1", "honest") is Added.NEW
    assert results[:10] == [Added.NEW] * 10 and results[10:] == [Added.OVER_PEER_CAP] * 3
    assert room.from_peer("junk") == 10 and room.from_peer("honest") == 2 and len(room) == 12
    assert room.dropped == 3
    assert room.take(block(1000)) == []  # the junk peer's three oldest went
    assert [w.raw for w in room.take(block(1003))] == [b"junk-3"]
    assert [w.raw for w in room.take(block(0))] == [b"honest-0", b"honest-1"]


def test_past_the_total_cap_the_oldest_message_goes_whoever_sent_it() -> None:
    room: WaitingRoom[str] = WaitingRoom(max_total=6, max_per_peer=3)
    for i in range(6):
        assert room.add(ASSIGNMENT, block(i), b"m%d" % i, f"peer-{i % 2}") is Added.NEW
    assert room.add(ASSIGNMENT, block(6), b"m6", "peer-2") is Added.NEW
    assert len(room) == 6 and room.dropped == 1
    assert room.take(block(0)) == [] and room.from_peer("peer-0") == 2


def test_a_copy_from_another_peer_waits_once_and_taking_frees_the_slots() -> None:
    room: WaitingRoom[str] = WaitingRoom(max_total=10, max_per_peer=2)
    assert room.add(APPROVAL, block(1), b"vote", "a") is Added.NEW
    assert room.add(APPROVAL, block(1), b"vote", "b") is Added.DUPLICATE
    assert room.add(ASSIGNMENT, block(1), b"cert", "a") is Added.NEW
    assert room.from_peer("b") == 0
    taken = room.take(block(1), APPROVAL)  # an assignment came: only the approvals are tried
    assert [(w.topic, w.raw, w.source) for w in taken] == [(APPROVAL, b"vote", "a")]
    assert room.from_peer("a") == 1
    assert room.add(APPROVAL, block(2), b"next", "a") is Added.NEW  # room again under a's cap


def test_caps_must_make_sense() -> None:
    with pytest.raises(ValueError):
        WaitingRoom(max_total=4, max_per_peer=5)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 7),
                          st.integers(0, 3)), max_size=200))
def test_the_caps_hold_and_the_indexes_agree(ops: list[tuple[bool, int, int, int]]) -> None:
    room: WaitingRoom[int] = WaitingRoom(max_total=12, max_per_peer=5)
    for add, peer, b, m in ops:
        if add:
            room.add(ASSIGNMENT, block(b), bytes([m]), peer)
        else:
            for w in room.take(block(b)):
                assert w.block_hash == block(b)
        assert len(room) <= 12
        assert all(room.from_peer(p) <= 5 for p in range(6))
        assert sum(room.from_peer(p) for p in range(6)) == len(room)


def test_an_approval_awaiting_an_assignment_is_retried_for_that_checker_alone() -> None:
    room: WaitingRoom[str] = WaitingRoom(max_total=100, max_per_peer=100)
    room.add(APPROVAL, block(0), b"approval-of-3", "p", awaits=3)
    room.add(APPROVAL, block(0), b"approval-of-4", "p", awaits=4)
    room.add(APPROVAL, block(0), b"for-the-block", "p")
    assert room.take_awaiting(block(0), 5) == []
    assert [w.raw for w in room.take_awaiting(block(0), 3)] == [b"approval-of-3"]
    assert room.take_awaiting(block(0), 3) == [] and len(room) == 2
    # The block's own retry still takes what awaits an assignment, and leaves nothing indexed.
    assert [w.raw for w in room.take(block(0))] == [b"approval-of-4", b"for-the-block"]
    assert room.take_awaiting(block(0), 4) == [] and len(room) == 0
    # Dropped over the cap: gone from the checker's index too.
    small: WaitingRoom[str] = WaitingRoom(max_total=1, max_per_peer=1)
    small.add(APPROVAL, block(1), b"a", "p", awaits=7)
    small.add(APPROVAL, block(2), b"b", "q", awaits=7)
    assert small.take_awaiting(block(1), 7) == []
    assert [w.raw for w in small.take_awaiting(block(2), 7)] == [b"b"]

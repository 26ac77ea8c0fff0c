"""The informant's rate limits, on a clock the test moves: a misbehaving peer is one warning per
period however many reports it earns, the next one counts those held back; keys stay bounded."""

from __future__ import annotations

from node.informant import THROTTLE_KEYS, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_key_per_period_with_the_count_held_back() -> None:
    clock = Clock()
    throttle = Throttle(30.0, clock)
    assert throttle.allow("peer-a") == 0
    for _ in range(999):  # a flood of reports within the period
        assert throttle.allow("peer-a") is None
    assert throttle.allow("peer-b") == 0  # another peer is its own key
    clock.now = 29.9
    assert throttle.allow("peer-a") is None
    clock.now = 30.0
    assert throttle.allow("peer-a") == 1000
    assert throttle.allow("peer-a") is None


def test_keys_stay_bounded() -> None:
    clock = Clock()
    throttle = Throttle(30.0, clock)
    for i in range(THROTTLE_KEYS * 3):
        clock.now = i / 1000
        assert throttle.allow(i) == 0
    assert len(throttle._last) <= THROTTLE_KEYS and len(throttle._held) <= THROTTLE_KEYS

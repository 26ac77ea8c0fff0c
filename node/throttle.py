"""At most one log line per key per period: what keeps a flood (a misbehaving peer, ten thousand
hostile connections) from flooding the log too. The lines held back are counted and reported with
the next one let through; the keys remembered are bounded whatever comes and goes."""

from __future__ import annotations

from collections.abc import Callable, Hashable

THROTTLE_KEYS = 4096  # keys remembered by a throttle


class Throttle:
    """At most one line per key per `period_s`; the lines held back are counted and reported with
    the next one let through."""

    def __init__(self, period_s: float, clock: Callable[[], float]) -> None:
        self.period_s = period_s
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def allow(self, key: Hashable) -> int | None:
        """None: hold this line back. Otherwise log it, saying how many were held back."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.period_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if len(self._last) >= THROTTLE_KEYS:
            for old in [k for k, t in self._last.items() if now - t >= self.period_s]:
                del self._last[old]
                self._held.pop(old, None)
            if len(self._last) >= THROTTLE_KEYS:  # all recent: forget the oldest
                oldest = min(self._last, key=self._last.__getitem__)
                del self._last[oldest]
                self._held.pop(oldest, None)
        self._last[key] = now
        return self._held.pop(key, 0)

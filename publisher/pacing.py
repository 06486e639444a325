"""Pacing: when the next tick is due, for a steady total rate.

Rule: pure; the clock is injected and nothing here sleeps. The caller asks `wait_time()`, sleeps
however it likes, then calls `sent()`.

Deadlines are absolute (`origin + n / rate`), so sleep overshoot does not accumulate into drift
over a long run. After a stall longer than `max_lag` (e.g. Pub/Sub down and the in-flight window
full) the schedule restarts from now instead of bursting to catch up.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Clock = Callable[[], float]


class Pacer:
    """Schedules ticks at `rate` per second by absolute deadlines."""

    def __init__(self, rate: float, clock: Clock, *, max_lag: float = 1.0) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number, got {rate}")
        self._interval = 1.0 / rate
        self._clock = clock
        self._max_lag = max(max_lag, self._interval)
        self._origin = clock()
        self._count = 0
        self._extra = 0.0

    @property
    def next_deadline(self) -> float:
        """The clock reading at which the next tick is due."""
        return self._origin + self._count * self._interval + self._extra

    def wait_time(self) -> float:
        """Seconds until the next tick is due (0 when it is due or late)."""
        return max(0.0, self.next_deadline - self._clock())

    def delay(self, seconds: float) -> None:
        """Push the next tick and all later ones back by `seconds` (a replay row's `delay_ms`)."""
        if seconds > 0:
            self._extra += seconds

    def sent(self) -> None:
        """Record that the due tick went out; restart the schedule if it was badly late."""
        now = self._clock()
        if now - self.next_deadline > self._max_lag:
            self._origin, self._count, self._extra = now, 0, 0.0
        self._count += 1


class RateMeter:
    """Measures the recent rate between two readings (for the progress line)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last_time = clock()
        self._last_count = 0

    def rate(self, count: int) -> float:
        """Return events/s since the previous call, given the running total `count`."""
        now = self._clock()
        elapsed = now - self._last_time
        done = count - self._last_count
        self._last_time, self._last_count = now, count
        return done / elapsed if elapsed > 0 else 0.0

"""Pacing: when the next tick is due, for a steady total rate.

Rule: pure; the clock is injected and nothing here sleeps. The caller asks `wait_time()`, sleeps
however it likes, then calls `sent()`.

Deadlines are absolute (`origin + n / rate`), so sleep overshoot does not accumulate into drift
over a long run, and a caller that wakes late makes every tick due by then in one go (`due()`),
which is also what keeps the cost per tick low (no sleep, clock read or lock per tick). After a
stall longer than `max_lag` (e.g. Pub/Sub down and the in-flight window full) the schedule
restarts from now instead of bursting to catch up; the ticks it skips are counted (`skipped`),
so the progress line says so instead of the rate silently falling short.
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
        self.skipped = 0  # ticks never made because the schedule restarted after a stall

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

    def due(self) -> int:
        """How many ticks are due now (0: none yet). Call `sent(n)` for the ones made.

        More than `max_lag` behind, the schedule restarts from now: one tick is due, and the
        ticks whose time passed meanwhile are added to `skipped`.
        """
        now = self._clock()
        late = now - self.next_deadline
        if late < 0:
            return 0
        overdue = int(late / self._interval + 1e-9)  # beyond the one due first (float slack)
        if late > self._max_lag:
            self.skipped += overdue
            self._origin, self._count, self._extra = now, 0, 0.0
            return 1
        return overdue + 1

    def sent(self, count: int = 1) -> None:
        """Record that `count` due ticks went out."""
        self._count += count


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


class Packer:
    """Gathers encoded ticks into one message: what was made within `window` s, up to `max_bytes`.

    Pure like the rest of this module: the caller asks `due()`/`add()` and sends `take()`.
    A window of 0 sends every tick alone.
    """

    OVERHEAD = len(b'{"ticks":[]}')

    def __init__(self, window: float, max_bytes: int, clock: Clock) -> None:
        self.window = window
        self.max_bytes = max_bytes
        self._clock = clock
        self._parts: list[tuple[bytes, str]] = []
        self._size = self.OVERHEAD
        self._opened = 0.0

    def add(self, encoded: bytes, symbol: str) -> bool:
        """Add one encoded tick; True when the message must go now (window 0 or full)."""
        if not self._parts:
            self._opened = self._clock()
        self._parts.append((encoded, symbol))
        self._size += len(encoded) + 1
        return self.window <= 0 or self._size >= self.max_bytes

    def would_overflow(self, encoded: bytes) -> bool:
        """Whether adding `encoded` would pass `max_bytes` (send the pack first)."""
        return bool(self._parts) and self._size + len(encoded) + 1 > self.max_bytes

    def due(self) -> bool:
        """Whether the window of the oldest gathered tick is over."""
        return bool(self._parts) and self._clock() - self._opened >= self.window

    def wait_time(self) -> float:
        """Seconds until the pack is due (inf when empty)."""
        if not self._parts:
            return math.inf
        return max(0.0, self._opened + self.window - self._clock())

    def take(self) -> list[tuple[bytes, str]]:
        """The gathered ticks (encoded, symbol), emptying the pack."""
        parts, self._parts, self._size = self._parts, [], self.OVERHEAD
        return parts

    def __len__(self) -> int:
        return len(self._parts)

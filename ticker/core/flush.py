"""Adaptive flush interval: how long a client's writer lets ticks gather before its next frame.

Rule: pure (no clock, no asyncio). The runtime feeds `update()` the process's busy fraction (CPU
seconds per wall second) a few times a second; writers read `interval`.

Why: a frame costs far more than a tick inside a frame (Quart + Hypercorn + wsproto + one send
syscall per frame; issue 5's profile). An idle process sends every tick at once (interval = floor).
As it gets busier the interval grows linearly up to `ceiling`, so a client that receives faster
than one tick per interval gets several ticks per frame, and the cost per tick falls exactly when
it matters. A client slower than that is never delayed: its writer waits only when its previous
frame went out less than `interval` ago. Ticks are never dropped or reordered here.
"""

from __future__ import annotations

from dataclasses import dataclass

FLOOR_BUSY = 0.5  # at or below this busy fraction, the interval is the floor
CEILING_BUSY = 0.8  # at or above it, the ceiling


@dataclass(slots=True)
class AdaptiveFlush:
    """The current flush interval (seconds), driven by smoothed process busyness."""

    floor: float = 0.0
    ceiling: float = 0.04
    smoothing: float = 0.5  # weight of the newest sample in the moving average
    busy: float = 0.0
    interval: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.floor <= self.ceiling:
            raise ValueError(f"need 0 <= floor <= ceiling, got {self.floor}, {self.ceiling}")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing}")
        self.interval = self.floor

    def update(self, busy: float) -> float:
        """Fold in one sample of busyness (clamped to 0..1); return the new interval."""
        self.busy += self.smoothing * (min(max(busy, 0.0), 1.0) - self.busy)
        share = (self.busy - FLOOR_BUSY) / (CEILING_BUSY - FLOOR_BUSY)
        self.interval = self.floor + min(max(share, 0.0), 1.0) * (self.ceiling - self.floor)
        return self.interval

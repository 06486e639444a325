"""Recent latency samples and their percentiles, cheap enough for the hot path.

Rule: bounded (a ring of the last `size` samples); `record` is O(1), percentiles sort a copy.
"""

from __future__ import annotations

from collections import deque


class LatencyWindow:
    """The last `size` latency samples, in milliseconds."""

    def __init__(self, size: int = 2048) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0

    def record(self, ms: float) -> None:
        """Add one sample (negative clock skew is clamped to 0)."""
        self._samples.append(ms if ms > 0 else 0.0)
        self.count += 1

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100) of the held samples, or None when there are none."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
        return ordered[index]

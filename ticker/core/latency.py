"""Publish-to-send latency: recent samples for percentiles, cumulative buckets for a histogram.

Rules:
- Bounded: `LatencyWindow` keeps a ring of the last `size` samples; `record` is O(1) and
  percentiles sort a copy (the dashboard asks about once a second).
- `LatencyHistogram` adds what a Prometheus histogram needs (cumulative-able bucket counts and a
  sum, since start), at one O(log buckets) bisect per sample: the only cost metrics add to the
  hot path. It stays here, pure, so the runtime that records samples needs no metrics library;
  `ticker.server.metrics` reads it at scrape time.
- Negative samples (clock skew between producer and server) count as 0.
"""

from __future__ import annotations

import bisect
from collections import deque

# Finer around the 100 ms bound the service is held to: with only 100 and 250 there,
# histogram_quantile (Grafana, bench C's server-side p99) could only say "somewhere in 100-250".
LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 75, 100, 150, 200, 250, 500, 1000, 2500, 5000, 10_000)


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


class LatencyHistogram(LatencyWindow):
    """A `LatencyWindow` that also keeps per-bucket counts and a sum over the process's life."""

    def __init__(self, size: int = 2048, buckets: tuple[float, ...] = LATENCY_BUCKETS_MS) -> None:
        super().__init__(size)
        self.buckets = buckets
        self.bucket_counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum_ms = 0.0

    def record(self, ms: float) -> None:
        """Add one sample to the window and to its bucket (one call per frame: kept flat)."""
        if ms < 0:
            ms = 0.0
        self._samples.append(ms)
        self.count += 1
        self.bucket_counts[bisect.bisect_left(self.buckets, ms)] += 1
        self.sum_ms += ms

    def cumulative(self) -> list[tuple[float, int]]:
        """`(upper bound in ms, samples at or below it)` per bucket, ending with +Inf."""
        out, running = [], 0
        for bound, count in zip((*self.buckets, float("inf")), self.bucket_counts, strict=True):
            running += count
            out.append((bound, running))
        return out

from __future__ import annotations

from ticker.core.latency import LatencyHistogram, LatencyWindow
from ticker.core.outbox import Outbox


def test_a_client_that_keeps_up_gets_every_tick_in_order():
    box = Outbox(limit=10)
    assert box.offer("AAPL", 1, "a1", 100) is True
    assert box.offer("AAPL", 2, "a2", 101) is False  # already awake
    box.offer("MSFT", 1, "m1", 102)
    assert box.take() == (["a1", "a2", "m1"], 100)
    assert box.take() == ([], 0)


def test_duplicates_and_older_seqs_never_reach_the_client():
    box = Outbox(limit=10)
    box.offer("AAPL", 5, "a5", 1)
    box.offer("AAPL", 5, "a5", 1)
    box.offer("AAPL", 4, "a4", 1)
    assert box.take()[0] == ["a5"]
    box.offer("AAPL", 5, "a5", 1)
    assert len(box) == 0


def test_a_slow_client_gets_the_latest_price_per_symbol_and_bounded_memory():
    box = Outbox(limit=8)
    for seq in range(1, 1001):
        box.offer("AAPL", seq, f"a{seq}", seq)
        box.offer("MSFT", seq, f"m{seq}", seq)
        assert len(box) <= 8
    ticks, _ = box.take()
    assert ticks[-2:] == ["a1000", "m1000"]
    assert box.conflated > 1900


def test_forget_drops_a_symbols_pending_ticks_and_gate():
    box = Outbox(limit=8)
    box.offer("AAPL", 3, "a3", 1)
    box.offer("MSFT", 3, "m3", 1)
    box.forget("AAPL")
    assert box.take()[0] == ["m3"]
    assert box.offer("AAPL", 1, "a1", 1) is True  # a fresh subscription starts over


def test_latency_window_percentiles():
    window = LatencyWindow(size=100)
    assert window.percentile(50) is None
    for ms in range(1, 101):
        window.record(float(ms))
    window.record(-5.0)
    assert window.percentile(0) == 0.0
    assert window.percentile(50) == 51.0
    assert window.percentile(99) == 99.0
    assert window.count == 101


def test_latency_histogram_counts_buckets_cumulatively_and_sums():
    histogram = LatencyHistogram(size=2, buckets=(1, 10))
    for ms in (0.5, 1.0, 5.0, 50.0, -3.0):
        histogram.record(ms)
    assert histogram.cumulative() == [(1, 3), (10, 4), (float("inf"), 5)]  # 1.0 is in "<= 1"
    assert histogram.sum_ms == 56.5  # the negative sample counts as 0
    assert histogram.count == 5
    assert (histogram.percentile(0), histogram.percentile(100)) == (0.0, 50.0)  # the last 2


def test_the_default_buckets_tell_latencies_around_the_100_ms_bound_apart():
    histogram = LatencyHistogram()
    for ms in (80.0, 120.0, 180.0):
        histogram.record(ms)
    cumulative = dict(histogram.cumulative())
    assert [cumulative[bound] for bound in (75, 100, 150, 200, 250)] == [0, 1, 2, 3, 3]

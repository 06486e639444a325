from __future__ import annotations

import gc

from tests.conftest import FakeClock, tick
from ticker.core.book import LatestBook
from ticker.core.codec import encode_tick
from ticker.core.history import RecentTicks


def test_book_keeps_the_latest_put_and_forgets_on_request():
    book = LatestBook()
    book.put(tick(seq=5))
    book.put(tick(seq=6))
    assert book.latest("AAPL") == tick(seq=6)
    assert len(book) == 1
    book.forget("AAPL")
    book.forget("AAPL")  # twice is fine
    assert book.latest("AAPL") is None


def test_book_snapshot_keeps_the_requested_order_and_skips_unknown():
    book = LatestBook()
    book.put(tick("MSFT", 1))
    book.put(tick("AAPL", 1))
    assert [t.symbol for t in book.snapshot(["AAPL", "ZZZ", "MSFT"])] == ["AAPL", "MSFT"]
    assert book.symbols() == ["AAPL", "MSFT"]


def _history(clock, size=4, max_age=60.0):
    ring = RecentTicks(size, max_age, clock)
    return ring


def _add(ring, *seqs, symbol="AAPL"):
    for seq in seqs:
        t = tick(symbol, seq)
        ring.append(t, encode_tick(t))


def test_history_replays_every_tick_after_since(clock):
    ring = _history(clock)
    _add(ring, 10, 11, 12, 13)
    assert [q for q, _, _ in ring.since("AAPL", 11)] == [12, 13]
    assert [q for q, _, _ in ring.since("AAPL", 9)] == [10, 11, 12, 13]
    assert ring.since("AAPL", 13) == []
    assert ring.since("AAPL", 20) == []  # the client is ahead of this instance


def test_history_refuses_when_the_ring_no_longer_covers_since(clock):
    ring = _history(clock, size=4)
    _add(ring, 10, 11, 12, 13, 14)
    assert ring.since("AAPL", 9) is None
    assert ring.since("MSFT", 1) is None
    assert len(ring) == 4


def test_history_restarts_after_a_seq_jump(clock):
    ring = _history(clock)
    _add(ring, 10, 11, 500)
    assert ring.since("AAPL", 10) is None
    assert [q for q, _, _ in ring.since("AAPL", 499)] == [500]


def test_history_expires_old_ticks_but_keeps_the_newest(clock: FakeClock):
    ring = _history(clock, max_age=10.0)
    _add(ring, 1, 2)
    clock.advance(11)
    _add(ring, 3)
    assert ring.since("AAPL", 1) is None
    assert [q for q, _, _ in ring.since("AAPL", 2) or ()] == [3]
    clock.advance(60)
    assert ring.since("AAPL", 3) == []


def test_history_total_bound_drops_the_globally_oldest_first_and_keeps_each_newest():
    clock = FakeClock()
    ring = RecentTicks(100, 60.0, clock, max_total=4)
    for seq in (1, 2, 3):
        ring.append(tick("AAPL", seq), "a")
    for seq in (1, 2):
        ring.append(tick("MSFT", seq), "m")
    assert len(ring) == 4  # AAPL 1 went first
    assert ring.since("AAPL", 0) is None
    assert [q for q, _, _ in ring.since("AAPL", 1) or ()] == [2, 3]
    for seq in (3, 4, 5):
        ring.append(tick("MSFT", seq), "m")
    assert ring.knows("AAPL")  # its newest stays: it is the snapshot anchor
    assert [q for q, _, _ in ring.since("AAPL", 2) or ()] == [3]
    ring.forget("AAPL")
    assert not ring.knows("AAPL")
    for seq in (6, 7, 8, 9):
        ring.append(tick("MSFT", seq), "m")  # AAPL's old order entries age out harmlessly
    assert len(ring) == 4


def test_holding_ticks_leaves_the_gc_young_generation_alone(clock):
    # The history holds every accepted tick for a while; were its entries GC-tracked, each one
    # would count toward the next young collection (at 20,000 ticks/s, one every ~0.7 s).
    ring = RecentTicks(1000, 60.0, clock, max_total=100_000)
    made = [tick(f"S{i % 10}", i // 10) for i in range(5000)]
    encoded = [encode_tick(t) for t in made]
    gc.collect()
    gc.disable()
    try:
        before = gc.get_count()[0]
        for t, e in zip(made, encoded, strict=True):
            ring.append(t, e)
        grown = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert grown < 100  # not one tracked object per tick
    held = zip(made, encoded, strict=True)
    assert ring.since("S3", 10) == [
        (t.seq, t.ts, e) for t, e in held if t.symbol == "S3" and t.seq > 10
    ]

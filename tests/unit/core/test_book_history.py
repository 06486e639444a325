from __future__ import annotations

from tests.conftest import FakeClock, tick
from ticker.core.book import LatestBook, Verdict
from ticker.core.codec import encode_tick
from ticker.core.history import RecentTicks


def test_book_accepts_newer_and_names_duplicates_stale_and_gaps():
    book = LatestBook()
    assert book.accept(tick(seq=5)) is Verdict.NEW
    assert book.accept(tick(seq=6)) is Verdict.NEW
    assert book.accept(tick(seq=6)) is Verdict.DUPLICATE
    assert book.accept(tick(seq=4)) is Verdict.STALE
    assert book.accept(tick(seq=9)) is Verdict.GAP
    assert book.latest("AAPL") == tick(seq=9)


def test_book_snapshot_keeps_the_requested_order_and_skips_unknown():
    book = LatestBook()
    book.accept(tick("MSFT", 1))
    book.accept(tick("AAPL", 1))
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
    assert [t.seq for t, _ in ring.since("AAPL", 11)] == [12, 13]
    assert [t.seq for t, _ in ring.since("AAPL", 9)] == [10, 11, 12, 13]
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
    assert [t.seq for t, _ in ring.since("AAPL", 499)] == [500]


def test_history_expires_old_ticks_but_keeps_the_newest(clock: FakeClock):
    ring = _history(clock, max_age=10.0)
    _add(ring, 1, 2)
    clock.advance(11)
    _add(ring, 3)
    assert ring.since("AAPL", 1) is None
    assert [t.seq for t, _ in ring.since("AAPL", 2)] == [3]
    clock.advance(60)
    assert ring.since("AAPL", 3) == []

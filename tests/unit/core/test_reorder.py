"""The reorder window with a fake clock: fills in time, timeouts, duplicates, poison recovery."""

from __future__ import annotations

from tests.conftest import FakeClock, tick
from ticker.core.reorder import Sequencer


def _seqs(releases):
    return [(t.seq, gap) for t, gap in releases]


def _window(clock, hold=0.05, **kw) -> Sequencer:
    return Sequencer(hold, clock, **kw)


def test_in_order_ticks_pass_at_once():
    clock = FakeClock()
    seq = _window(clock)
    assert _seqs(seq.push(tick(seq=10))) == [(10, False)]  # the first tick is taken as is
    assert _seqs(seq.push(tick(seq=11))) == [(11, False)]
    assert seq.due() == []
    assert len(seq) == 1


def test_in_order_takes_only_the_next_seq_with_nothing_held():
    clock = FakeClock()
    seq = _window(clock)
    assert not seq.in_order(tick(seq=10))  # first tick of a symbol: push decides
    seq.push(tick(seq=10))
    assert seq.in_order(tick(seq=11))  # accepted, like push would
    assert not seq.in_order(tick(seq=11))  # a duplicate: push counts it
    assert _seqs(seq.push(tick(seq=11))) == []
    assert seq.push(tick(seq=13)) == []  # a hole: 13 held
    assert not seq.in_order(tick(seq=12))  # 12 fills it: push releases 12 and 13 in order
    assert _seqs(seq.push(tick(seq=12))) == [(12, False), (13, False)]
    assert seq.in_order(tick(seq=14))
    assert seq.counters.duplicates == 1


def test_a_hole_that_fills_in_time_is_released_in_order_without_a_gap():
    clock = FakeClock()
    seq = _window(clock)
    seq.push(tick(seq=1))
    assert seq.push(tick(seq=3)) == []
    assert seq.push(tick(seq=4)) == []
    assert seq.held() == 2
    clock.advance(0.03)
    assert seq.due() == []
    assert _seqs(seq.push(tick(seq=2))) == [(2, False), (3, False), (4, False)]
    assert seq.held() == 0
    assert (seq.counters.reordered, seq.counters.gaps) == (2, 0)
    clock.advance(1)
    assert seq.due() == []  # the filled hold's deadline is gone


def test_a_hole_that_does_not_fill_becomes_one_gap_after_the_hold():
    clock = FakeClock()
    seq = _window(clock)
    seq.push(tick(seq=1))
    seq.push(tick(seq=3))
    seq.push(tick(seq=4))
    clock.advance(0.049)
    assert seq.due() == []
    clock.advance(0.002)
    assert _seqs(seq.due()) == [(3, True), (4, False)]
    assert seq.counters.gaps == 1
    assert seq.push(tick(seq=2)) == []  # it came too late
    assert seq.counters.late == 1


def test_two_holes_time_out_one_after_the_other():
    clock = FakeClock()
    seq = _window(clock)
    seq.push(tick(seq=1))
    seq.push(tick(seq=3))
    clock.advance(0.03)
    seq.push(tick(seq=6))
    clock.advance(0.03)  # 3 has waited 60 ms, 6 only 30 ms
    assert _seqs(seq.due()) == [(3, True)]
    assert _seqs(seq.push(tick(seq=4))) == [(4, False)]
    clock.advance(0.03)
    assert _seqs(seq.due()) == [(6, True)]
    assert seq.counters.gaps == 2


def test_duplicates_inside_and_outside_the_window_are_dropped_and_counted():
    clock = FakeClock()
    seq = _window(clock)
    seq.push(tick(seq=1))
    seq.push(tick(seq=3))
    assert seq.push(tick(seq=3)) == []  # held already
    assert seq.push(tick(seq=1)) == []  # accepted already
    assert _seqs(seq.push(tick(seq=2))) == [(2, False), (3, False)]
    assert seq.counters.duplicates == 2


def test_without_a_window_a_hole_is_a_gap_at_once():
    clock = FakeClock()
    seq = _window(clock, hold=0.0)
    seq.push(tick(seq=1))
    assert _seqs(seq.push(tick(seq=5))) == [(5, True)]


def test_the_hold_is_bounded_per_symbol():
    clock = FakeClock()
    seq = _window(clock, max_held=2)
    seq.push(tick(seq=1))
    seq.push(tick(seq=3))
    seq.push(tick(seq=4))
    assert _seqs(seq.push(tick(seq=6))) == [(3, True), (4, False)]
    assert seq.held() == 1


def test_symbols_are_independent_and_forget_starts_a_symbol_afresh():
    clock = FakeClock()
    seq = _window(clock)
    seq.push(tick("AAPL", 1))
    seq.push(tick("MSFT", 7))
    assert seq.push(tick("AAPL", 3)) == []
    assert _seqs(seq.push(tick("MSFT", 8))) == [(8, False)]
    seq.forget("AAPL")
    seq.forget("AAPL")
    clock.advance(1)
    assert seq.due() == []  # the forgotten symbol's deadline is skipped
    assert _seqs(seq.push(tick("AAPL", 2))) == [(2, False)]


def test_a_poison_seq_is_left_once_the_real_lineage_keeps_arriving():
    clock = FakeClock()
    seq = _window(clock, rebase_after=1.5, rebase_min=3)
    seq.push(tick(seq=100))
    seq.push(tick(seq=2**63 - 1))
    clock.advance(0.06)
    assert _seqs(seq.due()) == [(2**63 - 1, True)]
    released = []
    for n in range(101, 121):  # the real producer at 10 ticks/s
        clock.advance(0.1)
        released += seq.push(tick(seq=n))
    assert _seqs(released)[0][1] is True  # re-based with a gap (resync) ...
    first = released[0][0].seq
    assert first == 101 + 15  # ... after 1.5 s of the live lower lineage
    assert [t.seq for t, _ in released] == list(range(first, 121))
    assert seq.counters.rebased == 1


def test_no_rebase_while_the_accepted_lineage_is_alive_or_for_a_burst_of_old_ticks():
    clock = FakeClock()
    seq = _window(clock, rebase_after=1.0, rebase_min=3)
    seq.push(tick(seq=1000))
    for n in range(1001, 1031):
        clock.advance(0.1)
        seq.push(tick(seq=n))
        assert seq.push(tick(seq=n - 900)) == []  # an old lineage keeps coming: alive beats it
    clock.advance(5)
    assert [seq.push(tick(seq=n)) for n in (10, 11, 12, 14)] == [[], [], [], []]  # a burst
    assert seq.counters.rebased == 0
    clock.advance(0.5)
    assert seq.push(tick(seq=15)) == []  # run broken at 13 -> starts again
    assert seq.counters.late == 30 + 5


def test_a_restarted_producer_is_followed_after_the_hold():
    clock = FakeClock()
    seq = _window(clock)
    seq.push(tick(seq=5))
    assert seq.push(tick(seq=9_000_000)) == []
    clock.advance(0.05)
    assert _seqs(seq.due()) == [(9_000_000, True)]
    assert _seqs(seq.push(tick(seq=9_000_001))) == [(9_000_001, False)]

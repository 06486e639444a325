"""Pacing with a fake clock: absolute deadlines, no drift, no burst after a stall."""

from __future__ import annotations

import random

import pytest

from publisher.pacing import Pacer, RateMeter
from tests.conftest import FakeClock


def run_ticks(pacer: Pacer, clock: FakeClock, count: int, jitter: random.Random | None = None):
    """Drive the pacer like the job does: sleep until due (overshooting a bit), then send."""
    sent_at = []
    for _ in range(count):
        overshoot = jitter.uniform(0, 0.004) if jitter else 0.0
        clock.advance(pacer.wait_time() + overshoot)
        sent_at.append(clock.now)
        pacer.sent()
    return sent_at


def test_first_tick_is_due_immediately():
    clock = FakeClock()
    assert Pacer(10, clock).wait_time() == 0.0


def test_ticks_are_spaced_by_one_over_rate():
    clock = FakeClock()
    sent_at = run_ticks(Pacer(4, clock), clock, 5)
    assert sent_at == pytest.approx([1000.0, 1000.25, 1000.5, 1000.75, 1001.0])


def test_sleep_overshoot_does_not_accumulate_into_drift():
    clock = FakeClock()
    pacer = Pacer(50, clock)
    sent_at = run_ticks(pacer, clock, 50 * 3600, jitter=random.Random(7))
    # One hour at 50/s: the last tick is late by at most one overshoot, not by 180 000 of them.
    assert sent_at[-1] - (1000.0 + (50 * 3600 - 1) / 50) < 0.005
    assert pacer.next_deadline == pytest.approx(1000.0 + 3600.0)


def test_a_late_caller_catches_up_within_the_allowed_lag():
    clock = FakeClock()
    pacer = Pacer(10, clock, max_lag=1.0)
    pacer.sent()
    clock.advance(0.55)  # five ticks overdue, less than max_lag
    due_now = 0
    while pacer.wait_time() == 0.0:
        pacer.sent()
        due_now += 1
    assert due_now == 5


def test_due_counts_every_tick_whose_deadline_has_passed():
    clock = FakeClock()
    pacer = Pacer(10, clock, max_lag=1.0)
    assert pacer.due() == 1
    pacer.sent()
    assert pacer.due() == 0
    clock.advance(0.55)  # the ticks of 0.1 .. 0.5 s are due: made in one burst
    assert pacer.due() == 5
    pacer.sent(5)
    assert pacer.due() == 0
    assert pacer.wait_time() == pytest.approx(0.05)
    assert pacer.skipped == 0


def test_a_long_stall_restarts_the_schedule_instead_of_bursting():
    clock = FakeClock()
    pacer = Pacer(10, clock, max_lag=1.0)
    pacer.sent()
    clock.advance(30.0)  # e.g. the in-flight window was full while Pub/Sub was down
    assert pacer.due() == 1  # one tick now, not 300
    pacer.sent()
    assert pacer.wait_time() == pytest.approx(0.1)
    assert pacer.skipped == 299  # and the ticks it did not make are counted, not hidden


def test_delay_pushes_back_this_and_later_ticks():
    clock = FakeClock()
    pacer = Pacer(10, clock)
    pacer.sent()
    pacer.delay(0.5)
    assert pacer.wait_time() == pytest.approx(0.6)
    clock.advance(0.6)
    pacer.sent()
    assert pacer.wait_time() == pytest.approx(0.1)


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_rate_must_be_positive_and_finite(rate):
    with pytest.raises(ValueError, match="rate"):
        Pacer(rate, FakeClock())


def test_rate_meter_reports_events_per_second_since_last_reading():
    clock = FakeClock()
    meter = RateMeter(clock)
    clock.advance(2.0)
    assert meter.rate(100) == pytest.approx(50.0)
    clock.advance(5.0)
    assert meter.rate(110) == pytest.approx(2.0)
    assert meter.rate(110) == 0.0  # no time passed

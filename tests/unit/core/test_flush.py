from __future__ import annotations

import pytest

from ticker.core.flush import AdaptiveFlush


def test_an_idle_process_sends_every_tick_at_once():
    flush = AdaptiveFlush(ceiling=0.04)
    for _ in range(20):
        flush.update(0.1)
    assert flush.interval == 0.0


def test_a_busy_process_waits_up_to_the_ceiling_and_never_beyond():
    flush = AdaptiveFlush(ceiling=0.04)
    for _ in range(20):
        flush.update(3.0)  # several threads' CPU per wall second: clamped to 1
    assert flush.interval == pytest.approx(0.04)


def test_the_interval_grows_with_load_between_the_floor_and_the_ceiling():
    intervals = []
    for busy in (0.2, 0.4, 0.55, 0.7, 0.9):
        flush = AdaptiveFlush(floor=0.005, ceiling=0.04, smoothing=1.0)
        intervals.append(flush.update(busy))
    assert intervals[0] == 0.005
    assert intervals == sorted(intervals)
    assert intervals[-1] == pytest.approx(0.04)


def test_one_busy_sample_moves_the_interval_only_part_of_the_way():
    flush = AdaptiveFlush(ceiling=0.04, smoothing=0.5, busy=0.5)
    first = flush.update(1.0)
    assert 0.0 < first < 0.04


@pytest.mark.parametrize(
    ("floor", "ceiling", "smoothing"), [(-0.1, 0.04, 0.5), (0.05, 0.04, 0.5), (0.0, 0.04, 0.0)]
)
def test_nonsense_settings_are_refused(floor, ceiling, smoothing):
    with pytest.raises(ValueError, match=r"must|need"):
        AdaptiveFlush(floor=floor, ceiling=ceiling, smoothing=smoothing)

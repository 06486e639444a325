"""max_rate pacing in the outbox: at most one tick per interval per symbol, the latest, on time."""

from __future__ import annotations

import math

import pytest

from ticker.core.outbox import Outbox


def _box(clock, rate: float | None = 2.0, symbol: str = "AAPL") -> Outbox:
    box = Outbox(limit=8, clock=clock)
    box.set_rate(symbol, rate)
    return box


def test_the_first_tick_goes_at_once_then_one_per_interval_with_the_latest_price(clock):
    box = _box(clock)
    assert box.offer("AAPL", 1, "a1", 1) is True
    assert box.offer("AAPL", 2, "a2", 2) is False  # in flight: held, the writer is awake
    assert box.take() == (["a1"], 1)
    assert box.next_due() == clock.now + 0.5
    for seq in range(3, 10):
        box.offer("AAPL", seq, f"a{seq}", seq)
    assert not box.due()
    assert box.take() == ([], 0)
    clock.advance(0.5)
    assert box.due()
    assert box.take() == (["a9"], 9)  # only the latest; the rest were conflated
    assert box.conflated == 7
    assert box.next_due() is None  # nothing held
    assert not box.due()


def test_a_tick_after_a_quiet_interval_goes_at_once(clock):
    box = _box(clock)
    box.offer("AAPL", 1, "a1", 1)
    box.take()
    clock.advance(0.6)
    assert box.offer("AAPL", 2, "a2", 2) is True
    assert box.take()[0] == ["a2"]


def test_a_new_hold_wakes_a_waiting_writer_so_it_can_set_its_deadline(clock):
    box = _box(clock)
    box.offer("AAPL", 1, "a1", 1)
    box.take()
    assert box.offer("AAPL", 2, "a2", 2) is True  # held, a deadline to arm
    assert box.offer("AAPL", 3, "a3", 3) is False  # replaces the held one
    assert len(box) == 0
    assert box.next_due() == pytest.approx(clock.now + 0.5)


def test_unpaced_symbols_flow_beside_paced_ones(clock):
    box = _box(clock)
    box.offer("AAPL", 1, "a1", 1)
    box.offer("MSFT", 1, "m1", 1)
    box.offer("AAPL", 2, "a2", 2)
    box.offer("MSFT", 2, "m2", 2)
    assert box.take()[0] == ["a1", "m1", "m2"]
    clock.advance(0.5)
    assert box.take()[0] == ["a2"]


def test_the_resume_position_leaves_out_a_held_tick(clock):
    box = _box(clock)
    assert box.sent_seq() == {}
    box.offer("AAPL", 1, "a1", 1)
    box.offer("MSFT", 7, "m7", 1)
    box.take()
    box.offer("AAPL", 2, "a2", 2)
    assert box.last_seq == {"AAPL": 2, "MSFT": 7}
    assert box.sent_seq() == {"AAPL": 1, "MSFT": 7}
    clock.advance(1)
    box.take()
    assert box.sent_seq() == {"AAPL": 2, "MSFT": 7}
    unpaced = Outbox(limit=8)
    unpaced.offer("AAPL", 3, "a3", 1)
    assert unpaced.sent_seq() == {"AAPL": 3}


def test_lifting_the_rate_releases_the_held_tick_and_a_new_rate_applies_next(clock):
    box = _box(clock)
    assert box.rate("AAPL") == 2.0
    box.offer("AAPL", 1, "a1", 1)
    box.take()
    box.offer("AAPL", 2, "a2", 2)
    box.set_rate("AAPL", 10.0)
    assert box.rate("AAPL") == 10.0
    assert box.next_due() == pytest.approx(clock.now + 0.5)  # this interval stands
    box.set_rate("AAPL", None)
    assert box.rate("AAPL") is None
    assert box.take()[0] == ["a2"]
    box.set_rate("MSFT", None)  # never paced: nothing to do
    box.set_rate("AAPL", None)
    box.set_rate("AAPL", 1.0)
    box.offer("AAPL", 3, "a3", 3)
    box.set_rate("AAPL", None)  # lifted while in flight
    assert box.take()[0] == ["a3"]
    assert box.offer("AAPL", 4, "a4", 4) is True
    assert box.take()[0] == ["a4"]


def test_forget_drops_the_pacing_and_the_held_tick(clock):
    box = _box(clock)
    box.offer("AAPL", 1, "a1", 1)
    box.take()
    box.offer("AAPL", 2, "a2", 2)
    box.forget("AAPL")
    assert box.next_due() is None
    assert box.rate("AAPL") is None
    box.offer("AAPL", 1, "a1", 1)
    assert box.take()[0] == ["a1"]


def test_forget_while_in_flight_then_resubscribe(clock):
    box = _box(clock)
    box.set_rate("MSFT", 1.0)
    box.offer("AAPL", 1, "a1", 1)
    box.forget("AAPL")  # its tick was still pending
    assert box.take() == ([], 0)
    box.set_rate("AAPL", 2.0)
    box.offer("AAPL", 5, "a5", 5)
    assert box.take()[0] == ["a5"]


def test_conflate_now_keeps_the_latest_tick_per_symbol(clock):
    box = Outbox(limit=100, clock=clock)
    for seq in range(1, 6):
        box.offer("AAPL", seq, f"a{seq}", seq)
        box.offer("MSFT", seq, f"m{seq}", seq)
    box.conflate_now()
    assert box.take()[0] == ["a5", "m5"]
    assert box.conflated == 8


def test_due_time_is_never_armed_for_a_tick_still_in_flight(clock):
    box = _box(clock)
    box.offer("AAPL", 1, "a1", 1)
    box.offer("AAPL", 2, "a2", 2)  # held behind the in-flight tick
    assert box.next_due() is None  # the writer takes the in-flight one first
    assert math.isinf(box.paced["AAPL"].next_at)


def test_a_restart_drops_the_old_lineage_but_keeps_the_rate(clock):
    # the hub re-bases a poisoned symbol onto a lower seq: the gate starts afresh, max_rate stays
    box = _box(clock)
    box.offer("AAPL", 2**63 - 1, "poison", 1)  # in flight
    box.offer("AAPL", 2**63, "held", 2)  # held behind it
    box.restart("AAPL")
    assert len(box) == 0
    assert box.next_due() is None
    assert box.rate("AAPL") == 2.0
    assert box.offer("AAPL", 1005, "a1005", 3) is True  # lower seq accepted, goes at once
    assert box.offer("AAPL", 1006, "a1006", 4) is False  # paced as before: held
    assert box.take() == (["a1005"], 3)
    clock.advance(0.5)
    assert box.take() == (["a1006"], 4)
    assert box.sent_seq() == {"AAPL": 1006}


def test_a_restart_while_a_tick_is_held_keeps_the_interval_running(clock):
    box = _box(clock)
    box.offer("AAPL", 10, "a10", 1)
    box.take()
    box.offer("AAPL", 11, "a11", 2)  # held: the interval runs
    box.restart("AAPL")
    assert box.next_due() is None
    assert box.offer("AAPL", 3, "a3", 3) is True  # held (wake: set the deadline), not pending
    assert len(box) == 0  # still paced: the interval since a10 runs
    clock.advance(0.5)
    assert box.take() == (["a3"], 3)

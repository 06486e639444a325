"""RecentPollers: a long-poll client counts between its polls, for a grace, and no longer."""

from __future__ import annotations

from tests.conftest import FakeClock
from ticker.core.pollers import RecentPollers


def test_a_client_between_polls_is_remembered_until_its_next_poll(clock: FakeClock) -> None:
    pollers = RecentPollers(grace=5.0, clock=clock)
    pollers.answered("1.2.3.4", "c1", ("AAPL", "MSFT"))
    assert pollers.waiting() == [("AAPL", "MSFT")]
    pollers.polling("1.2.3.4", "c1")  # the next poll: a held session from now on
    assert pollers.waiting() == []


def test_a_client_that_stops_polling_is_forgotten_after_the_grace(clock: FakeClock) -> None:
    pollers = RecentPollers(grace=5.0, clock=clock)
    pollers.answered("a", "c1", ("AAPL",))
    clock.advance(3.0)
    pollers.answered("b", "c2", ("MSFT",))
    clock.advance(2.5)  # a: 5.5 s old, b: 2.5 s
    assert pollers.waiting() == [("MSFT",)]
    clock.advance(3.0)
    assert pollers.waiting() == []


def test_polls_without_cursor_or_from_elsewhere_change_nothing(clock: FakeClock) -> None:
    pollers = RecentPollers(grace=5.0, clock=clock)
    pollers.answered("a", "c1", ("AAPL",))
    pollers.polling("a", None)  # a first poll: nothing of it was remembered
    pollers.polling("b", "c1")  # same cursor, another client
    assert pollers.waiting() == [("AAPL",)]


def test_the_same_key_answered_again_is_one_client_with_a_fresh_grace(clock: FakeClock) -> None:
    pollers = RecentPollers(grace=5.0, clock=clock)
    pollers.answered("a", "c1", ("AAPL",))
    pollers.answered("b", "c9", ("NVDA",))
    clock.advance(4.0)
    pollers.answered("a", "c1", ("AAPL",))  # an empty answer hands out the same cursor
    clock.advance(2.0)
    assert pollers.waiting() == [("AAPL",)]


def test_memory_is_bounded_oldest_first(clock: FakeClock) -> None:
    pollers = RecentPollers(grace=5.0, clock=clock, limit=2)
    for n in range(3):
        pollers.answered("a", f"c{n}", (f"S{n}",))
    assert pollers.waiting() == [("S1",), ("S2",)]

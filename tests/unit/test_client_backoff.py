"""ticker.client's reconnect backoff: full jitter under a doubling cap, reset on success."""

from __future__ import annotations

from ticker.client import Backoff


def test_the_cap_doubles_per_failure_up_to_the_ceiling_and_the_delay_is_jittered_below_it():
    asked: list[tuple[float, float]] = []

    def top(low: float, high: float) -> float:
        asked.append((low, high))
        return high

    backoff = Backoff(base=0.5, cap=4.0, rand=top)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(low == 0.0 for low, _ in asked)  # full jitter: anywhere from 0
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_a_retry_after_is_a_floor():
    backoff = Backoff(rand=lambda low, high: low)
    assert backoff.next_delay(at_least=3.0) == 3.0
    assert backoff.next_delay() == 0.0

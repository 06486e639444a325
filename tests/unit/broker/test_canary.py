"""StreamWatch (readiness evidence), canary messages and the janitor's orphan decision: pure."""

from __future__ import annotations

from ticker.broker.canary import CANARY_ATTRIBUTE, StreamWatch, canary_message, canary_source
from ticker.ops.janitor import orphaned
from ticker.serve import default_bind


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stream_is_not_trusted_before_its_first_message():
    clock = Clock()
    watch = StreamWatch(stale_after=8, clock=clock)
    assert watch.problem() == "no stream open"
    watch.opened()
    clock.now += 3
    assert "waiting for the first message" in str(watch.problem())
    watch.message()
    assert watch.problem() is None


def test_a_stream_goes_stale_after_silence_and_recovers_on_a_message():
    clock = Clock()
    watch = StreamWatch(stale_after=8, clock=clock)
    watch.opened()
    watch.message()
    clock.now += 8.5
    assert watch.problem() == "no message for 8.5s"
    watch.message()
    assert watch.problem() is None


def test_a_new_stream_must_prove_itself_again():
    clock = Clock()
    watch = StreamWatch(stale_after=8, clock=clock)
    watch.opened()
    watch.message()
    watch.opened()  # resubscribed under a new name
    assert watch.problem() is not None
    assert watch.silent_for() == 0


def test_canaries_name_their_subscription_and_ticks_are_not_canaries():
    data, attributes = canary_message("ticker-a-1", 5)
    assert canary_source(attributes) == "ticker-a-1"
    assert attributes == {CANARY_ATTRIBUTE: "ticker-a-1"}
    assert b"ticker-a-1" in data
    assert canary_source({"symbol": "AAPL"}) is None


def test_only_subscriptions_no_canary_named_are_orphans():
    candidates = ["projects/p/subscriptions/ticker-a-1", "projects/p/subscriptions/ticker-b-2"]
    assert orphaned(candidates, {"ticker-a-1", "janitor-x"}) == [candidates[1]]
    assert orphaned(candidates, {"ticker-a-1", "ticker-b-2"}) == []


def test_bind_follows_the_platform_port():
    assert default_bind({"PORT": "8081"}) == "0.0.0.0:8081"
    assert default_bind({}) == "127.0.0.1:8080"


def test_a_stream_whose_messages_arrive_late_is_behind_until_it_catches_up(clock):
    watch = StreamWatch(stale_after=8.0, clock=clock, max_lag=5.0)
    watch.opened()
    watch.message()
    watch.lagged(4.9)
    assert watch.problem() is None
    watch.lagged(6.2)
    assert watch.problem() == "ingest lags 6.2s behind publish"
    watch.lagged(0.05)
    assert watch.problem() is None

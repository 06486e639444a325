from __future__ import annotations

from ticker.core.ratelimit import RateDecision, TokenBucket


def test_burst_then_refused_then_refilled(clock):
    bucket = TokenBucket(rate_per_minute=60, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [RateDecision.ALLOW] * 3
    assert bucket.take() is RateDecision.LIMITED
    clock.advance(1.0)  # 60/min = one token per second
    assert bucket.take() is RateDecision.ALLOW
    assert bucket.take() is RateDecision.LIMITED


def test_sustained_rate_is_honoured_over_a_minute(clock):
    bucket = TokenBucket(rate_per_minute=100, burst=10, clock=clock, strikes=10**9)
    allowed = 0
    for _ in range(6000):  # 100 frames/s for 60 s
        clock.advance(0.01)
        allowed += bucket.take() is RateDecision.ALLOW
    assert 100 <= allowed <= 100 + 10 + 1


def test_tokens_never_exceed_the_burst(clock):
    bucket = TokenBucket(rate_per_minute=60, burst=2, clock=clock)
    clock.advance(3600)
    assert [bucket.take() for _ in range(3)] == [
        RateDecision.ALLOW,
        RateDecision.ALLOW,
        RateDecision.LIMITED,
    ]


def test_persistent_abuse_is_flagged_after_the_strikes(clock):
    bucket = TokenBucket(rate_per_minute=60, burst=1, clock=clock, strikes=3)
    assert bucket.take() is RateDecision.ALLOW
    assert [bucket.take() for _ in range(3)] == [
        RateDecision.LIMITED,
        RateDecision.LIMITED,
        RateDecision.ABUSIVE,
    ]


def test_an_allowed_frame_resets_the_strikes(clock):
    bucket = TokenBucket(rate_per_minute=60, burst=1, clock=clock, strikes=3)
    bucket.take()
    bucket.take()
    bucket.take()
    clock.advance(1.0)
    assert bucket.take() is RateDecision.ALLOW
    assert bucket.refused == 0
    assert bucket.take() is RateDecision.LIMITED


def test_a_clock_going_backwards_adds_no_tokens(clock):
    bucket = TokenBucket(rate_per_minute=60, burst=1, clock=clock)
    bucket.take()
    clock.advance(-100)
    assert bucket.take() is RateDecision.LIMITED

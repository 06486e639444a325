"""Per-connection message rate limiting: a token bucket plus a strike count for persistent abuse.

Rules: pure and clock-injected (no sleeps, no I/O). A frame costs one token; tokens refill at
`rate_per_minute / 60` per second up to `burst`. A frame without a token is refused (the caller
answers `rate_limited` and drops the frame); `strikes` refusals in a row without a refill in
between mean the client ignores the errors, and the caller closes it (1008).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum


class RateDecision(Enum):
    """What to do with one client frame."""

    ALLOW = "allow"
    LIMITED = "limited"  # refuse this frame with an error frame; the connection stays
    ABUSIVE = "abusive"  # the client keeps going: close the connection (1008)


class TokenBucket:
    """`burst` frames at once, then `rate_per_minute` sustained."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        clock: Callable[[], float],
        strikes: int = 50,
    ) -> None:
        self._rate = rate_per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._strikes = strikes
        self._tokens = float(burst)
        self._last = clock()
        self.refused = 0  # refusals since the last allowed frame

    def take(self) -> RateDecision:
        """Spend a token for one frame; say whether to handle, refuse or give up on the client."""
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.refused = 0
            return RateDecision.ALLOW
        self.refused += 1
        return RateDecision.ABUSIVE if self.refused >= self._strikes else RateDecision.LIMITED

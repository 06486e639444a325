"""Canaries and stream freshness: how an instance knows its own subscription really delivers.

Rules:
- A canary is a message on the price topic with the attribute `ticker_canary` = the id of the
  subscription of the instance that sent it. It is not a tick: consumers skip it before decoding
  (it is neither a tick nor malformed). Every instance publishes one every few seconds, so every
  subscription on the topic sees a message every few seconds even when the market is quiet.
- A stream is fresh while some message (tick or canary, anyone's) arrived within `stale_after`
  seconds; before the first message of a stream it is "waiting", never fresh. Readiness and the
  supervisor read this; nothing here does I/O or awaits.
- Ingest lag is measured from Pub/Sub's own `publish_time` of each handled message (the
  broker's clock, not the producer's `ts`, which any producer may set to anything): a stream
  whose messages are handled more than `max_lag` seconds after they were published is behind,
  and readiness says so (503) until it catches up. Liveness never looks at it.
- The janitor reads the same canaries: a `ticker-*` subscription named by no canary for a whole
  observation window belongs to no live instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import orjson

CANARY_ATTRIBUTE = "ticker_canary"


def canary_message(subscription_id: str, now_ms: int) -> tuple[bytes, dict[str, str]]:
    """The body and attributes of a canary sent on behalf of `subscription_id`."""
    body = orjson.dumps({"canary": subscription_id, "ts": now_ms})
    return body, {CANARY_ATTRIBUTE: subscription_id}


def canary_source(attributes: Mapping[str, str]) -> str | None:
    """The subscription id a canary speaks for, or None when the message is not a canary."""
    return attributes.get(CANARY_ATTRIBUTE)


class StreamWatch:
    """Freshness of this process's stream. Call from the event-loop thread only."""

    def __init__(
        self,
        stale_after: float,
        clock: Callable[[], float] = time.monotonic,
        max_lag: float = 5.0,
    ) -> None:
        self.stale_after = stale_after
        self.max_lag = max_lag
        self._clock = clock
        self.opened_at: float | None = None
        self.last_message_at: float | None = None
        self.first_message_at: float | None = None  # of the current stream
        self.lag = 0.0  # seconds between publish and hand-over, of the latest batch's oldest

    def lagged(self, seconds: float) -> None:
        """A batch was handled `seconds` after its oldest message was published."""
        self.lag = seconds

    def opened(self) -> None:
        """A (new) stream was opened: it must prove itself with a message again."""
        self.opened_at = self._clock()
        self.first_message_at = None

    def message(self) -> None:
        """Any message arrived on the stream."""
        now = self._clock()
        self.last_message_at = now
        if self.first_message_at is None:
            self.first_message_at = now

    def silent_for(self) -> float:
        """Seconds since the last message (or since the stream opened, if none came yet)."""
        since = self.last_message_at if self.first_message_at is not None else self.opened_at
        return 0.0 if since is None else self._clock() - since

    def problem(self) -> str | None:
        """None while fresh; otherwise why the stream cannot be trusted."""
        if self.opened_at is None:
            return "no stream open"
        if self.first_message_at is None:
            return f"waiting for the first message ({self.silent_for():.1f}s)"
        silent = self.silent_for()
        if silent > self.stale_after:
            return f"no message for {silent:.1f}s"
        if self.lag > self.max_lag:
            return f"ingest lags {self.lag:.1f}s behind publish"
        return None

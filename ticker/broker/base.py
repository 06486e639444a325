"""The seam between the service and whatever carries price events (Pub/Sub or memory).

Rule: a broker calls `on_message` on the event-loop thread only, in the order it received the
messages; it never raises into the caller for a bad message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

MessageHandler = Callable[[bytes, Mapping[str, str]], None]


class BrokerUnavailable(Exception):
    """The broker cannot be reached or used right now; the message says why."""


@dataclass(frozen=True, slots=True)
class BrokerHealth:
    """What a broker tells about its subscription now (the dashboard shows it).

    None: the broker has no such thing (the memory broker has no subscription to recreate).
    """

    healthy: bool
    problem: str | None = None
    subscription: str | None = None  # the full path of the subscription in use
    resubscribes: int | None = None  # subscriptions recreated since start
    callback_errors: int | None = None  # exceptions caught in the client's callback (nacked)


class Broker(Protocol):
    """One topic's publish side and this process's own subscription to it."""

    async def start(self, on_message: MessageHandler) -> None:
        """Create what is missing and start delivering to `on_message` (on the loop thread)."""

    async def publish(self, data: bytes, attributes: Mapping[str, str], ordering_key: str) -> None:
        """Publish one message; raise `BrokerUnavailable` when it cannot be sent."""

    async def close(self) -> None:
        """Stop delivering and release this process's subscription."""

    def healthy(self) -> bool:
        """Whether messages can flow now (drives the readiness check)."""

    def problem(self) -> str | None:
        """Why `healthy()` is False (for the readiness body and logs), or None."""

    def health(self) -> BrokerHealth:
        """`healthy()` and `problem()` with what the broker knows about its subscription."""

    def stats(self) -> dict[str, int | float | str | None]:
        """Counters and state for readiness bodies and metrics (flat, JSON-ready)."""

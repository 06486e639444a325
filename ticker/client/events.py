"""What a `ticker.client` stream yields besides ticks, its errors, and the reconnect backoff.

Rules: plain values, no I/O. `Backoff` is exponential with full jitter (a random delay between 0
and the current cap), so the clients of a restarted instance do not all come back in the same
second; the randomness is injected for tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ticker.core.ticks import Tick


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The server's reply to a subscribe (after every connect and reconnect)."""

    symbols: tuple[str, ...]
    recovered: bool  # every tick missed since the cursor was replayed
    max_rate: float | None  # the rate in force (the server may lower what was asked)


@dataclass(frozen=True, slots=True)
class Resync:
    """Ticks of `symbols` were lost for good; a fresh snapshot tick of each follows.

    What to do: drop derived state for those symbols (e.g. a chart's last segment) and take the
    next tick as a new starting point.
    """

    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The connection ended; the client reconnects after `delay` seconds and resumes."""

    reason: str
    delay: float
    attempt: int


Event = Tick | Subscribed | Resync | Reconnecting


class TickerClientError(Exception):
    """Base of what `ticker.client` raises."""


class ConnectFailed(TickerClientError):
    """The server could not be reached, or refused the handshake (`status` when it answered)."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"cannot connect to {url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class ServerError(TickerClientError):
    """The server answered one of our frames with `{"type": "error"}` (see the README's table)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"server error {code}: {message}")
        self.code = code
        self.message = message


class ConnectionRefused(TickerClientError):
    """The server closed with a code that says reconnecting would not help (1003, 1008, 1009)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"server closed the connection ({code}): {reason or 'no reason'}")
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Backoff:
    """Delays between reconnect attempts: full jitter under a cap that doubles per failure."""

    base: float = 0.5
    cap: float = 30.0
    rand: Callable[[float, float], float] = field(default=random.uniform)
    attempt: int = 0

    def next_delay(self, at_least: float = 0.0) -> float:
        """The delay before the next attempt (never below `at_least`, e.g. a Retry-After)."""
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return max(at_least, self.rand(0.0, ceiling))

    def reset(self) -> None:
        """The connection worked: the next failure starts from `base` again."""
        self.attempt = 0

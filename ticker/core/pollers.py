"""Long-poll clients between two polls: counted as connected for a short grace.

Rules:
- A long-poll client is a held request only while it waits; between an answer and its next poll
  it holds nothing, so counting sessions alone makes a steady poller flicker 1/0. After each
  answer the client is remembered under the key its next poll will carry (its peer address and
  the cursor it was given) for `grace` seconds; that next poll forgets it again (it is then a held
  session, counted as such). A client that stops polling disappears after `grace`.
- Two clients behind one address holding the very same cursor count once (cursors are
  deterministic); a client that moves to another instance counts twice for at most `grace`.
- Bounded: at most `limit` remembered clients, the oldest dropped first. Nothing here awaits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

DEFAULT_LIMIT = 100_000


class _Waiting(NamedTuple):
    expires: float
    symbols: tuple[str, ...]


class RecentPollers:
    """Long-poll clients between polls, keyed by (address, next cursor), with a clock."""

    def __init__(
        self, grace: float, clock: Callable[[], float], limit: int = DEFAULT_LIMIT
    ) -> None:
        self.grace = grace
        self._clock = clock
        self._limit = limit
        self._waiting: dict[tuple[str, str], _Waiting] = {}

    def answered(self, address: str, cursor: str, symbols: tuple[str, ...]) -> None:
        """A poll was answered with `cursor`: count its client until the next poll or `grace`."""
        key = (address, cursor)
        self._waiting.pop(key, None)  # re-inserted last: the dict stays in expiry order
        self._waiting[key] = _Waiting(self._clock() + self.grace, symbols)
        while len(self._waiting) > self._limit:
            del self._waiting[next(iter(self._waiting))]

    def polling(self, address: str, cursor: str | None) -> None:
        """A poll carrying `cursor` arrived: its client is a held session now, not remembered."""
        if cursor is not None:
            self._waiting.pop((address, cursor), None)

    def waiting(self) -> list[tuple[str, ...]]:
        """The symbols of each client between polls (expired ones are forgotten first)."""
        now = self._clock()
        while self._waiting:
            key, entry = next(iter(self._waiting.items()))
            if entry.expires > now:
                break
            del self._waiting[key]
        return [entry.symbols for entry in self._waiting.values()]

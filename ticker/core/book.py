"""The latest tick per symbol, and the gate that keeps each symbol's stream strictly increasing.

Rule: Pub/Sub is at-least-once and may reorder; correctness comes from `(symbol, seq)` here,
never from the broker. A tick is accepted only if its seq is above the last accepted one.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from ticker.core.ticks import Tick


class Verdict(Enum):
    """What `LatestBook.accept` decided about one tick."""

    NEW = "new"
    GAP = "gap"  # accepted, but seq skipped ahead: some ticks were never seen here
    DUPLICATE = "duplicate"
    STALE = "stale"


class LatestBook:
    """Holds the latest accepted tick of every symbol seen."""

    def __init__(self) -> None:
        self._latest: dict[str, Tick] = {}

    def accept(self, tick: Tick) -> Verdict:
        """Record `tick` if it is newer than what we hold; say why when it is not."""
        last = self._latest.get(tick.symbol)
        if last is not None:
            if tick.seq == last.seq:
                return Verdict.DUPLICATE
            if tick.seq < last.seq:
                return Verdict.STALE
        self._latest[tick.symbol] = tick
        if last is not None and tick.seq != last.seq + 1:
            return Verdict.GAP
        return Verdict.NEW

    def latest(self, symbol: str) -> Tick | None:
        """The latest accepted tick of `symbol`, if any."""
        return self._latest.get(symbol)

    def snapshot(self, symbols: Iterable[str]) -> list[Tick]:
        """The latest tick of each of `symbols` that has one, in the order given."""
        return [t for t in (self._latest.get(s) for s in symbols) if t is not None]

    def symbols(self) -> list[str]:
        """Every symbol seen so far, sorted."""
        return sorted(self._latest)

"""The latest accepted tick of every symbol: what a new subscriber gets as its snapshot.

Rule: the book does not judge order; `ticker.core.reorder.Sequencer` decides which ticks are
accepted (from `(symbol, seq)`, never from the broker) and the hub records those here.
"""

from __future__ import annotations

from collections.abc import Iterable

from ticker.core.ticks import Tick


class LatestBook:
    """Holds the latest accepted tick of every tracked symbol."""

    def __init__(self) -> None:
        self._latest: dict[str, Tick] = {}

    def put(self, tick: Tick) -> None:
        """Record an accepted tick as its symbol's latest."""
        self._latest[tick.symbol] = tick

    def forget(self, symbol: str) -> None:
        """Drop `symbol` (evicted by the hub's symbol cap)."""
        self._latest.pop(symbol, None)

    def latest(self, symbol: str) -> Tick | None:
        """The latest accepted tick of `symbol`, if any."""
        return self._latest.get(symbol)

    def snapshot(self, symbols: Iterable[str]) -> list[Tick]:
        """The latest tick of each of `symbols` that has one, in the order given."""
        return [t for t in (self._latest.get(s) for s in symbols) if t is not None]

    def symbols(self) -> list[str]:
        """Every tracked symbol, sorted."""
        return sorted(self._latest)

    def __len__(self) -> int:
        return len(self._latest)

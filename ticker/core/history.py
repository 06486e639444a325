"""Recent ticks per symbol, so any instance can replay what a reconnecting client missed.

Rule: bounded by count per symbol and by age; a resume is answered only when the ring provably
holds every tick after the client's seq (contiguous seqs), otherwise the caller sends a snapshot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ticker.core.ticks import Tick

Entry = tuple[Tick, str]  # the tick and its encoded JSON, shared with every client


class RecentTicks:
    """A ring of the last `size` ticks (and at most `max_age` seconds) of every symbol."""

    def __init__(self, size: int, max_age: float, clock: Callable[[], float]) -> None:
        self._size = size
        self._max_age = max_age
        self._clock = clock
        self._rings: dict[str, deque[tuple[float, Tick, str]]] = {}

    def append(self, tick: Tick, encoded: str) -> None:
        """Add an accepted tick; a seq jump restarts the ring (older ticks cannot be replayed)."""
        ring = self._rings.get(tick.symbol)
        if ring is None:
            ring = self._rings[tick.symbol] = deque(maxlen=self._size)
        elif ring and ring[-1][1].seq + 1 != tick.seq:
            ring.clear()
        ring.append((self._clock(), tick, encoded))

    def since(self, symbol: str, seq: int) -> list[Entry] | None:
        """Every held tick of `symbol` after `seq`, or None when some of them are no longer held."""
        ring = self._rings.get(symbol)
        if not ring:
            return None
        self._expire(ring)  # never empties a ring: the newest tick stays
        if seq >= ring[-1][1].seq:
            # the client is level with us, or ahead (another instance saw newer ticks first):
            # nothing to replay; the session's seq gate drops what it already has
            return []
        first = ring[0][1].seq
        if seq + 1 < first:
            return None
        return [(t, e) for _, t, e in list(ring)[seq + 1 - first :]]

    def _expire(self, ring: deque[tuple[float, Tick, str]]) -> None:
        horizon = self._clock() - self._max_age
        # keep the newest tick even when old: it is the symbol's snapshot and the resume anchor
        while len(ring) > 1 and ring[0][0] < horizon:
            ring.popleft()

    def knows(self, symbol: str) -> bool:
        """Whether this instance has seen any tick of `symbol` (since it started)."""
        return bool(self._rings.get(symbol))

    def __len__(self) -> int:
        return sum(len(r) for r in self._rings.values())

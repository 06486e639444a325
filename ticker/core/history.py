"""Recent ticks per symbol, so any instance can replay what a reconnecting client missed.

Rule: bounded by count per symbol, by age, and by a total over all symbols (`max_total`: at
20,000 ticks/s a 300 s window would be millions of ticks); past the total the globally oldest
entries go first (one order deque, O(1) per tick). A resume is answered only when the ring
provably holds every tick after the client's seq (contiguous seqs), otherwise the caller sends a
snapshot. `forget` drops a symbol (evicted by the hub's symbol cap).

Entries hold only atoms (arrival time, seq, ts, the encoded JSON), not the `Tick`, in a msgspec
`Struct` that the GC never tracks (`_Held`): a history of a million ticks adds nothing to a
collection's scan (with `Tick`s in it, each full collection walked every one of them and paused
the loop), and an entry costs ~150 bytes less. Not a tuple: a tuple is tracked from its creation
until the next young collection looks at it, so at 20,000 ticks/s the history's tuples were most
of what triggered young collections (one every ~0.7 s, 3-29 ms each at 1,000 clients).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import msgspec

from ticker.core.ticks import Tick

Entry = tuple[int, int, str]  # seq, ts and the encoded JSON, shared with every client


class _Held(msgspec.Struct, gc=False):
    """One held tick: atoms only, so the GC need not track it (see the module's rule)."""

    at: float  # when it arrived (the clock's time): the age bound
    seq: int
    ts: int
    encoded: str


class RecentTicks:
    """A ring of the last `size` ticks (and at most `max_age` seconds) of every symbol."""

    def __init__(
        self, size: int, max_age: float, clock: Callable[[], float], max_total: int = 0
    ) -> None:
        self._size = size
        self._max_age = max_age
        self._clock = clock
        self._max_total = max_total  # 0: no total bound
        self._rings: dict[str, deque[_Held]] = {}
        self._order: deque[str] = deque()  # the symbol of every append, oldest first
        self._total = 0  # entries appended and not yet popped through `_order`

    def append(self, tick: Tick, encoded: str) -> None:
        """Add an accepted tick; a seq jump restarts the ring (older ticks cannot be replayed)."""
        ring = self._rings.get(tick.symbol)
        if ring is None:
            ring = self._rings[tick.symbol] = deque(maxlen=self._size)
        elif ring and ring[-1].seq + 1 != tick.seq:
            ring.clear()
        ring.append(_Held(self._clock(), tick.seq, tick.ts, encoded))
        if self._max_total:
            self._order.append(tick.symbol)
            self._total += 1
            if self._total > self._max_total:
                self._trim()

    def _trim(self) -> None:
        # The oldest append's ring loses its oldest entry (it may already have lost it to its own
        # bounds: then a slightly newer one goes; contiguity holds, the newest always stays).
        symbol = self._order.popleft()
        self._total -= 1
        ring = self._rings.get(symbol)
        if ring is not None and len(ring) > 1:
            ring.popleft()

    def forget(self, symbol: str) -> None:
        """Drop every tick of `symbol` (its order entries age out through `_trim`)."""
        self._rings.pop(symbol, None)

    def since(self, symbol: str, seq: int) -> list[Entry] | None:
        """Every held tick of `symbol` after `seq`, or None when some of them are no longer held."""
        ring = self._rings.get(symbol)
        if not ring:
            return None
        self._expire(ring)  # never empties a ring: the newest tick stays
        if seq >= ring[-1].seq:
            # the client is level with us, or ahead (another instance saw newer ticks first):
            # nothing to replay; the session's seq gate drops what it already has
            return []
        first = ring[0].seq
        if seq + 1 < first:
            return None
        return [(h.seq, h.ts, h.encoded) for h in list(ring)[seq + 1 - first :]]

    def _expire(self, ring: deque[_Held]) -> None:
        horizon = self._clock() - self._max_age
        # keep the newest tick even when old: it is the symbol's snapshot and the resume anchor
        while len(ring) > 1 and ring[0].at < horizon:
            ring.popleft()

    def knows(self, symbol: str) -> bool:
        """Whether this instance has seen any tick of `symbol` (since it started)."""
        return bool(self._rings.get(symbol))

    def __len__(self) -> int:
        return sum(len(r) for r in self._rings.values())

"""Order per symbol from `seq`: a small reorder window, gaps, and recovery from a poisoned seq.

Rules (Pub/Sub may redeliver and reorder; order never comes from the broker):
- A tick whose seq is the next one (last accepted + 1) is released at once, followed by every
  held tick that it makes contiguous. The first tick ever seen of a symbol is accepted as is.
- A tick ahead of a missing seq is held for at most `hold` seconds (`TICKER_REORDER_MS`). A hole
  that fills in time is released in order, without a gap. One that does not is a gap: the
  lowest held tick is released flagged `gap` (the caller sends `resync`), then the contiguous
  run after it. Holding is bounded per symbol (`max_held`): beyond it the hole is a gap at once.
- A seq at or below the last accepted one is a duplicate (equal, or already held) or late
  (lower): dropped and counted.
- Poison recovery: a foreign tick with a huge seq (2**63-1) would make every later legitimate
  tick "late" forever. If the accepted lineage then goes silent (nothing accepted for
  `rebase_after` s) while a contiguous lower lineage keeps arriving (seq +1 each, over at least
  `rebase_after` s and `rebase_min` ticks), the symbol re-bases onto it with a gap. A producer
  that restarts jumps forward, which is an ordinary hole: followed after at most `hold` s.
  What a hostile producer can still do: keep publishing a symbol above the real producer
  (any producer may publish; the contract has no producer identity), which it could do anyway
  with plausible seqs. What it can no longer do: freeze a symbol with one message.
- Cheap: no timer per symbol. Deadlines sit in one heap; `due()` pops only what is due and is
  O(1) when nothing is (call it from one periodic sweep, between batches of messages: in the
  middle of a backlog the tick that fills a hole may be in the same batch).
Pure: the clock is injected; nothing here does I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

from ticker.core.ticks import Tick

Release = tuple[Tick, bool]  # a tick to accept, and whether a gap (resync) comes before it


@dataclass(slots=True)
class OrderCounters:
    """What the window did, for the dashboard and /metrics (monotonic)."""

    reordered: int = 0  # ticks that arrived ahead of a hole and were released in order
    late: int = 0  # below the last accepted seq: dropped
    duplicates: int = 0
    gaps: int = 0  # holes given up on (each one a resync)
    rebased: int = 0  # poison recoveries: re-based onto a lower live lineage


@dataclass(slots=True)
class _Symbol:
    last: int  # last accepted seq
    accepted_at: float
    held: dict[int, tuple[Tick, float]] | None = None  # seq -> (tick, arrival)
    deadline: float = 0.0
    run_seq: int = -1  # the latest late tick, and where its contiguous run began
    run_start: float = 0.0
    run_len: int = 0


class Sequencer:
    """Decides, per symbol, which ticks are accepted and in what order."""

    def __init__(
        self,
        hold: float,
        clock: Callable[[], float],
        *,
        max_held: int = 1024,
        rebase_after: float = 1.5,
        rebase_min: int = 3,
    ) -> None:
        self.hold = hold
        self._clock = clock
        self._max_held = max_held
        self._rebase_after = rebase_after
        self._rebase_min = rebase_min
        self._symbols: dict[str, _Symbol] = {}
        self._heap: list[tuple[float, str]] = []
        self.counters = OrderCounters()

    def in_order(self, tick: Tick) -> bool:
        """Accept `tick` if it is its symbol's next seq with nothing held (the common case).

        True: accepted, nothing else released (no list built for it). False: nothing changed;
        `push` decides (first tick of a symbol, a hole, a duplicate, a late tick...).
        """
        state = self._symbols.get(tick.symbol)
        if state is None or state.held is not None or tick.seq != state.last + 1:
            return False
        state.last, state.accepted_at = tick.seq, self._clock()
        return True

    def push(self, tick: Tick) -> list[Release]:
        """Take one tick; return what it releases, in order (often just itself)."""
        now = self._clock()
        state = self._symbols.get(tick.symbol)
        if state is None:
            self._symbols[tick.symbol] = _Symbol(tick.seq, now)
            return [(tick, False)]
        seq = tick.seq
        if seq == state.last + 1:
            state.last, state.accepted_at = seq, now
            if state.held is None:
                return [(tick, False)]
            out = [(tick, False)]
            self._release_run(tick.symbol, state, out, now)
            self.counters.reordered += len(out) - 1
            return out
        if seq <= state.last:
            return self._behind(tick, state, now)
        return self._ahead(tick, state, now)

    def _ahead(self, tick: Tick, state: _Symbol, now: float) -> list[Release]:
        held = state.held
        if held is None:
            if self.hold <= 0:
                return self._jump(tick, state, now)
            held = state.held = {}
            state.deadline = now + self.hold
            heapq.heappush(self._heap, (state.deadline, tick.symbol))
        elif tick.seq in held:
            self.counters.duplicates += 1
            return []
        held[tick.seq] = (tick, now)
        if len(held) > self._max_held:
            out: list[Release] = []
            self._give_up(tick.symbol, state, out, now)
            return out
        return []

    def _jump(self, tick: Tick, state: _Symbol, now: float) -> list[Release]:
        self.counters.gaps += 1
        state.last, state.accepted_at = tick.seq, now
        return [(tick, True)]

    def _behind(self, tick: Tick, state: _Symbol, now: float) -> list[Release]:
        seq = tick.seq
        if seq == state.last:
            self.counters.duplicates += 1
            return []
        self.counters.late += 1
        if seq == state.run_seq + 1:
            state.run_seq, state.run_len = seq, state.run_len + 1
        else:
            state.run_seq, state.run_start, state.run_len = seq, now, 1
        if (
            state.run_len >= self._rebase_min
            and now - state.run_start >= self._rebase_after
            and now - state.accepted_at >= self._rebase_after
        ):
            self.counters.rebased += 1
            state.held = None
            state.run_seq, state.run_len = -1, 0
            return self._jump(tick, state, now)
        return []

    def _release_run(self, symbol: str, state: _Symbol, out: list[Release], now: float) -> None:
        """Append every held tick contiguous with `state.last`; drop the hold when empty."""
        held = state.held
        assert held is not None
        while state.last + 1 in held:
            tick, _ = held.pop(state.last + 1)
            state.last = tick.seq
            out.append((tick, False))
        if held:
            state.deadline = min(arrived for _, arrived in held.values()) + self.hold
            heapq.heappush(self._heap, (state.deadline, symbol))
        else:
            state.held = None
        state.accepted_at = now

    def _give_up(self, symbol: str, state: _Symbol, out: list[Release], now: float) -> None:
        """The hole before the lowest held tick will not fill: release from there, as a gap."""
        held = state.held
        assert held is not None
        lowest = min(held)
        tick, _ = held.pop(lowest)
        self.counters.gaps += 1
        state.last = lowest
        out.append((tick, True))
        self._release_run(symbol, state, out, now)

    def due(self) -> list[Release]:
        """Release the holes whose time is up (gaps); O(1) when nothing is due."""
        heap = self._heap
        if not heap or heap[0][0] > self._clock():
            return []
        now = self._clock()
        out: list[Release] = []
        while heap and heap[0][0] <= now:
            deadline, symbol = heapq.heappop(heap)
            state = self._symbols.get(symbol)
            # stale heap entries: the hold filled, moved its deadline, or the symbol was dropped
            if state is not None and state.held is not None and state.deadline == deadline:
                self._give_up(symbol, state, out, now)
        return out

    def held(self) -> int:
        """Ticks waiting for a hole to fill, over all symbols."""
        return sum(len(s.held) for s in self._symbols.values() if s.held is not None)

    def forget(self, symbol: str) -> None:
        """Drop everything known of `symbol` (evicted): its next tick starts afresh."""
        self._symbols.pop(symbol, None)

    def __len__(self) -> int:
        return len(self._symbols)

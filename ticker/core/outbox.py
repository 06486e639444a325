"""A client's pending ticks: every tick in order while it keeps up, latest-per-symbol when it lags.

Rules:
- Memory is bounded by design. Past `limit` pending ticks the outbox conflates to the latest
  tick of each symbol, so it never holds more than max(limit, subscribed symbols) entries.
- Nothing here awaits; the writer side takes everything pending in one call.
- A symbol with a `max_rate` (`set_rate`) is paced: at most one of its ticks is sent per
  1/max_rate seconds. A tick that comes too early is *held* (one slot per symbol, a newer one
  replaces it: conflation) and released by the first `take` at or after its due time, so the
  latest price always goes out within 1/max_rate s and never a stale one is left behind. The
  writer learns the next due time from `next_due()`: one deadline per client, no timer per
  symbol. The interval runs from when a tick is taken for sending, not from when it arrived.
- `last_seq` is the seq gate (the newest tick offered); `sent_seq()` is the resume position of
  what was actually handed to the writer (a held tick is not in it yet).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

Entry = tuple[str, str, int]  # (symbol, encoded, ts)


@dataclass(slots=True)
class _Pace:
    interval: float
    next_at: float = -math.inf  # inf while one of its ticks waits in `_pending` to be taken
    held: Entry | None = None
    released_seq: int = -1  # seq of the last tick handed on (the resume position while held)


@dataclass(slots=True)
class Outbox:
    """A client's pending encoded ticks and its per-symbol seq gate (no duplicate, no regress)."""

    limit: int
    clock: Callable[[], float] = field(default=lambda: 0.0)  # read only for paced symbols
    _pending: list[Entry] = field(default_factory=list)
    last_seq: dict[str, int] = field(default_factory=dict)
    conflated: int = 0  # ticks replaced by a newer one of their symbol before being sent
    paced: dict[str, _Pace] = field(default_factory=dict)
    _in_flight: list[str] = field(default_factory=list)  # paced symbols with a tick in _pending

    def offer(self, symbol: str, seq: int, encoded: str, ts: int) -> bool:
        """Queue a tick unless the client already has it (or newer); True: wake the writer.

        Unpaced, that is when the outbox went from empty to non-empty, so the caller wakes the
        writer only once per batch. A paced symbol also asks for a wake when it starts holding
        a tick, so a waiting writer can set its deadline.
        """
        if seq <= self.last_seq.get(symbol, -1):
            return False
        self.last_seq[symbol] = seq
        if self.paced:
            pace = self.paced.get(symbol)
            if pace is not None:
                return self._offer_paced(pace, symbol, seq, (symbol, encoded, ts))
        was_empty = not self._pending
        self._pending.append((symbol, encoded, ts))
        if len(self._pending) > self.limit:
            self._conflate()
        return was_empty

    def _offer_paced(self, pace: _Pace, symbol: str, seq: int, entry: Entry) -> bool:
        if pace.held is None and self.clock() >= pace.next_at:
            pace.next_at = math.inf
            pace.released_seq = seq
            self._in_flight.append(symbol)
            was_empty = not self._pending
            self._pending.append(entry)
            return was_empty
        if pace.held is not None:
            self.conflated += 1
            pace.held = entry
            return False
        pace.held = entry
        return pace.next_at != math.inf  # in flight: the writer is awake and will take it first

    def conflate_now(self) -> None:
        """Keep only the latest pending tick of each symbol (a max_rate long poll's answer)."""
        self._conflate()

    def _conflate(self) -> None:
        latest: dict[str, Entry] = {}
        for entry in self._pending:
            latest.pop(entry[0], None)  # re-insert so the order follows the newest tick
            latest[entry[0]] = entry
        self.conflated += len(self._pending) - len(latest)
        self._pending = list(latest.values())

    def take(self) -> tuple[list[str], int]:
        """Remove and return every tick due now, oldest first, and the oldest `ts`.

        The oldest `ts` gives the batch's worst publish-to-send latency without decoding anything.
        """
        pending, self._pending = self._pending, []
        if self.paced:
            self._release(pending)
        if not pending:
            return [], 0
        _, encoded, stamps = zip(*pending, strict=True)  # one C call (a listcomp + min: 2x)
        return list(encoded), min(stamps)

    def _release(self, pending: list[Entry]) -> None:
        now = self.clock()
        for symbol in self._in_flight:
            pace = self.paced.get(symbol)
            if pace is not None:
                pace.next_at = now + pace.interval
        self._in_flight.clear()
        for symbol, pace in self.paced.items():
            held = pace.held
            if held is not None and pace.next_at <= now:
                pending.append(held)
                pace.held = None
                pace.released_seq = self.last_seq[symbol]
                pace.next_at = now + pace.interval

    def next_due(self) -> float | None:
        """When the earliest held tick may go out (clock time), or None when none is held."""
        due = [p.next_at for p in self.paced.values() if p.held is not None]
        earliest = min(due, default=math.inf)
        return None if earliest == math.inf else earliest

    def due(self) -> bool:
        """Whether a held tick may go out now (the writer should `take`)."""
        earliest = self.next_due()
        return earliest is not None and earliest <= self.clock()

    def set_rate(self, symbol: str, rate: float | None) -> None:
        """Pace `symbol` at `rate` ticks/s, or stop pacing it (None; a held tick is released)."""
        pace = self.paced.get(symbol)
        if rate is None:
            if pace is not None:
                del self.paced[symbol]
                if pace.held is not None:
                    self._pending.append(pace.held)
            return
        if pace is None:
            self.paced[symbol] = _Pace(1.0 / rate)
        else:
            pace.interval = 1.0 / rate

    def rate(self, symbol: str) -> float | None:
        """The max rate in force for `symbol` (None: every tick)."""
        pace = self.paced.get(symbol)
        return None if pace is None else 1.0 / pace.interval

    def sent_seq(self) -> dict[str, int]:
        """Per symbol, the newest seq handed to the writer: `last_seq` minus held ticks."""
        if not self.paced:
            return self.last_seq
        out = dict(self.last_seq)
        for symbol, pace in self.paced.items():
            if pace.held is not None:  # held only after a release: released_seq is set
                out[symbol] = pace.released_seq
        return out

    def restart(self, symbol: str) -> None:
        """Start `symbol`'s seq gate afresh, keeping its pacing: the hub re-based it onto a lower
        lineage (a poisoned seq), so what is pending or held of the old one is dropped."""
        self.last_seq.pop(symbol, None)
        self._pending = [e for e in self._pending if e[0] != symbol]
        pace = self.paced.get(symbol)
        if pace is not None:
            pace.held = None
            pace.released_seq = -1
            if symbol in self._in_flight:  # its pending tick is gone: nothing to wait for
                self._in_flight.remove(symbol)
                pace.next_at = -math.inf

    def forget(self, symbol: str) -> None:
        """Drop a symbol after unsubscribe: its pending ticks, its seq gate and its pacing."""
        self.last_seq.pop(symbol, None)
        self.paced.pop(symbol, None)
        self._pending = [e for e in self._pending if e[0] != symbol]

    def __len__(self) -> int:
        return len(self._pending)

"""A client's pending ticks: every tick in order while it keeps up, latest-per-symbol when it lags.

Rule: memory is bounded by design. Past `limit` pending ticks the outbox conflates to the latest
tick of each symbol, so it never holds more than max(limit, subscribed symbols) entries.
Nothing here awaits; the writer side takes everything pending in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Outbox:
    """A client's pending encoded ticks and its per-symbol seq gate (no duplicate, no regress)."""

    limit: int
    _pending: list[tuple[str, str, int]] = field(default_factory=list)  # (symbol, encoded, ts)
    last_seq: dict[str, int] = field(default_factory=dict)
    conflated: int = 0  # ticks replaced by a newer one of their symbol before being sent

    def offer(self, symbol: str, seq: int, encoded: str, ts: int) -> bool:
        """Queue a tick unless the client already has it (or newer); True if queued.

        Returns whether the outbox went from empty to non-empty, so the caller wakes the writer
        only once per batch.
        """
        if seq <= self.last_seq.get(symbol, -1):
            return False
        self.last_seq[symbol] = seq
        was_empty = not self._pending
        self._pending.append((symbol, encoded, ts))
        if len(self._pending) > self.limit:
            self._conflate()
        return was_empty

    def _conflate(self) -> None:
        latest: dict[str, tuple[str, str, int]] = {}
        for entry in self._pending:
            latest.pop(entry[0], None)  # re-insert so the order follows the newest tick
            latest[entry[0]] = entry
        self.conflated += len(self._pending) - len(latest)
        self._pending = list(latest.values())

    def take(self) -> tuple[list[str], int]:
        """Remove and return every pending encoded tick, oldest first, and the oldest `ts`.

        The oldest `ts` gives the batch's worst publish-to-send latency without decoding anything.
        """
        pending, self._pending = self._pending, []
        return [e[1] for e in pending], min((e[2] for e in pending), default=0)

    def forget(self, symbol: str) -> None:
        """Drop a symbol after unsubscribe: its pending ticks and its seq gate."""
        self.last_seq.pop(symbol, None)
        self._pending = [e for e in self._pending if e[0] != symbol]

    def __len__(self) -> int:
        return len(self._pending)

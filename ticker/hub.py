"""Fan-out: accept each tick once, encode it once, offer it to every subscribed session.

Rule: nothing here awaits. `ingest` runs on the event-loop thread (the broker hands messages
over with `call_soon_threadsafe`), so subscribe/snapshot and ingest never interleave: a client gets
its snapshot or replay and then every later tick, with no gap and no duplicate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ticker.core.book import LatestBook, Verdict
from ticker.core.codec import encode_tick, subscribed_frame, unsubscribed_frame
from ticker.core.history import RecentTicks
from ticker.core.ticks import Tick
from ticker.session import Session, Transport


@dataclass(slots=True)
class HubCounters:
    """Monotonic counters the dashboard and /metrics read."""

    ticks_in: int = 0
    ticks_accepted: int = 0
    duplicates: int = 0
    stale: int = 0
    gaps: int = 0
    malformed: int = 0
    deliveries: int = 0  # tick offers that reached an outbox
    errors_by_code: Counter[str] = field(default_factory=Counter)
    # Admission (transports/guard.py): streams opened by (transport, client kind: browser or
    # native) and refused by (transport, reason).
    opened: Counter[tuple[str, str]] = field(default_factory=Counter)
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    # What sessions that have gone had sent, per transport (live sessions keep their own counts).
    retired_frames: Counter[str] = field(default_factory=Counter)
    retired_ticks: Counter[str] = field(default_factory=Counter)
    retired_conflated: Counter[str] = field(default_factory=Counter)

    def retire(self, session: Session) -> None:
        """Keep a leaving session's send totals so rates and /metrics never go backwards."""
        self.retired_frames[session.transport] += session.frames_sent
        self.retired_ticks[session.transport] += session.ticks_sent
        self.retired_conflated[session.transport] += session.outbox.conflated


class Hub:
    """The instance's local sessions and the symbol -> sessions index."""

    def __init__(self, history: RecentTicks) -> None:
        self.book = LatestBook()
        self.history = history
        self.counters = HubCounters()
        self._latest_encoded: dict[str, str] = {}
        self._subscribers: dict[str, set[Session]] = {}
        self._sessions: set[Session] = set()

    # --- ingest -------------------------------------------------------------------------------

    def ingest(self, tick: Tick) -> Verdict:
        """Take one tick from the broker and offer it to its subscribers (encoded once)."""
        self.counters.ticks_in += 1
        verdict = self.book.accept(tick)
        if verdict is Verdict.DUPLICATE:
            self.counters.duplicates += 1
            return verdict
        if verdict is Verdict.STALE:
            self.counters.stale += 1
            return verdict
        if verdict is Verdict.GAP:
            self.counters.gaps += 1
        self.counters.ticks_accepted += 1
        encoded = encode_tick(tick)
        self._latest_encoded[tick.symbol] = encoded
        self.history.append(tick, encoded)
        sessions = self._subscribers.get(tick.symbol)
        if sessions:
            gap = [tick.symbol] if verdict is Verdict.GAP else None
            for session in sessions:
                if gap:
                    session.resync(gap)
                session.offer(tick.symbol, tick.seq, encoded, tick.ts)
            self.counters.deliveries += len(sessions)
        return verdict

    # --- sessions -----------------------------------------------------------------------------

    def attach(self, session: Session) -> None:
        """Count a newly connected client."""
        self._sessions.add(session)

    def detach(self, session: Session) -> None:
        """Forget a client entirely; safe to call twice."""
        if session in self._sessions:
            self.counters.retire(session)
        self._sessions.discard(session)
        for symbol in session.symbols:
            subs = self._subscribers.get(symbol)
            if subs is not None:
                subs.discard(session)
                if not subs:
                    del self._subscribers[symbol]
        session.symbols.clear()
        session.closed = True

    def subscribe(
        self,
        session: Session,
        symbols: Iterable[str],
        since: Mapping[str, int],
        max_rate: float | None = None,
    ) -> bool:
        """Subscribe and queue the `subscribed` reply, then each new symbol's replay or snapshot.

        Returns `recovered`: a `since` was given and every missed tick is still in history.
        `max_rate` (already clamped to the ceiling) paces every symbol of this subscribe, also
        ones already followed; None lifts a previous rate. A paced replay is its last tick only:
        the client skips seqs legitimately (no resync) and gets the latest price at once.
        """
        symbols = list(symbols)
        for symbol in symbols:
            session.outbox.set_rate(symbol, max_rate)
        new = [s for s in symbols if s not in session.symbols]
        unknown = [s for s in new if s in since and not self.history.knows(s)]
        replays = {
            s: self.history.since(s, since[s]) for s in new if s in since and s not in unknown
        }
        recovered = bool(replays or unknown) and all(r is not None for r in replays.values())
        for symbol in new:
            self._subscribers.setdefault(symbol, set()).add(session)
            session.symbols.add(symbol)
        session.push_control(subscribed_frame(symbols, recovered, max_rate))
        lost = [s for s, replay in replays.items() if replay is None]
        if lost:
            session.resync(lost)
        for symbol in new:
            replay = replays.get(symbol)
            if symbol in unknown:
                session.verify_resume(symbol, since[symbol])
            elif replay is not None:
                session.outbox.last_seq[symbol] = since[symbol]
                if max_rate is not None:
                    replay = replay[-1:]
                for tick, encoded in replay:
                    session.offer(symbol, tick.seq, encoded, tick.ts)
            else:
                self._send_snapshot(session, symbol)
        return recovered

    def _send_snapshot(self, session: Session, symbol: str) -> None:
        latest = self.book.latest(symbol)
        if latest is not None:
            session.offer(symbol, latest.seq, self._latest_encoded[symbol], latest.ts)

    def unsubscribe(self, session: Session, symbols: Iterable[str]) -> None:
        """Stop sending `symbols` to the session and drop what was pending for them."""
        gone = [s for s in symbols if s in session.symbols]
        for symbol in gone:
            session.symbols.discard(symbol)
            session.outbox.forget(symbol)
            subs = self._subscribers.get(symbol)
            if subs is not None:
                subs.discard(session)
                if not subs:
                    del self._subscribers[symbol]
        session.push_control(unsubscribed_frame(symbols))

    # --- read-only views ------------------------------------------------------------------------

    def sessions(self) -> list[Session]:
        """A snapshot of the connected sessions (safe to iterate while they change)."""
        return list(self._sessions)

    def connections_by_transport(self) -> dict[Transport, int]:
        """Connected clients per transport, every transport present."""
        counts: dict[Transport, int] = {"websocket": 0, "sse": 0, "longpoll": 0}
        for session in self._sessions:
            counts[session.transport] += 1
        return counts

    def subscribers_by_symbol(self) -> dict[str, int]:
        """How many local sessions follow each symbol."""
        return {symbol: len(subs) for symbol, subs in sorted(self._subscribers.items())}

"""Fan-out: accept each tick once, encode it once, offer it to every subscribed session.

Rules:
- Nothing here awaits. `ingest` runs on the event-loop thread (the broker hands messages over
  with `call_soon_threadsafe`), so subscribe/snapshot and ingest never interleave: a client gets
  its snapshot or replay and then every later tick, with no gap and no duplicate.
- Order per symbol comes from `seq` through the `Sequencer` (reorder window, gaps, poison
  recovery); `sweep()` releases holes whose time is up and must be called regularly (the runtime
  does it from a periodic timer, between the broker's batches).
- Memory is bounded by `max_symbols` tracked symbols: a new symbol beyond it evicts the least
  recently updated symbol nobody here subscribes to (book, encoded cache, history, sequencer
  state). Subscribed symbols are never evicted; if every candidate looked at is subscribed the
  new symbol is tracked anyway (subscriptions are themselves capped per client).
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ticker.core.book import LatestBook
from ticker.core.codec import encode_tick, subscribed_frame, unsubscribed_frame
from ticker.core.history import RecentTicks
from ticker.core.reorder import OrderCounters, Release, Sequencer
from ticker.core.ticks import Tick
from ticker.stream.session import TRANSPORTS, Session, Transport

EVICTION_SCAN = 64  # subscribed symbols skipped (and moved to the recent end) per eviction


@dataclass(slots=True)
class HubCounters:
    """Monotonic counters the dashboard and /metrics read."""

    order: OrderCounters = field(default_factory=OrderCounters)
    messages_in: int = 0  # broker messages (one tick or a packed message)
    packed_in: int = 0  # of which packed
    ticks_in: int = 0
    ticks_accepted: int = 0
    malformed: int = 0  # messages unusable as a whole (not JSON, neither a tick nor a pack)
    malformed_ticks: int = 0  # single ticks refused, alone or inside a packed message
    evicted: int = 0  # symbols dropped by the symbol cap
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
    retired_direct: Counter[str] = field(default_factory=Counter)

    @property
    def duplicates(self) -> int:
        """Ticks dropped as duplicates (same seq as accepted or held)."""
        return self.order.duplicates

    @property
    def stale(self) -> int:
        """Ticks dropped as late: below the last accepted seq."""
        return self.order.late

    @property
    def gaps(self) -> int:
        """Holes given up on (each one a `resync` to subscribers)."""
        return self.order.gaps

    def retire(self, session: Session) -> None:
        """Keep a leaving session's send totals so rates and /metrics never go backwards."""
        self.retired_frames[session.transport] += session.frames_sent
        self.retired_ticks[session.transport] += session.ticks_sent
        self.retired_conflated[session.transport] += session.outbox.conflated
        self.retired_direct[session.transport] += session.direct_sent


class Hub:
    """The instance's local sessions and the symbol -> sessions index."""

    def __init__(
        self,
        history: RecentTicks,
        sequencer: Sequencer | None = None,
        *,
        max_symbols: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.book = LatestBook()
        self.history = history
        self.sequencer = sequencer if sequencer is not None else Sequencer(0.0, clock)
        self.counters = HubCounters(order=self.sequencer.counters)
        self.max_symbols = max_symbols  # 0: no cap
        self._latest_encoded: dict[str, str] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()  # least recently updated first
        self._subscribers: dict[str, set[Session]] = {}
        self._sessions: set[Session] = set()

    # --- ingest -------------------------------------------------------------------------------

    def ingest(self, tick: Tick) -> None:
        """Take one tick from the broker; accept what the sequencer releases, in order."""
        self.counters.ticks_in += 1
        for released, gap in self.sequencer.push(tick):
            self._accept(released, gap)

    def ingest_many(self, ticks: Iterable[Tick]) -> None:
        """`ingest` for every tick of a message, in order (the hot path: names bound once)."""
        in_order, push, accept = self.sequencer.in_order, self.sequencer.push, self._accept
        count = 0
        for tick in ticks:
            count += 1
            if in_order(tick):
                accept(tick, False)
                continue
            for released, gap in push(tick):
                accept(released, gap)
        self.counters.ticks_in += count

    def sweep(self) -> None:
        """Release the held ticks whose hole did not fill in time (as gaps)."""
        releases: list[Release] = self.sequencer.due()
        for released, gap in releases:
            self._accept(released, gap)

    def _accept(self, tick: Tick, gap: bool) -> None:
        symbol = tick.symbol
        self.counters.ticks_accepted += 1
        encoded = encode_tick(tick)
        try:
            self._recent.move_to_end(symbol)
        except KeyError:  # a symbol not tracked (yet, or any more)
            if self.max_symbols and len(self._recent) >= self.max_symbols:
                self._evict_one()
            self._recent[symbol] = None
        self._latest_encoded[symbol] = encoded
        self.book.put(tick)
        self.history.append(tick, encoded)
        sessions = self._subscribers.get(symbol)
        if sessions:
            for session in sessions:
                if gap:
                    session.resync([symbol])
                    if tick.seq <= session.outbox.last_seq.get(symbol, -1):
                        # re-based below a poisoned seq: the client's seq gate starts afresh
                        session.outbox.restart(symbol)
                session.offer(symbol, tick.seq, encoded, tick.ts)
            self.counters.deliveries += len(sessions)

    def _evict_one(self) -> None:
        recent = self._recent
        for _ in range(min(EVICTION_SCAN, len(recent))):
            symbol = next(iter(recent))
            if symbol in self._subscribers:
                recent.move_to_end(symbol)
                continue
            del recent[symbol]
            del self._latest_encoded[symbol]
            self.book.forget(symbol)
            self.history.forget(symbol)
            self.sequencer.forget(symbol)
            self.counters.evicted += 1
            return

    def tracked_symbols(self) -> int:
        """Symbols whose latest tick, history and order state this instance holds."""
        return len(self._recent)

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
                for seq, ts, encoded in replay:
                    session.offer(symbol, seq, encoded, ts)
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
        counts: dict[Transport, int] = dict.fromkeys(TRANSPORTS, 0)
        for session in self._sessions:
            counts[session.transport] += 1
        return counts

    def subscribers_by_symbol(self) -> dict[str, int]:
        """How many local sessions follow each symbol."""
        return {symbol: len(subs) for symbol, subs in sorted(self._subscribers.items())}

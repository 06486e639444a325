"""Runtime: everything one server process owns, built from `Settings` and torn down in order.

Rule: one Runtime per app (in `app.extensions["ticker"]`), never a module global. Messages from the
broker arrive on the loop thread, one tick or a packed `{"ticks": [...]}` each, decoded with one
orjson call; every tick is validated on its own (a bad one never drops its neighbours); bad
messages and bad ticks are counted, logged once per N, and dropped. Decoding runs on the loop,
not on the Pub/Sub client's threads: both hold the GIL, so moving it buys no CPU, and here the
ticks of one message stay together in arrival order. Holes in seq whose wait is over are released
by a sweep every `reorder_ms / 2`, never in the middle of a batch: while the loop works through a
backlog, the message that fills a hole may already sit in the same batch.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ticker.broker.base import Broker
from ticker.broker.memory import InMemoryBroker
from ticker.core.codec import decode_message
from ticker.core.flush import AdaptiveFlush
from ticker.core.history import RecentTicks
from ticker.core.latency import LatencyHistogram
from ticker.core.pollers import RecentPollers
from ticker.core.reorder import Sequencer
from ticker.server.settings import Settings
from ticker.stream.feed import run_simulated_feed
from ticker.stream.hub import Hub
from ticker.stream.tuning import FlushClock, ProcessTuning

log = logging.getLogger(__name__)
MALFORMED_LOG_EVERY = 100
DRAIN_SPREAD = 1.0  # reconnect frames go out over this long, so clients do not stampede a peer
DRAIN_WAIT = 3.0  # then connections get at most this long to finish closing
DRAIN_CLOSE_CODE = 1012  # "service restart"
POLL_GRACE = 5.0  # a long-poll client counts as connected this long after an answer
LATE_GRACE = 5.0  # after close, late arrivals are still sent away this long (the listener closes)


class Service(Protocol):
    """Something that runs beside the broker for the process's life (e.g. dashboard presence)."""

    async def start(self) -> None:
        """Start; called after the broker has started."""

    async def close(self) -> None:
        """Stop; called after draining, before the broker closes."""


def make_broker(settings: Settings) -> Broker:
    """The broker `settings` ask for: Pub/Sub with a fresh subscription, or in-process memory."""
    if settings.broker == "pubsub":
        from ticker.broker.pubsub import PubSubBroker  # the Google client is heavy: import on use

        return PubSubBroker(
            settings.project,
            settings.topic,
            settings.subscription_prefix,
            max_lag=settings.max_ingest_lag,
        )
    return InMemoryBroker(settings.topic)


@dataclass
class Runtime:
    """The process's hub, broker and background tasks."""

    settings: Settings
    broker: Broker
    hub: Hub
    clock: Callable[[], float] = time.monotonic
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)  # also feeds /metrics
    flush: FlushClock = field(default_factory=lambda: FlushClock(AdaptiveFlush()))  # pacing
    started_at: float = field(default_factory=time.time)
    # Long-poll clients between two polls (the dashboard counts them as connected).
    pollers: RecentPollers = field(
        default_factory=lambda: RecentPollers(POLL_GRACE, time.monotonic)
    )
    draining: bool = False
    started: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    _drain_task: asyncio.Task[None] | None = None
    _late_arrivals: asyncio.Task[None] | None = None
    _closed: bool = False

    @classmethod
    def build(cls, settings: Settings, broker: Broker | None = None) -> Runtime:
        """Wire a runtime; pass `broker` to share one (tests) instead of the configured one."""
        history = RecentTicks(
            settings.history_size,
            settings.history_max_age,
            time.monotonic,
            max_total=settings.history_max_ticks,
        )
        ceiling = max(settings.flush_max_interval, settings.flush_interval)
        flush = AdaptiveFlush(floor=settings.flush_interval, ceiling=ceiling)
        tuning = ProcessTuning(flush, settings.gc_threshold, settings.switch_interval_ms / 1000)
        clock = FlushClock(flush)
        sequencer = Sequencer(settings.reorder_ms / 1000, time.monotonic)
        hub = Hub(history, sequencer, max_symbols=settings.max_tracked_symbols)
        return cls(settings, broker or make_broker(settings), hub, flush=clock, services=[tuning])

    def on_message(self, data: bytes, attributes: Mapping[str, str]) -> None:
        """The broker's handler: decode (one tick or a pack), then fan out. On the loop thread."""
        hub = self.hub
        counters = hub.counters
        counters.messages_in += 1
        decoded = decode_message(data)
        if decoded.packed:
            counters.packed_in += 1
        hub.ingest_many(decoded.ticks)
        self.flush.ingested()  # the next flush instant right after this batch of messages
        if decoded.problems:
            self._count_malformed(decoded.whole, decoded.problems)

    def _count_malformed(self, whole: bool, problems: list[str]) -> None:
        counters = self.hub.counters
        if whole:
            counters.malformed += 1
            if counters.malformed % MALFORMED_LOG_EVERY == 1:
                log.warning("malformed message #%d dropped: %s", counters.malformed, problems[0])
            return
        before = counters.malformed_ticks
        counters.malformed_ticks += len(problems)
        if (
            before == 0
            or before // MALFORMED_LOG_EVERY != counters.malformed_ticks // MALFORMED_LOG_EVERY
        ):
            log.warning(
                "%d malformed tick(s) dropped from a packed message (total %d): %s",
                len(problems),
                counters.malformed_ticks,
                problems[0],
            )

    async def _sweep(self) -> None:
        """Release reorder holes whose wait is over, even when no message comes to do it."""
        every = max(self.hub.sequencer.hold / 2, 0.005)
        while True:
            await asyncio.sleep(every)
            self.hub.sweep()

    def ready(self) -> bool:
        """Serving traffic makes sense: started, not draining, and the broker can deliver."""
        return self.readiness_problem() is None

    def readiness_problem(self) -> str | None:
        """Why this instance should get no traffic now (draining, starting, stream), or None."""
        if self.draining:
            return "draining"
        if not self.started:
            return "starting"
        problem = self.broker.problem()
        return None if problem is None else f"broker: {problem}"

    async def start(self) -> None:
        """Start the broker and, in memory mode, the simulated feed."""
        await self.broker.start(self.on_message)
        if self.hub.sequencer.hold > 0:
            self._tasks.append(asyncio.create_task(self._sweep(), name="reorder-sweep"))
        if self.settings.broker == "memory" and self.settings.sim_rate > 0:
            feed = run_simulated_feed(
                self.broker, self.settings.sim_symbols, self.settings.sim_rate
            )
            self._tasks.append(asyncio.create_task(feed, name="simulated-feed"))
        for service in self.services:
            await service.start()
        self.started = True

    async def drain(self, spread: float = DRAIN_SPREAD, wait: float = DRAIN_WAIT) -> None:
        """Turn unready at once, ask every client to reconnect elsewhere, wait for them to go.

        Reconnect frames (then close 1012) are spread over `spread` seconds in random order;
        clients arriving meanwhile are sent away too. Returns when no session is left or after
        `spread + wait` seconds. Calling it again waits for the same drain.
        """
        if self._drain_task is None:
            self.draining = True
            self._drain_task = asyncio.create_task(self._drain(spread, wait), name="drain")
        await self._drain_task

    async def _drain(self, spread: float, wait: float) -> None:
        sessions = self.hub.sessions()
        log.info("draining: asking %d clients to reconnect elsewhere", len(sessions))
        random.shuffle(sessions)
        slices = min(len(sessions), 20)  # none: nothing to spread, no wait
        for index in range(slices):
            for session in sessions[index::slices]:
                session.end(DRAIN_CLOSE_CODE, "server draining")
            await asyncio.sleep(spread / slices)
        deadline = self.clock() + wait
        while self.hub.sessions() and self.clock() < deadline:
            self._send_all_away()
            await asyncio.sleep(0.05)
        log.info("drained; %d sessions left", len(self.hub.sessions()))
        self._late_arrivals = asyncio.create_task(self._send_away(), name="drain-late-arrivals")

    def _send_all_away(self) -> None:
        """Ask every connected session to reconnect elsewhere (a no-op for those already asked)."""
        for session in self.hub.sessions():
            session.end(DRAIN_CLOSE_CODE, "server draining")

    async def _send_away(self) -> None:
        """Tell clients that still arrive to reconnect elsewhere at once, until shortly after close.

        A front end keeps routing to a draining instance until its readiness checks notice
        (seconds), and cookie affinity sends a reconnecting client straight back; left alone
        such a client would wait, tickless, for the server's graceful timeout (20 s). Clients
        accepted between `close()` and the listener closing count too, hence `LATE_GRACE`.
        """
        until: float | None = None
        while until is None or self.clock() < until:
            self._send_all_away()
            if until is None and self._closed:
                until = self.clock() + LATE_GRACE
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Stop services and tasks, then release the broker (and delete its subscription).

        Idempotent: the SIGTERM path and the lifespan exit both call it.
        """
        if self._closed:
            return
        self._closed = True
        for service in reversed(self.services):
            await service.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.broker.close()

    async def shutdown(self) -> None:
        """Drain, then close: what SIGTERM means (`ticker.serve`) and what lifespan exit does."""
        await self.drain()
        await self.close()

    async def lifespan(self) -> AsyncGenerator[None, None]:
        """Start on serve, drain and close on shutdown (an async generator for `while_serving`)."""
        await self.start()
        try:
            yield
        finally:
            await self.shutdown()

"""Runtime: everything one server process owns, built from `Settings` and torn down in order.

Rule: one Runtime per app (in `app.extensions["ticker"]`), never a module global. Messages from the
broker arrive on the loop thread; bad ones are counted, logged once per N, and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field

from ticker.broker.base import Broker
from ticker.broker.memory import InMemoryBroker
from ticker.core.codec import decode_tick
from ticker.core.errors import InvalidTick
from ticker.core.history import RecentTicks
from ticker.core.latency import LatencyWindow
from ticker.feed import run_simulated_feed
from ticker.hub import Hub
from ticker.settings import Settings

log = logging.getLogger(__name__)
MALFORMED_LOG_EVERY = 100


def make_broker(settings: Settings) -> Broker:
    """The broker `settings` ask for: Pub/Sub with a fresh subscription, or in-process memory."""
    if settings.broker == "pubsub":
        from ticker.broker.pubsub import PubSubBroker  # the Google client is heavy: import on use

        return PubSubBroker(settings.project, settings.topic, settings.subscription_prefix)
    return InMemoryBroker(settings.topic)


@dataclass
class Runtime:
    """The process's hub, broker and background tasks."""

    settings: Settings
    broker: Broker
    hub: Hub
    clock: Callable[[], float] = time.monotonic
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    started_at: float = field(default_factory=time.time)
    draining: bool = False
    started: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, broker: Broker | None = None) -> Runtime:
        """Wire a runtime; pass `broker` to share one (tests) instead of the configured one."""
        history = RecentTicks(settings.history_size, settings.history_max_age, time.monotonic)
        return cls(settings, broker or make_broker(settings), Hub(history))

    def on_message(self, data: bytes, attributes: Mapping[str, str]) -> None:
        """The broker's handler: decode, then fan out. Runs on the loop thread."""
        try:
            tick = decode_tick(data)
        except InvalidTick as exc:
            counters = self.hub.counters
            counters.malformed += 1
            if counters.malformed % MALFORMED_LOG_EVERY == 1:
                log.warning("malformed message #%d dropped: %s", counters.malformed, exc)
            return
        self.hub.ingest(tick)

    def ready(self) -> bool:
        """Serving traffic makes sense: started, not draining, and the broker can deliver."""
        return self.started and not self.draining and self.broker.healthy()

    async def start(self) -> None:
        """Start the broker and, in memory mode, the simulated feed."""
        await self.broker.start(self.on_message)
        if self.settings.broker == "memory" and self.settings.sim_rate > 0:
            feed = run_simulated_feed(
                self.broker, self.settings.sim_symbols, self.settings.sim_rate
            )
            self._tasks.append(asyncio.create_task(feed, name="simulated-feed"))
        self.started = True

    async def drain(self, spread: float = 1.0) -> None:
        """Turn unready, tell every client to reconnect elsewhere, spread over `spread` seconds."""
        self.draining = True
        sessions = self.hub.sessions()
        step = spread / max(len(sessions), 1)
        for index, session in enumerate(sessions):
            session.end(1012, "server draining")
            if step and index % 50 == 49:
                await asyncio.sleep(step * 50)

    async def close(self) -> None:
        """Stop background tasks and release the broker (and its subscription)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.broker.close()

    async def lifespan(self) -> AsyncGenerator[None, None]:
        """Start on serve, drain and close on shutdown (an async generator for `while_serving`)."""
        await self.start()
        try:
            yield
        finally:
            await self.drain()
            await self.close()

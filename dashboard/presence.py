"""Presence: every instance publishes its stats on the control topic; every instance listens.

Rules:
- The control topic rides on the same `Broker` seam as ticks: on Pub/Sub each process gets its
  own fresh subscription (`<prefix>-ctl`), deleted on close, so every process hears every other
  one (a shared subscription would load-balance heartbeats instead). No extra broker service.
- Once a second: refresh local rates and the history (`ClusterStats.sample`) and wake the
  dashboard streams. Every `interval` seconds: publish a heartbeat. A publish never delays the
  sampling: it runs as its own task and a heartbeat is skipped while the previous one is in flight.
- On close, a `leave` message lets peers drop this instance at once; a crashed one simply expires
  after `ttl` (about three missed heartbeats).
- Heartbeats carry `draining` (in the INST). When draining starts, one heartbeat goes out at once
  (the runtime offers no event, so a tiny task looks every DRAIN_POLL s) and local dashboard
  streams are woken; a peer's heartbeat that turns `draining` wakes them too. So dashboards show
  `draining` while the instance is still saying goodbye to its clients, before it leaves.
- Messages from the control topic are untrusted input: decode errors and bad shapes are counted
  and dropped, never raised into the broker.
- A `revoke` message (an admin logout on some instance) is handed to `on_revoke`, which checks
  its signature itself (`AdminAuth.accept_revocation`): anyone may publish on the topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from dashboard.stats import ClusterStats, sanitize
from ticker.broker.base import Broker, BrokerUnavailable
from ticker.core.registry import InstanceRegistry

log = logging.getLogger(__name__)
VERSION = 1
LEAVE_TIMEOUT = 2.0
DRAIN_POLL = 0.1


class Presence:
    """Heartbeats out, peers' heartbeats into the registry, a wake-up per sample for streams."""

    def __init__(
        self,
        broker: Broker,
        cluster: ClusterStats,
        interval: float,
        sample_period: float = 1.0,
        is_draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self.broker = broker
        self.cluster = cluster
        self.registry: InstanceRegistry = cluster.registry
        self.interval = interval
        self.sample_period = min(sample_period, interval)
        self.malformed = 0
        self.publish_errors = 0
        self._beats = itertools.count(1)
        self._last_beat = 0
        self._task: asyncio.Task[None] | None = None
        self._publishing: asyncio.Task[None] | None = None
        self._sampled = asyncio.Event()
        self.on_revoke: Callable[[object], object] | None = None  # logouts heard from peers
        self._is_draining = is_draining
        self._drain_watch: asyncio.Task[None] | None = None
        self.closed = False  # set by close(); dashboard streams end then (the samples stop)

    @property
    def id(self) -> str:
        """This instance's id in the cluster."""
        return self.cluster.local.id

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to the control topic, announce ourselves, then beat and sample."""
        await self.broker.start(self.on_message)
        self.cluster.sample()
        await self._beat()
        self._task = asyncio.create_task(self._run(), name="presence")
        self._drain_watch = asyncio.create_task(self._announce_drain(), name="presence-drain")

    async def close(self) -> None:
        """Stop beating, say goodbye (bounded), release the control subscription.

        Wakes the dashboard streams one last time: they see `closed` and end, so an open
        dashboard never holds the server's shutdown for its graceful timeout.
        """
        self.closed = True
        self._wake()
        for task in (self._task, self._publishing, self._drain_watch):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(BrokerUnavailable, TimeoutError):
            await asyncio.wait_for(self._send("leave", None), LEAVE_TIMEOUT)
        await self.broker.close()

    async def next_sample(self) -> None:
        """Wait for the next once-a-second sample (dashboard streams pace themselves on it)."""
        await self._sampled.wait()

    # --- the loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sample = next_beat = loop.time()
        while True:
            next_sample += self.sample_period
            await asyncio.sleep(max(0.0, next_sample - loop.time()))
            self.cluster.sample()
            self._wake()
            if loop.time() >= next_beat + self.interval - self.sample_period / 2:
                next_beat = loop.time()
                if self._publishing is None or self._publishing.done():
                    self._publishing = asyncio.create_task(self._beat(), name="presence-beat")

    def _wake(self) -> None:
        woken, self._sampled = self._sampled, asyncio.Event()
        woken.set()

    async def _announce_drain(self) -> None:
        while not self._is_draining():  # noqa: ASYNC110 (the runtime offers no drain event)
            await asyncio.sleep(DRAIN_POLL)
        self._wake()
        await self._beat()

    async def _beat(self) -> None:
        try:
            await self._send("beat", self.cluster.local.snapshot())
        except BrokerUnavailable as exc:
            self.publish_errors += 1
            if self.publish_errors % 10 == 1:
                log.warning("presence heartbeat not published (#%d): %s", self.publish_errors, exc)

    async def _send(
        self, kind: str, stats: Mapping[str, Any] | None, notice: object = None
    ) -> None:
        if kind == "beat":
            self._last_beat = next(self._beats)
        message = {"v": VERSION, "kind": kind, "id": self.id, "beat": self._last_beat}
        if stats is not None:
            message["stats"] = stats
        if notice is not None:
            message["notice"] = notice
        await self.broker.publish(orjson.dumps(message), {"kind": kind}, "")

    async def announce_revocation(self, notice: Mapping[str, Any]) -> bool:
        """Tell every peer that a login cookie was revoked here; False when it could not."""
        try:
            await asyncio.wait_for(self._send("revoke", None, notice), LEAVE_TIMEOUT)
        except (BrokerUnavailable, TimeoutError) as exc:
            log.warning("revocation not published: %s", exc)
            return False
        return True

    # --- inbound ----------------------------------------------------------------------------

    def on_message(self, data: bytes, attributes: Mapping[str, str]) -> None:
        """The control broker's handler (loop thread): heartbeats and goodbyes of peers."""
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._bad("not JSON")
            return
        if not isinstance(message, dict) or message.get("v") != VERSION:
            self._bad("unknown message")
            return
        peer, beat, kind = message.get("id"), message.get("beat"), message.get("kind")
        if not isinstance(peer, str) or not isinstance(beat, int) or peer == self.id:
            if peer != self.id:
                self._bad("no id or beat")
            return
        if kind == "revoke":
            if self.on_revoke is not None:
                self.on_revoke(message.get("notice"))
            return
        if kind == "leave":
            self.registry.left(peer, beat)
            log.info("instance %s left the cluster", peer)
            return
        stats = sanitize(message.get("stats"))
        if kind != "beat" or stats is None or stats["id"] != peer:
            self._bad("bad heartbeat")
            return
        starts_draining = stats.get("draining") is True and not any(
            p.id == peer and p.stats.get("draining") is True for p in self.registry.live()
        )
        if self.registry.heard(peer, stats, beat) and starts_draining:
            self._wake()  # dashboards show a peer's drain now, not at the next sample

    def _bad(self, why: str) -> None:
        self.malformed += 1
        if self.malformed % 100 == 1:
            log.warning("control message #%d dropped: %s", self.malformed, why)

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
- Cost grows with N^2 (N instances each read N heartbeats), so the schedule scales with the
  cluster: one beat every `interval` s while the cluster is small, and beyond `budget *
  interval` instances one every N / `budget` s, so that an instance hears at most `budget`
  heartbeats a second whatever N is (bench/cluster/presence.py measures it; docs/SCALING.md).
  Each beat announces the `ttl` receivers should keep it for (period x (misses + 0.5)).
- A beat carries the `symbols` map only when it changed, when a peer joined since the last
  beat (the newcomer needs it), and on every `FULL_EVERY`-th beat; otherwise receivers keep the
  map they hold. Version 1 beats (always the full stats, no `ttl`) are still understood.
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
VERSION = 2
ACCEPTED_VERSIONS = (1, 2)
LEAVE_TIMEOUT = 2.0
DRAIN_POLL = 0.1
BUDGET = 20.0  # heartbeats per second one instance may have to read, whatever N is
FULL_EVERY = 10  # every 10th beat carries the symbols map even when it did not change
MAX_TTL = 3600.0


def beat_period(peers: int, interval: float, budget: float = BUDGET) -> float:
    """Seconds between two heartbeats of an instance that knows `peers` other instances.

    `interval` while N = peers + 1 <= budget * interval; beyond, N / budget, so each instance
    reads at most `budget` heartbeats a second and the cluster's deliveries grow with N, not N^2.
    """
    return max(interval, (peers + 1) / budget)


def beat_message(
    ident: str, beat: int, stats: Mapping[str, Any], period: float, misses: int = 3
) -> dict[str, Any]:
    """The heartbeat as published: who, which beat, how long to keep it, the stats."""
    ttl = round(period * (misses + 0.5), 2)
    return {"v": VERSION, "kind": "beat", "id": ident, "beat": beat, "ttl": ttl, "stats": stats}


class Presence:
    """Heartbeats out, peers' heartbeats into the registry, a wake-up per sample for streams."""

    def __init__(
        self,
        broker: Broker,
        cluster: ClusterStats,
        interval: float,
        sample_period: float = 1.0,
        is_draining: Callable[[], bool] = lambda: False,
        *,
        budget: float = BUDGET,
        misses: int = 3,
    ) -> None:
        self.broker = broker
        self.cluster = cluster
        self.registry: InstanceRegistry = cluster.registry
        self.interval = interval
        self.budget = budget
        self.misses = misses
        self._sent_symbols: object = None
        self._sent_peers: set[str] = set()
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

    def period(self) -> float:
        """Seconds between this instance's heartbeats now (grows with the cluster)."""
        return beat_period(len(self.registry.live()), self.interval, self.budget)

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
            if loop.time() >= next_beat + self.period() - self.sample_period / 2:
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

    def heartbeat_stats(self) -> dict[str, Any]:
        """This instance's stats for the next beat, without `symbols` when peers have them."""
        stats: dict[str, Any] = dict(self.cluster.local.snapshot())
        peers = {p.id for p in self.registry.live()}
        number = self._last_beat + 1
        joined = bool(peers - self._sent_peers)
        full = joined or stats["symbols"] != self._sent_symbols or number % FULL_EVERY == 1
        self._sent_symbols, self._sent_peers = stats["symbols"], peers
        if not full:
            del stats["symbols"]
        return stats

    async def _beat(self) -> None:
        try:
            await self._send("beat", self.heartbeat_stats())
        except BrokerUnavailable as exc:
            self.publish_errors += 1
            if self.publish_errors % 10 == 1:
                log.warning("presence heartbeat not published (#%d): %s", self.publish_errors, exc)

    async def _send(
        self, kind: str, stats: Mapping[str, Any] | None, notice: object = None
    ) -> None:
        if kind == "beat":
            self._last_beat = next(self._beats)
        if stats is not None:
            message = beat_message(self.id, self._last_beat, stats, self.period(), self.misses)
        else:
            message = {"v": VERSION, "kind": kind, "id": self.id, "beat": self._last_beat}
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
        if not isinstance(message, dict) or message.get("v") not in ACCEPTED_VERSIONS:
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
        raw, ttl = message.get("stats"), message.get("ttl")
        if message["v"] >= 2 and isinstance(raw, dict) and "symbols" not in raw:
            held = self.registry.get(peer)  # unchanged since its last full beat: keep ours
            raw = {**raw, "symbols": held.stats.get("symbols", {}) if held else {}}
        stats = sanitize(raw)
        if kind != "beat" or stats is None or stats["id"] != peer:
            self._bad("bad heartbeat")
            return
        if isinstance(ttl, bool) or not (isinstance(ttl, int | float) and 0 < ttl <= MAX_TTL):
            ttl = None
        starts_draining = stats.get("draining") is True and not any(
            p.id == peer and p.stats.get("draining") is True for p in self.registry.live()
        )
        if self.registry.heard(peer, stats, beat, ttl) and starts_draining:
            self._wake()  # dashboards show a peer's drain now, not at the next sample

    def _bad(self, why: str) -> None:
        self.malformed += 1
        if self.malformed % 100 == 1:
            log.warning("control message #%d dropped: %s", self.malformed, why)

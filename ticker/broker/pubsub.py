"""Google Cloud Pub/Sub: one topic, and a fresh subscription of this process's own.

Rules (see RELIABILITY.md, measured on the emulator):
- Every subscription this process creates has a new name: `ticker-<instance>-<boot>` at start,
  then `...-r<n>` whenever it must be recreated. A name reused after its subscriber died stalls
  delivery on the emulator, and sharing one across instances would load-balance ticks instead of
  fanning them out. It is deleted on close; the janitor sweeps those of crashed processes.
- The client calls back on its own threads. `_on_message` only appends to a locked inbox and wakes
  the loop with one `call_soon_threadsafe` per batch; it catches everything, so the stream future
  is never marked failed by our own errors (and we never resubscribe just because it is done).
- Health is proven, not assumed: a canary is published every `canary_interval` s, and the stream
  is healthy only while messages keep arriving (`StreamWatch`). A silent stream is diagnosed by
  the supervisor: subscription gone (emulator restarted, janitor) -> recreate under a new name at
  once; present but silent while canaries publish fine -> stalled, replace it (with backoff);
  Pub/Sub unreachable -> wait (readiness is 503 meanwhile).
- FlowControl values are ints: a float silently stops delivery. One streaming pull suffices with
  packed messages (~80 messages/s at 20,000 ticks/s, measured in bench C); 2,000 messages /
  16 MiB of leases hold ~4 s of such a feed.
- No message ordering on the subscription (and canaries carry no ordering key): order comes
  from `seq` (the hub's reorder window); with ordering the Python subscriber releases a key's
  next message only after the previous one's ack, which capped ingest near 1,000 msg/s.
- Ingest lag: each handed-over batch is measured against Pub/Sub's `publish_time` of its
  oldest message; more than `max_lag` s makes `problem()` (readiness) report it.
- `canary_sources` is bounded (`MAX_CANARY_SOURCES`, oldest forgotten first): any producer may
  put the canary attribute on a message.
- Blocking admin calls run in threads with timeouts; nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from ticker.broker import admin
from ticker.broker.admin import SubscriptionState
from ticker.broker.base import BrokerHealth, BrokerUnavailable, MessageHandler
from ticker.broker.canary import StreamWatch, canary_message, canary_source

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 10.0
CANARY_TIMEOUT = 5.0
SUPERVISE_EVERY = 1.0
STALL_BACKOFF_MAX = 60.0
LOG_EVERY = 100
MAX_CANARY_SOURCES = 1024
FLOW_CONTROL = pubsub_v1.types.FlowControl(
    max_messages=2000,
    max_bytes=16 * 1024 * 1024,
    max_lease_duration=120,
    max_duration_per_lease_extension=10,
)
CallbackFault = Callable[[bytes, Mapping[str, str]], None]


class PubSubBroker:
    """A `Broker` on a Pub/Sub topic; supervises its streaming pull and recreates what vanished."""

    def __init__(
        self,
        project: str,
        topic: str,
        subscription_prefix: str,
        *,
        canary_interval: float = 2.0,
        stale_after: float = 8.0,
        flow_control: Any = FLOW_CONTROL,
        clock: Callable[[], float] = time.monotonic,
        max_lag: float = 5.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.project = project
        self.topic_path = str(pubsub_v1.PublisherClient.topic_path(project, topic))
        self._prefix = subscription_prefix
        self._generation = 0
        self.subscription_path = self._path_for(0)
        self.canary_interval = canary_interval
        self._flow_control = flow_control
        self._clock = clock
        self.watch = StreamWatch(stale_after, clock, max_lag)
        self._wall = wall
        self._publisher: pubsub_v1.PublisherClient | None = None
        self._subscriber: pubsub_v1.SubscriberClient | None = None
        self._future: Any = None  # StreamingPullFuture of the current stream
        self._handler: MessageHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._inbox: list[tuple[bytes, dict[str, str], float]] = []
        self._drain_scheduled = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._closed = False
        self._next_stall_replace = 0.0
        self._stall_backoff = 2 * stale_after
        self.canary_sources: dict[str, float] = {}  # subscription id -> when its canary came
        # Test hook: called inside the Pub/Sub callback before the hand-off; may raise.
        self.inject_callback_fault: CallbackFault | None = None
        self.counts: dict[str, int] = dict.fromkeys(
            (
                "messages", "canaries_received", "canaries_published", "canary_failures",
                "callback_errors", "handler_errors", "streams_opened", "resubscribes",
            ),
            0,
        )  # fmt: skip

    @property
    def subscription_id(self) -> str:
        """The short name of the subscription in use now."""
        return self.subscription_path.rsplit("/", 1)[-1]

    def _path_for(self, generation: int) -> str:
        name = self._prefix if generation == 0 else f"{self._prefix}-r{generation}"
        return str(pubsub_v1.SubscriberClient.subscription_path(self.project, name))

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, on_message: MessageHandler) -> None:
        """Create topic and subscription, open the stream, start the canary and the supervisor.

        Never raises for an unreachable Pub/Sub: the instance stays unready and keeps trying.
        """
        self._handler = on_message
        self._loop = asyncio.get_running_loop()
        # Ordering stays enabled on this (low-rate) publisher only so that callers may still pass
        # a key (optional by the contract); canaries are published without one.
        self._publisher = pubsub_v1.PublisherClient(
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
        )
        self._subscriber = pubsub_v1.SubscriberClient()
        try:
            await self._create_and_open()
        except BrokerUnavailable as exc:
            log.warning("%s; will keep trying", exc)
        self._tasks = [
            asyncio.create_task(self._canary_loop(), name="pubsub-canary"),
            asyncio.create_task(self._supervise(), name="pubsub-supervisor"),
        ]

    async def close(self) -> None:
        """Stop the stream and delete this process's subscription. Safe to call twice."""
        if self._closed:
            return
        self._closing = self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._stop_stream()
        if self._subscriber is not None:
            await self._delete(self.subscription_path)
            await asyncio.to_thread(self._subscriber.close)
        if self._publisher is not None:
            await asyncio.to_thread(self._publisher.stop)
        self._handler = None

    def healthy(self) -> bool:
        """Messages are flowing: `problem()` is None."""
        return self.problem() is None

    def problem(self) -> str | None:
        """Why the stream cannot be trusted right now, or None."""
        if self._closing:
            return "closed"
        return self.watch.problem()

    def health(self) -> BrokerHealth:
        """The stream's state, the subscription in use and how often it had to be recreated."""
        problem = self.problem()
        return BrokerHealth(
            problem is None,
            problem,
            self.subscription_path,
            self.counts["resubscribes"],
            self.counts["callback_errors"],
        )

    def stats(self) -> dict[str, int | float | str | None]:
        """Counters and the stream's state, for readiness bodies and metrics."""
        return {
            "subscription": self.subscription_id,
            "silent_for": round(self.watch.silent_for(), 3),
            "lag": round(self.watch.lag, 3),
            "problem": self.problem(),
            **self.counts,
        }

    # --- publish ----------------------------------------------------------------------------------

    async def publish(self, data: bytes, attributes: Mapping[str, str], ordering_key: str) -> None:
        """Publish and await the server's ack without blocking the loop."""
        await self._publish(data, attributes, ordering_key, PUBLISH_TIMEOUT)

    async def _publish(
        self, data: bytes, attributes: Mapping[str, str], ordering_key: str, within: float
    ) -> None:
        if self._publisher is None:
            raise BrokerUnavailable("broker not started")
        future = self._publisher.publish(
            self.topic_path, data, ordering_key=ordering_key, **dict(attributes)
        )
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), within)
        except (gexc.GoogleAPICallError, TimeoutError, RuntimeError) as exc:
            if ordering_key:
                with contextlib.suppress(RuntimeError):
                    self._publisher.resume_publish(self.topic_path, ordering_key)
            raise BrokerUnavailable(f"publish failed: {type(exc).__name__}: {exc}") from exc

    # --- the thread -> loop bridge --------------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        # Runs on a Pub/Sub client thread: touch no asyncio object except via call_soon_threadsafe.
        try:
            data, attributes = message.data, dict(message.attributes)
            published = message.publish_time.timestamp()
            fault = self.inject_callback_fault
            if fault is not None:
                fault(data, attributes)
            with self._lock:
                self._inbox.append((data, attributes, published))
                wake = not self._drain_scheduled
                self._drain_scheduled = True
            if wake and self._loop is not None:
                self._loop.call_soon_threadsafe(self._drain)
            message.ack()
        except RuntimeError:  # the loop is closed: we are shutting down; redeliver elsewhere
            message.nack()
        except Exception:  # never let an exception reach the client library (it would nack and
            with self._lock:  # mark the stream future failed while the stream keeps running)
                self.counts["callback_errors"] += 1
                errors = self.counts["callback_errors"]
            if errors % LOG_EVERY == 1:
                log.exception("pubsub callback failed (#%d); message nacked", errors)
            message.nack()

    def _drain(self) -> None:
        # On the loop thread: hand the batch to the handler in arrival order.
        with self._lock:
            batch, self._inbox = self._inbox, []
            self._drain_scheduled = False
        handler = self._handler
        if handler is None or not batch:
            return
        self.watch.lagged(self._wall() - batch[0][2])
        for data, attributes, _ in batch:
            self.watch.message()
            source = canary_source(attributes)
            if source is not None:
                self.counts["canaries_received"] += 1
                self._note_canary(source)
                continue
            self.counts["messages"] += 1
            try:
                handler(data, attributes)
            except Exception:  # one bad message must not drop the rest of the batch
                self.counts["handler_errors"] += 1
                if self.counts["handler_errors"] % LOG_EVERY == 1:
                    log.exception("message handler failed (#%d)", self.counts["handler_errors"])

    def _note_canary(self, source: str) -> None:
        sources = self.canary_sources
        sources.pop(source, None)
        sources[source] = self._clock()  # newest last
        if len(sources) > MAX_CANARY_SOURCES:
            del sources[next(iter(sources))]

    # --- stream management ------------------------------------------------------------------------

    async def _create_and_open(self) -> None:
        assert self._publisher is not None
        assert self._subscriber is not None
        publisher, subscriber, path = self._publisher, self._subscriber, self.subscription_path

        def create() -> None:
            admin.ensure_topic(publisher, self.topic_path)
            admin.create_subscription(subscriber, path, self.topic_path)

        try:
            await asyncio.to_thread(create)
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
            raise BrokerUnavailable(f"cannot create {path}: {type(exc).__name__}: {exc}") from exc
        self._future = subscriber.subscribe(
            path, callback=self._on_message, flow_control=self._flow_control
        )
        self.counts["streams_opened"] += 1
        self.watch.opened()
        log.info("subscribed to %s as %s", self.topic_path, self.subscription_id)

    def _stop_stream(self) -> None:
        if self._future is not None:
            self._future.cancel()
            self._future = None

    async def _delete(self, path: str) -> None:
        assert self._subscriber is not None
        try:
            await asyncio.wait_for(
                asyncio.to_thread(admin.delete_subscription, self._subscriber, path),
                admin.ADMIN_TIMEOUT + 1,
            )
        except (gexc.GoogleAPICallError, gexc.RetryError, TimeoutError) as exc:
            log.warning("could not delete subscription %s: %s", path, type(exc).__name__)

    async def _replace(self, why: str, *, delete_old: bool) -> None:
        """Drop the current subscription and subscribe again under a new name."""
        log.warning("replacing subscription %s: %s", self.subscription_id, why)
        self._stop_stream()
        if delete_old:  # a stalled or failed one must not linger; a missing one needs no call
            await self._delete(self.subscription_path)
        self._generation += 1
        self.subscription_path = self._path_for(self._generation)
        try:
            await self._create_and_open()
        except BrokerUnavailable as exc:
            log.warning("%s; will retry", exc)
            return
        self.counts["resubscribes"] += 1

    async def _supervise(self) -> None:
        """Once a second: open a stream if there is none, and diagnose a silent one."""
        while not self._closing:
            await asyncio.sleep(SUPERVISE_EVERY)
            if self._future is None:  # creation failed (Pub/Sub unreachable): try again
                await self._replace("no stream open", delete_old=False)
                continue
            if self._future.done() and not self._future.cancelled():
                exc = self._future.exception()
                if isinstance(exc, gexc.GoogleAPICallError):  # terminal: the client gave up
                    await self._replace(f"stream ended: {type(exc).__name__}", delete_old=True)
                    continue
            if self.watch.silent_for() <= self.watch.stale_after:
                self._stall_backoff = 2 * self.watch.stale_after
                continue
            await self._diagnose_silence()

    async def _diagnose_silence(self) -> None:
        assert self._subscriber is not None
        state = await asyncio.to_thread(
            admin.subscription_state, self._subscriber, self.subscription_path
        )
        if state is SubscriptionState.MISSING:  # emulator restarted, or swept: recreate at once
            await self._replace("subscription not found", delete_old=False)
        elif state is SubscriptionState.PRESENT and self._clock() >= self._next_stall_replace:
            # Pub/Sub answers, yet nothing (not even a canary) arrives: the stream is stuck.
            # Replacing also recreates a deleted topic. Back off so a config that can never
            # work (readiness stays 503) does not churn subscriptions.
            self._next_stall_replace = self._clock() + self._stall_backoff
            self._stall_backoff = min(self._stall_backoff * 2, STALL_BACKOFF_MAX)
            silent = self.watch.silent_for()
            await self._replace(f"stream silent for {silent:.0f}s", delete_old=True)

    async def _canary_loop(self) -> None:
        """Publish a canary now and every `canary_interval` s; failures are counted, not fatal."""
        while not self._closing:
            data, attributes = canary_message(self.subscription_id, time.time_ns() // 1_000_000)
            try:
                await self._publish(data, attributes, "", CANARY_TIMEOUT)
            except BrokerUnavailable as exc:
                self.counts["canary_failures"] += 1
                if self.counts["canary_failures"] % 10 == 1:
                    log.warning("canary not published: %s", exc)
            else:
                self.counts["canaries_published"] += 1
            await asyncio.sleep(self.canary_interval)

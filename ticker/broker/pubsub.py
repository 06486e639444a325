"""Google Cloud Pub/Sub: one topic, and a fresh subscription of this process's own.

Rules (see RELIABILITY.md, measured on the emulator):
- Every process start gets a new subscription name (`ticker-<instance>-<boot>`): a name reused after
  its subscriber died stalls delivery, and sharing one across instances would load-balance ticks
  instead of fanning them out. It is deleted on close; real Pub/Sub expires leftovers after a day.
- The client calls back on its own threads. `_on_message` only appends to a locked inbox and wakes
  the loop with one `call_soon_threadsafe` per batch; it catches everything (an exception there
  nacks and marks the stream future failed while the stream keeps running).
- FlowControl values are ints: a float silently stops delivery.
- Blocking admin calls run in threads with timeouts; nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2

from ticker.broker.base import BrokerUnavailable, MessageHandler

log = logging.getLogger(__name__)

ADMIN_TIMEOUT = 10.0
PUBLISH_TIMEOUT = 10.0
EXPIRATION_TTL_SECONDS = 24 * 3600  # the minimum Pub/Sub allows
FLOW_CONTROL = pubsub_v1.types.FlowControl(
    max_messages=2000,
    max_bytes=16 * 1024 * 1024,
    max_lease_duration=120,
    max_duration_per_lease_extension=10,
)


class PubSubBroker:
    """A `Broker` on a Pub/Sub topic; supervises its streaming pull and recreates what vanished."""

    def __init__(self, project: str, topic: str, subscription: str) -> None:
        self.project = project
        self.topic_path = pubsub_v1.PublisherClient.topic_path(project, topic)
        self.subscription_path = pubsub_v1.SubscriberClient.subscription_path(project, subscription)
        self._publisher: pubsub_v1.PublisherClient | None = None
        self._subscriber: pubsub_v1.SubscriberClient | None = None
        self._future: Any = None  # StreamingPullFuture
        self._handler: MessageHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._inbox: list[tuple[bytes, dict[str, str]]] = []
        self._drain_scheduled = False
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self.callback_errors = 0
        self.resubscribes = 0

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, on_message: MessageHandler) -> None:
        """Create topic and subscription, open the stream, and supervise it."""
        self._handler = on_message
        self._loop = asyncio.get_running_loop()
        self._publisher = pubsub_v1.PublisherClient(
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
        )
        self._subscriber = pubsub_v1.SubscriberClient()
        await self._ensure_subscription()
        self._open_stream()
        self._supervisor = asyncio.create_task(self._supervise(), name="pubsub-supervisor")

    async def close(self) -> None:
        """Stop the stream and delete this process's subscription (bounded by a timeout)."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        if self._future is not None:
            self._future.cancel()
        if self._subscriber is not None:
            try:
                await asyncio.wait_for(
                    asyncio.to_thread(
                        self._subscriber.delete_subscription,
                        subscription=self.subscription_path,
                        timeout=ADMIN_TIMEOUT,
                    ),
                    ADMIN_TIMEOUT + 1,
                )
            except (gexc.GoogleAPICallError, TimeoutError) as exc:
                log.warning("could not delete subscription %s: %s", self.subscription_path, exc)
            await asyncio.to_thread(self._subscriber.close)
        if self._publisher is not None:
            await asyncio.to_thread(self._publisher.stop)
        self._handler = None

    def healthy(self) -> bool:
        """The stream is open and not failed."""
        return self._future is not None and not self._future.done() and not self._closing

    # --- publish ----------------------------------------------------------------------------------

    async def publish(self, data: bytes, attributes: Mapping[str, str], ordering_key: str) -> None:
        """Publish and await the server's ack without blocking the loop."""
        if self._publisher is None:
            raise BrokerUnavailable("broker not started")
        future = self._publisher.publish(
            self.topic_path, data, ordering_key=ordering_key, **dict(attributes)
        )
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), PUBLISH_TIMEOUT)
        except (gexc.GoogleAPICallError, TimeoutError, RuntimeError) as exc:
            if ordering_key:
                self._publisher.resume_publish(self.topic_path, ordering_key)
            raise BrokerUnavailable(f"publish failed: {exc}") from exc

    # --- the thread -> loop bridge --------------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        # Runs on a Pub/Sub client thread: touch no asyncio object except via call_soon_threadsafe.
        try:
            with self._lock:
                self._inbox.append((message.data, dict(message.attributes)))
                wake = not self._drain_scheduled
                self._drain_scheduled = True
            if wake and self._loop is not None:
                self._loop.call_soon_threadsafe(self._drain)
            message.ack()
        except RuntimeError:  # the loop is closed: we are shutting down
            message.nack()
        except Exception:  # never let an exception reach the client library
            self.callback_errors += 1
            log.exception("pubsub callback failed")
            message.nack()

    def _drain(self) -> None:
        with self._lock:
            batch, self._inbox = self._inbox, []
            self._drain_scheduled = False
        handler = self._handler
        if handler is None:
            return
        for data, attributes in batch:
            handler(data, attributes)

    # --- admin, with timeouts, in threads ---------------------------------------------------------

    async def _ensure_subscription(self) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._create_all), ADMIN_TIMEOUT * 3)
        except (gexc.GoogleAPICallError, gexc.RetryError, TimeoutError) as exc:
            raise BrokerUnavailable(f"Pub/Sub unreachable for {self.topic_path}: {exc}") from exc

    def _create_all(self) -> None:
        assert self._publisher is not None
        assert self._subscriber is not None
        with contextlib.suppress(gexc.AlreadyExists):
            self._publisher.create_topic(name=self.topic_path, timeout=ADMIN_TIMEOUT)
        with contextlib.suppress(gexc.AlreadyExists):
            self._subscriber.create_subscription(
                request={
                    "name": self.subscription_path,
                    "topic": self.topic_path,
                    "ack_deadline_seconds": 10,
                    "enable_message_ordering": True,
                    "expiration_policy": {
                        "ttl": duration_pb2.Duration(seconds=EXPIRATION_TTL_SECONDS)
                    },
                    "labels": {"app": "ticker"},
                },
                timeout=ADMIN_TIMEOUT,
            )

    def _open_stream(self) -> None:
        assert self._subscriber is not None
        self._future = self._subscriber.subscribe(
            self.subscription_path, callback=self._on_message, flow_control=FLOW_CONTROL
        )

    async def _supervise(self) -> None:
        """Reopen the stream after a terminal error; recreate topic/subscription when gone."""
        backoff = 1.0
        while not self._closing:
            await asyncio.sleep(0.5)
            if self._future is None or not self._future.done():
                backoff = 1.0
                continue
            exc = self._future.exception() if not self._future.cancelled() else None
            log.warning("pubsub stream ended (%s); reopening in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
            try:
                await self._ensure_subscription()
            except BrokerUnavailable as err:
                log.warning("%s", err)
                continue
            self._open_stream()
            self.resubscribes += 1

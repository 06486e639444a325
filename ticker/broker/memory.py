"""An in-process broker: the zero-setup default and the unit tests' broker.

Rule: it behaves like the real one where the service can tell: delivery is asynchronous (next loop
iteration, never inside `publish`), every subscriber of a topic gets every message, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ticker.broker.base import BrokerHealth, BrokerUnavailable, MessageHandler
from ticker.broker.canary import canary_source


class MemoryBus:
    """Topics shared by several `InMemoryBroker`s, so one process can host several 'instances'."""

    def __init__(self) -> None:
        self.topics: dict[str, list[InMemoryBroker]] = {}


class InMemoryBroker:
    """A `Broker` whose topic lives in a `MemoryBus` (its own private bus by default)."""

    def __init__(self, topic: str = "prices", bus: MemoryBus | None = None) -> None:
        self.topic = topic
        self.bus = bus or MemoryBus()
        self._handler: MessageHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0

    async def start(self, on_message: MessageHandler) -> None:
        """Join the topic; messages published from now on reach `on_message`."""
        self._handler = on_message
        self._loop = asyncio.get_running_loop()
        self.bus.topics.setdefault(self.topic, []).append(self)

    async def publish(self, data: bytes, attributes: Mapping[str, str], ordering_key: str) -> None:
        """Deliver to every started broker on the topic, on their loops' next iteration.

        Publishing to a topic nobody listens to is fine, as on Pub/Sub.
        """
        attrs = dict(attributes)
        for peer in list(self.bus.topics.get(self.topic, ())):
            peer._deliver(data, attrs)
        self.published += 1

    def _deliver(self, data: bytes, attributes: Mapping[str, str]) -> None:
        if self._handler is None or self._loop is None or canary_source(attributes) is not None:
            return  # canaries prove a Pub/Sub stream; like PubSubBroker, never hand them on
        if self._loop.is_closed():
            raise BrokerUnavailable("subscriber loop is closed")
        self._loop.call_soon_threadsafe(self._handler, data, attributes)

    async def close(self) -> None:
        """Leave the topic; nothing more is delivered."""
        peers = self.bus.topics.get(self.topic, [])
        if self in peers:
            peers.remove(self)
        self._handler = None

    def healthy(self) -> bool:
        """Always healthy once started: there is nothing to lose contact with."""
        return self._handler is not None

    def problem(self) -> str | None:
        """None once started."""
        return None if self._handler is not None else "not started"

    def health(self) -> BrokerHealth:
        """Started or not: no subscription, nothing to recreate."""
        return BrokerHealth(self.healthy(), self.problem())

    def stats(self) -> dict[str, int | float | str | None]:
        """What this broker published (the memory bus has nothing else to report)."""
        return {"topic": self.topic, "published": self.published, "problem": self.problem()}

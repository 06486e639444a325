"""The whole path on real parts: publisher -> Pub/Sub emulator -> server processes -> WebSocket.

Every test uses its own topic, so each server process gets a fresh subscription on it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from google.cloud import pubsub_v1

from tests.integration.stack import PROJECT, run_publisher, start_pubsub_server
from tests.support.servers import http_status
from tests.support.timing import timeout
from ticker.client import Resync, Subscribed, Tick, connect

pytestmark = pytest.mark.integration


class Collector:
    """One `ticker.client` stream that records every tick per symbol."""

    def __init__(self, url: str, symbols: list[str]) -> None:
        self.origin = url  # the serving host: what a browser on the page would send
        self.url = url.replace("http://", "ws://") + "/ws"
        self.symbols = symbols
        self.seqs: dict[str, list[int]] = {s: [] for s in symbols}
        self.subscribed = asyncio.Event()
        self.resyncs: list[Resync] = []
        self.changed = asyncio.Event()

    async def run(self, until: Any) -> None:
        """Read until `until(self)` holds; it is checked on every event and on `changed.set()`."""
        async with connect(self.url, origin=self.origin) as client:
            reader = asyncio.create_task(self._read(client))
            try:
                while not until(self):
                    self.changed.clear()
                    await self.changed.wait()
                    if reader.done():
                        reader.result()  # a failed stream fails the test
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    async def _read(self, client: Any) -> None:
        try:
            async for event in client.events(self.symbols):
                if isinstance(event, Subscribed):
                    self.subscribed.set()
                elif isinstance(event, Tick):
                    self.seqs[event.symbol].append(event.seq)
                elif isinstance(event, Resync):
                    self.resyncs.append(event)
                self.changed.set()
        finally:
            self.changed.set()

    def total(self) -> int:
        return sum(len(s) for s in self.seqs.values())


def _publish_raw(emulator: Any, topic: str, *bodies: bytes, symbol: str = "ZZZ") -> None:
    """Publish as a foreign producer would: the plain google-cloud-pubsub client."""
    publisher = pubsub_v1.PublisherClient()
    path = publisher.topic_path(PROJECT, topic)
    for body in bodies:
        publisher.publish(path, body, symbol=symbol).result(timeout=10)


def _contiguous(seqs: list[int]) -> bool:
    return seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_publisher_ticks_reach_websocket_clients_of_two_instances_in_order(
    emulator, unique_name, start_server
):
    topic = unique_name("prices")
    a, b = (
        start_pubsub_server(start_server, emulator, topic),
        start_pubsub_server(start_server, emulator, topic),
    )
    clients = [Collector(a.url, ["AAPL", "MSFT"]), Collector(b.url, ["AAPL", "MSFT"])]
    expected: dict[str, int] = {}
    runs = [
        asyncio.create_task(c.run(lambda c: c.total() >= expected.get("n", 10**9))) for c in clients
    ]
    for client in clients:
        await asyncio.wait_for(client.subscribed.wait(), timeout(10))
    expected["n"] = await asyncio.to_thread(run_publisher, emulator, topic, "AAPL,MSFT", 40, 3)
    for client in clients:
        client.changed.set()  # the goal is known now: look again
    await asyncio.wait_for(asyncio.gather(*runs), timeout(20))
    for client in clients:
        assert client.total() == expected["n"]  # every tick, on both instances
        for symbol, seqs in client.seqs.items():
            assert seqs, symbol
            assert _contiguous(seqs), f"{symbol}: gaps, duplicates or reordering in {seqs}"
        assert not client.resyncs


async def test_foreign_producers_and_malformed_messages(emulator, unique_name, start_server):
    topic = unique_name("prices")
    server = start_pubsub_server(start_server, emulator, topic)
    client = Collector(server.url, ["ZZZ"])
    run = asyncio.create_task(client.run(lambda c: len(c.seqs["ZZZ"]) >= 2))
    await asyncio.wait_for(client.subscribed.wait(), timeout(10))
    now = int(time.time() * 1000)
    await asyncio.to_thread(
        _publish_raw,
        emulator,
        topic,
        b'{"symbol": "zzz", "price": 12.5, "seq": 100, "ts": %d}' % now,
        b"definitely not json",
        b'{"symbol": "ZZZ", "price": "free", "seq": 101, "ts": 1}',
        b"\xff\xfe\x00",
        b'{"symbol": "ZZZ", "price": 12.75, "seq": 101, "ts": %d, "volume": 500}' % now,
    )
    await asyncio.wait_for(run, timeout(15))
    assert client.seqs["ZZZ"] == [100, 101]
    assert http_status(server.url + "/liveness_check") == 200
    assert http_status(server.url + "/readiness_check") == 200

"""L4 in process: session affinity lost. Polls alternate between two instances that share a feed.

Every poll with cursor C returns ticks after C, or says `resync`; after client-side dedupe
(drop seq <= last seen) there is no gap and no duplicate. Two real processes on the Pub/Sub
emulator are the integration variant; this one needs no emulator.
"""

from __future__ import annotations

import contextlib

from tests.conftest import tick
from tests.service.streams import BASE_ENV
from ticker.app import create_app
from ticker.broker.memory import InMemoryBroker, MemoryBus
from ticker.core.codec import tick_to_bytes
from ticker.server.transports import runtime_of


@contextlib.asynccontextmanager
async def _two_instances(bus: MemoryBus):
    apps = [create_app(BASE_ENV, broker=InMemoryBroker("prices", bus)) for _ in range(2)]
    async with apps[0].test_app() as a, apps[1].test_app() as b:
        yield [a.test_client(), b.test_client()], [runtime_of(x) for x in apps]
        for app in apps:
            await runtime_of(app).drain(spread=0.0, wait=0.0)


async def _publish(bus_broker: InMemoryBroker, symbol: str, seq: int) -> None:
    await bus_broker.publish(tick_to_bytes(tick(symbol, seq=seq)), {"symbol": symbol}, symbol)


async def test_alternating_instances_serve_any_cursor_without_gaps_or_duplicates():
    bus = MemoryBus()
    producer = InMemoryBroker("prices", bus)
    async with _two_instances(bus) as (clients, _runtimes):
        last: dict[str, int] = {}
        seen: dict[str, list[int]] = {"AAPL": [], "MSFT": []}
        cursor = None
        for i in range(60):
            for symbol in ("AAPL", "MSFT"):
                await _publish(producer, symbol, i + 1)
            query = "symbols=AAPL,MSFT" + (f"&cursor={cursor}" if cursor else "")
            resp = await clients[i % 2].get(f"/poll?{query}")
            body = await resp.get_json()
            assert "resync" not in body
            for t in body["ticks"]:
                if t["seq"] > last.get(t["symbol"], -1):
                    last[t["symbol"]] = t["seq"]
                    seen[t["symbol"]].append(t["seq"])
            cursor = body["cursor"]
        for seqs in seen.values():
            assert seqs == list(range(seqs[0], seqs[-1] + 1))
            assert seqs[-1] >= 59


async def test_an_instance_that_cannot_cover_the_cursor_says_resync():
    bus = MemoryBus()
    producer = InMemoryBroker("prices", bus)
    async with _two_instances(bus) as (clients, runtimes):
        await _publish(producer, "AAPL", 1)
        first = await (await clients[0].get("/poll?symbols=AAPL")).get_json()
        # instance B restarts and loses its history; the feed moves on with a gap B never saw
        runtimes[1].hub.history._rings.clear()
        for seq in range(2, 5):
            runtimes[0].hub.ingest(tick(seq=seq))
        runtimes[1].hub.ingest(tick(seq=4))  # B's next tick: 2 and 3 never reached it
        body = await (
            await clients[1].get(f"/poll?symbols=AAPL&cursor={first['cursor']}")
        ).get_json()
        assert body["resync"] is True  # explicit, never a silent gap

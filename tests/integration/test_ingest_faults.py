"""Ingest faults on the real emulator, seen by a client session (RELIABILITY P2, P3, P6).

P2: 10 % of ticks published twice -> 0 duplicate (symbol, seq) at the client; duplicates counted.
P3: 5 % published n+1 before n, 1 % published 2 s late -> strictly increasing seq per symbol at
    the client; a swap is either put back in order by the reorder window (when both arrive
    within it) or dropped as late; every 2 s late one dropped and counted as stale.
P6: 1 % of deliveries raise inside the Pub/Sub callback -> exactly one streaming pull for the
    whole run (no resubscribe), 0 ticks lost (nack -> redelivery), error count = injected count.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator

import orjson
import pytest

from tests.integration.brokers import Recorder, tick_bytes
from tests.support.sessions import SessionReader
from tests.support.timing import eventually
from ticker.broker.pubsub import PubSubBroker
from ticker.ops.emulator import PROJECT
from ticker.server.runtime import Runtime
from ticker.server.settings import Settings

pytestmark = pytest.mark.integration
SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN")
PER_SYMBOL = 100


@pytest.fixture
async def runtime(emulator, unique_name) -> AsyncIterator[Runtime]:
    broker = PubSubBroker(PROJECT, unique_name("faults"), unique_name("ticker-faults"))
    made = Runtime.build(Settings(sim_rate=0), broker=broker)
    await made.start()
    await eventually(made.ready, within=10, what="readiness")
    yield made
    await made.close()


async def publish(runtime: Runtime, symbol: str, seq: int) -> None:
    await runtime.broker.publish(tick_bytes(symbol, seq), {"symbol": symbol}, symbol)


async def test_duplicated_ticks_reach_clients_once(runtime):
    client = SessionReader(runtime, SYMBOLS)
    duplicated = 0
    for seq in range(1, PER_SYMBOL + 1):
        for symbol in SYMBOLS:
            await publish(runtime, symbol, seq)
            if seq % 10 == 3:  # 10 %
                await publish(runtime, symbol, seq)
                duplicated += 1
    counters = runtime.hub.counters
    expected = len(SYMBOLS) * PER_SYMBOL + duplicated
    await eventually(lambda: counters.ticks_in >= expected, within=20, what="every delivery")
    await eventually(
        lambda: len(client.seen) >= len(SYMBOLS) * PER_SYMBOL, within=5, what="client frames"
    )
    assert len(client.seen) == len(set(client.seen)), "a duplicate (symbol, seq) reached a client"
    assert counters.duplicates == duplicated
    print(f"P2: {duplicated} duplicates published, counted {counters.duplicates}, 0 at client")
    await client.stop()


async def test_reordered_and_late_ticks_never_go_backwards(runtime):
    client = SessionReader(runtime, SYMBOLS)
    swapped, late = 0, []
    for symbol in SYMBOLS:
        order = list(range(1, PER_SYMBOL + 1))
        for i in range(4, PER_SYMBOL - 1, 20):  # 5 % of ticks: n+1 goes out before n
            order[i], order[i + 1] = order[i + 1], order[i]
            swapped += 1
        late.append((symbol, order.pop(50)))  # 1 %: held back 2 s
        for seq in order:
            await publish(runtime, symbol, seq)
    await asyncio.sleep(2)  # the scenario's delay, not a synchronisation
    for symbol, seq in late:
        await publish(runtime, symbol, seq)
    counters = runtime.hub.counters
    total = len(SYMBOLS) * PER_SYMBOL
    await eventually(lambda: counters.ticks_in >= total, within=20, what="every delivery")
    await eventually(
        lambda: counters.ticks_accepted == len(client.seen), within=5, what="client frames"
    )
    for symbol in SYMBOLS:
        seqs = client.seqs(symbol)
        assert all(a < b for a, b in itertools.pairwise(seqs)), f"{symbol} went back"
    reordered = counters.order.reordered
    assert counters.stale >= len(late)
    assert counters.stale + reordered == swapped + len(late)
    print(
        f"P3: {swapped} swapped + {len(late)} late -> stale {counters.stale}, "
        f"reordered {reordered}, 0 regressions"
    )
    await client.stop()


async def test_callback_exceptions_are_nacked_redelivered_and_never_resubscribe(
    emulator, unique_name
):
    broker = PubSubBroker(PROJECT, unique_name("faults"), unique_name("ticker-p6"))
    recorder = Recorder()
    chosen = {(symbol, 7 + 25 * i) for i, symbol in enumerate(SYMBOLS)}  # 4 of 400: 1 %
    injected, lock, failed_once = [0], threading.Lock(), set()

    def fault(data: bytes, attributes: object) -> None:
        # Runs on a Pub/Sub thread: fail the first delivery of each chosen tick.
        try:
            tick = orjson.loads(data)
            key = (tick["symbol"], tick["seq"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        with lock:
            if key in chosen and key not in failed_once:
                failed_once.add(key)
                injected[0] += 1
                raise RuntimeWarning(f"injected failure for {key}")

    broker.inject_callback_fault = fault
    try:
        await broker.start(recorder)
        await eventually(broker.healthy, within=10, what="readiness")
        sent = {(symbol, seq) for seq in range(1, PER_SYMBOL + 1) for symbol in SYMBOLS}
        for symbol, seq in sorted(sent, key=lambda k: (k[1], k[0])):
            await broker.publish(tick_bytes(symbol, seq), {"symbol": symbol}, symbol)

        def received() -> set[tuple[str, int]]:
            return {
                (t["symbol"], t["seq"]) for t in (orjson.loads(d) for d, _ in recorder.messages)
            }

        await eventually(
            lambda: received() >= sent, within=30, what="every tick, redeliveries included"
        )
        stats = broker.stats()
        assert stats["streams_opened"] == 1
        assert stats["resubscribes"] == 0
        assert stats["callback_errors"] == injected[0] == len(chosen & sent)
        print(f"P6: {injected[0]} injected, {stats['callback_errors']} counted, 1 stream, 0 lost")
    finally:
        await broker.close()

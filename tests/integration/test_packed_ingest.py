"""Packed messages, order from seq and poison recovery, on the real emulator (issue 8, issue 13).

Every test publishes through the real google-cloud-pubsub client to a fresh topic, and reads what
a subscribed client session of a real `Runtime` (its own fresh subscription, no message ordering)
receives: ticks in seq order, `resync` frames counted.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable

import orjson
import pytest

from tests.support.sessions import SessionReader
from tests.support.timing import eventually, timeout
from ticker.broker.pubsub import PubSubBroker
from ticker.ops.emulator import PROJECT
from ticker.server.runtime import Runtime
from ticker.server.settings import Settings

pytestmark = pytest.mark.integration
POISON = 2**63 - 1


def _tick(symbol: str, seq: int, price: float = 100.0) -> dict[str, object]:
    return {"symbol": symbol, "price": price, "seq": seq, "ts": int(time.time() * 1000)}


def _packed(*ticks: object) -> bytes:
    return orjson.dumps({"ticks": list(ticks)})


@pytest.fixture
async def make_runtime(emulator, unique_name) -> AsyncIterator[Callable[..., object]]:
    topic = unique_name("packed")
    made: list[Runtime] = []

    async def make(**settings: object) -> Runtime:
        broker = PubSubBroker(PROJECT, topic, unique_name("ticker-packed"))
        runtime = Runtime.build(Settings(sim_rate=0, **settings), broker=broker)  # type: ignore[arg-type]
        await runtime.start()
        await eventually(runtime.ready, within=10, what="readiness")
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.close()


async def send(runtime: Runtime, *messages: bytes | dict[str, object]) -> None:
    """Publish in this order, all in flight at once (the client batches them in call order)."""
    pending = []
    for message in messages:
        if isinstance(message, dict):
            attrs = {"symbol": str(message["symbol"])}
            pending.append(runtime.broker.publish(orjson.dumps(message), attrs, ""))
        else:
            pending.append(runtime.broker.publish(message, {}, ""))
    await asyncio.gather(*pending)


async def test_packed_and_single_tick_producers_mixed_on_one_topic_reach_clients_in_order(
    make_runtime,
):
    runtime = await make_runtime()
    client = SessionReader(runtime, ("AAPL", "MSFT"))
    seqs = {"AAPL": itertools.count(1), "MSFT": itertools.count(1)}
    for _ in range(10):
        pack = _packed(*(_tick("AAPL", next(seqs["AAPL"])) for _ in range(10)))
        singles = [_tick("MSFT", next(seqs["MSFT"])) for _ in range(3)]
        await send(runtime, pack, *singles)
    await eventually(lambda: len(client.seen) >= 130, within=15, what="every tick")
    assert client.seqs("AAPL") == list(range(1, 101))
    assert client.seqs("MSFT") == list(range(1, 31))
    assert client.resyncs == []
    counters = runtime.hub.counters
    assert (counters.packed_in, counters.ticks_in) == (10, 130)
    await client.stop()


async def test_a_packed_message_with_one_malformed_tick_delivers_the_rest(make_runtime):
    runtime = await make_runtime()
    client = SessionReader(runtime, ("AAPL",))
    bad = {"symbol": "AAPL", "price": "not a number", "seq": 3, "ts": 1}
    await send(runtime, _packed(_tick("AAPL", 1), _tick("AAPL", 2), bad, _tick("AAPL", 4)))
    await eventually(lambda: len(client.seen) >= 3, within=15, what="the good ticks")
    assert client.seqs("AAPL") == [1, 2, 4]
    assert client.resyncs == ["AAPL"]  # seq 3 never exists: a gap, after the reorder window
    assert runtime.hub.counters.malformed_ticks == 1
    assert runtime.hub.counters.malformed == 0
    await client.stop()


async def test_reordered_messages_reach_clients_in_seq_order_without_resync(make_runtime):
    runtime = await make_runtime(reorder_ms=500.0)
    client = SessionReader(runtime, ("AAPL", "MSFT"))
    await send(runtime, _tick("AAPL", 1), _tick("MSFT", 1))
    await eventually(lambda: len(client.seen) >= 2, within=15, what="first ticks")
    packs = [_packed(*(_tick("AAPL", s) for s in range(n, n + 5))) for n in range(2, 27, 5)]
    singles = [_tick("MSFT", s) for s in range(2, 12)]
    # out of order on purpose: later packs first, single ticks in reverse
    await send(runtime, packs[3], packs[1], packs[4], packs[0], packs[2], *reversed(singles))
    await eventually(lambda: len(client.seen) >= 37, within=15, what="every tick")
    assert client.seqs("AAPL") == list(range(1, 27))
    assert client.seqs("MSFT") == list(range(1, 12))
    assert client.resyncs == []
    assert runtime.hub.counters.order.reordered > 0
    assert runtime.hub.counters.gaps == 0
    await client.stop()


async def test_a_hole_that_never_fills_yields_exactly_one_resync(make_runtime):
    runtime = await make_runtime(reorder_ms=50.0)
    client = SessionReader(runtime, ("AAPL",))
    await send(runtime, _packed(*(_tick("AAPL", s) for s in (1, 2, 3, 5, 6, 7))))
    await eventually(lambda: len(client.seen) >= 6, within=15, what="every tick")
    await send(runtime, _tick("AAPL", 8))
    await eventually(lambda: len(client.seen) >= 7, within=15, what="the next tick")
    assert client.seqs("AAPL") == [1, 2, 3, 5, 6, 7, 8]
    assert client.resyncs == ["AAPL"]
    assert runtime.hub.counters.gaps == 1
    await client.stop()


async def test_a_poison_seq_does_not_freeze_a_symbol_on_any_instance(make_runtime):
    """seq 2**63-1 from a foreign producer: the real producer's ticks reach clients again
    within 5 s on both instances; a producer restart (seq jumps forward) is followed at once."""
    instances = [await make_runtime(), await make_runtime()]
    clients = [SessionReader(runtime, ("AAPL",)) for runtime in instances]
    seq = itertools.count(1000)
    await send(instances[0], _tick("AAPL", next(seq), 100.0))
    await send(instances[0], _tick("AAPL", POISON, 666.0))
    for client in clients:
        await eventually(lambda c=client: 666.0 in c.prices("AAPL"), within=15, what="poison")
    poisoned = time.monotonic()
    recovered_at: list[float | None] = [None, None]
    while time.monotonic() - poisoned < timeout(10) and None in recovered_at:
        await send(instances[0], _tick("AAPL", next(seq), 101.0))
        await asyncio.sleep(0.1)
        for index, client in enumerate(clients):
            if recovered_at[index] is None and client.prices("AAPL")[-1] == 101.0:
                recovered_at[index] = time.monotonic() - poisoned
    assert None not in recovered_at, f"still frozen: {recovered_at}"
    assert max(r for r in recovered_at if r is not None) <= 5.0 * max(1.0, timeout(1))
    # a restarted producer: seq jumps forward once, followed within the reorder window
    jumped = next(seq) + 10_000_000
    started = time.monotonic()
    await send(instances[0], _tick("AAPL", jumped, 102.0))
    for client in clients:
        await eventually(lambda c=client: c.seqs("AAPL")[-1] == jumped, within=5, what="restart")
    assert time.monotonic() - started < timeout(2)
    for client in clients:
        seqs = client.seqs("AAPL")
        assert all(a != b for a, b in itertools.pairwise(seqs))
        await client.stop()
    print(f"poison recovered after {recovered_at} s")

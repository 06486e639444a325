"""Floods at ingest on real parts (issue 13 item 4, RELIABILITY P8).

- 100,000 distinct junk symbols through the real emulator into a real server process: RSS (read
  from /proc) grows by a bounded amount (the symbol cap, `TICKER_MAX_TRACKED_SYMBOLS`), a
  subscribed symbol's ticks keep arriving in order, and the tracked-symbol gauge stays at the cap.
  Before the cap every symbol stayed (~1.4 KB each: +144 MB for 100,000).
- An ingest that falls behind (slow hand-off, backlog in the client) makes readiness 503 with the
  reason, measured from Pub/Sub's `publish_time`, and ready again once it has caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from tests.integration.stack import PROJECT, start_pubsub_server
from tests.support.servers import group_rss_mb, http_status
from tests.support.timing import eventually, timeout
from tests.support.wsclient import WsClient
from ticker.broker.pubsub import PubSubBroker
from ticker.ops.emulator import PROJECT as EMULATOR_PROJECT
from ticker.server.runtime import Runtime
from ticker.server.settings import Settings

pytestmark = pytest.mark.integration
JUNK = 100_000
PER_MESSAGE = 1_000
CAP = 2_000
RSS_BOUND_MB = 40  # the cap's share (2,000 symbols) plus allocator slack; uncapped: +144 MB


def _tick(symbol: str, seq: int) -> dict[str, object]:
    return {"symbol": symbol, "price": 10.0, "seq": seq, "ts": int(time.time() * 1000)}


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_junk_symbols_leave_memory_bounded_and_live_symbols_flowing(
    start_server, emulator, unique_name
):
    topic = unique_name("flood")
    server = start_pubsub_server(start_server, emulator, topic, TICKER_MAX_TRACKED_SYMBOLS=str(CAP))
    client = WsClient(server.url, ["LIVE"])
    await client.start()
    publisher = pubsub_v1.PublisherClient()
    try:
        await _flood(server, client, publisher, topic)
    finally:
        await client.stop()
        with contextlib.suppress(gexc.GoogleAPICallError):
            publisher.stop()


async def _flood(server, client, publisher, topic) -> None:
    pid = server.proc.pid
    topic_path = publisher.topic_path(PROJECT, topic)
    warm = [publisher.publish(topic_path, orjson.dumps(_tick("LIVE", 1)), symbol="LIVE")]
    await asyncio.to_thread(lambda: [f.result(30) for f in warm])
    await eventually(lambda: client.ticks, within=15, what="the first live tick")
    before = group_rss_mb(pid)

    def flood() -> None:  # in publishing order, one message after the other: a steady feed
        for batch in range(JUNK // PER_MESSAGE):
            junk = [_tick(f"J{batch:03d}X{i:04d}", 1) for i in range(PER_MESSAGE)]
            live = _tick("LIVE", batch + 2)
            data = orjson.dumps({"ticks": [*junk, live]})
            publisher.publish(topic_path, data).result(60)

    await asyncio.to_thread(flood)
    last = JUNK // PER_MESSAGE + 1
    await eventually(lambda: client.ticks[-1][1] == last, within=60, what="every live tick")
    after = group_rss_mb(pid)
    seqs = [seq for _, seq, _, _ in client.ticks]
    assert seqs == list(range(1, last + 1)), "the subscribed symbol lost or reordered ticks"
    with urlopen_text(server.url + "/metrics") as text:
        tracked = _metric(text, "ticker_symbols_tracked")
        evicted = _metric(text, "ticker_symbols_evicted_total")
        received = _metric(text, "ticker_ticks_received_total")
    assert received >= JUNK + last
    assert tracked <= CAP
    assert evicted >= JUNK - CAP
    assert after - before <= RSS_BOUND_MB, f"RSS {before:.0f} -> {after:.0f} MB"
    assert http_status(server.url + "/readiness_check") == 200
    print(f"junk flood: RSS {before:.0f} -> {after:.0f} MB, tracked {tracked:.0f}")


@contextlib.contextmanager
def urlopen_text(url: str):
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as resp:
        yield resp.read().decode()


@pytest.fixture
async def slow_runtime(emulator, unique_name) -> AsyncIterator[Runtime]:
    broker = PubSubBroker(
        EMULATOR_PROJECT, unique_name("lag"), unique_name("ticker-lag"), max_lag=1.0
    )
    runtime = Runtime.build(Settings(sim_rate=0), broker=broker)
    await runtime.start()
    await eventually(runtime.ready, within=10, what="readiness")
    yield runtime
    await runtime.close()


async def test_readiness_is_503_while_ingest_lags_and_200_once_caught_up(slow_runtime):
    runtime = slow_runtime
    broker = runtime.broker
    assert isinstance(broker, PubSubBroker)
    broker.inject_callback_fault = lambda data, attrs: time.sleep(0.2)  # 10 threads: ~50 msg/s
    seq = 0
    lagged: str | None = None
    started = time.monotonic()
    while time.monotonic() - started < timeout(20) and lagged is None:
        pending = []
        for _ in range(20):
            seq += 1
            pending.append(broker.publish(orjson.dumps(_tick("AAPL", seq)), {}, ""))
        await asyncio.gather(*pending)
        await asyncio.sleep(0.1)  # ~150 msg/s offered against ~50 msg/s handled
        problem = runtime.readiness_problem()
        if problem and "ingest lags" in problem:
            lagged = problem
    assert lagged is not None, "readiness never reported the lag"
    assert runtime.ready() is False
    broker.inject_callback_fault = None
    await eventually(runtime.ready, within=30, what="readiness after catching up")
    lag = broker.stats()["lag"]
    assert isinstance(lag, float | int)
    assert lag < 1.0
    print(f"lag: {lagged}")

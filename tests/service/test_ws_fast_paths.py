"""/ws under a real Hypercorn (in process): the socket fast paths keep every tick, in order.

The Quart test client has no socket, so `ticker.server.transports.wsfast` falls back there; this
pins the Hypercorn shapes it relies on and the ordering across direct writes, batches and fallbacks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.typing import Origin

from tests.conftest import tick
from tests.service.streams import hypercorn_serving
from tests.support.timing import eventually, timeout
from tests.support.wsclient import frame_of
from ticker.server.runtime import Runtime
from ticker.server.transports import wsfast
from ticker.stream.session import Session


async def direct_writer_attached(session: Session) -> None:
    """Wait for /ws to find its socket writer; the failure names the internals that changed."""
    changed = list(wsfast.shape_problems()) or "none found by the checks: see for_current"
    what = f"the direct writer on real Hypercorn (changed internals: {changed})"
    await eventually(lambda: session.direct is not None, within=3.0, what=what)


async def _ticks(ws: Any, count: int) -> list[int]:
    seqs: list[int] = []
    async with asyncio.timeout(timeout(5.0)):
        while len(seqs) < count:
            frame = orjson.loads(await ws.recv())
            if frame["type"] == "ticks":
                seqs += [t["seq"] for t in frame["ticks"]]
    return seqs


async def test_direct_writes_batches_and_fallbacks_keep_every_tick_in_order():
    async with hypercorn_serving(TICKER_FLUSH_INTERVAL="0.02") as (host, runtime):
        origin = f"http://{host}"
        async with connect(f"ws://{host}/ws", origin=Origin(origin), compression="deflate") as ws:
            await ws.send(orjson.dumps({"op": "subscribe", "symbols": ["AAPL"]}).decode())
            assert orjson.loads(await ws.recv())["type"] == "subscribed"
            assert ws.protocol.extensions == []  # deflate offered, declined by default
            (session,) = runtime.hub.sessions()
            await direct_writer_attached(session)
            await eventually(lambda: session.writer_idle, within=3.0, what="the direct writer idle")
            await eventually(
                lambda: time.monotonic() - session.last_frame_at > 0.02,
                within=3.0,
                what="20 ms since the last frame",
            )
            runtime.hub.ingest(tick("AAPL", seq=1))  # idle writer: written at once
            assert not session.has_pending()
            assert await _ticks(ws, 1) == [1]
            for seq in range(2, 202):  # a burst: batched by the writer
                runtime.hub.ingest(tick("AAPL", seq=seq))
                if seq % 50 == 0:
                    await asyncio.sleep(0.005)
            assert await _ticks(ws, 200) == list(range(2, 202))
            assert session.frames_sent < 150


async def _frame(ws: Any) -> tuple[float, list[int]]:
    """The next ticks frame: when it arrived (time.monotonic) and its seqs."""
    frame = await frame_of(ws, "ticks", timeout(5.0))
    return time.monotonic(), [t["seq"] for t in frame["ticks"]]


async def idle_for_an_interval(ws: Any, runtime: Runtime, symbol: str, interval: float) -> Session:
    """Subscribe the only client to `symbol`; return its session once its writer is idle with
    the direct writer attached and its last frame more than `interval` old."""
    await ws.send(orjson.dumps({"op": "subscribe", "symbols": [symbol]}).decode())
    await ws.recv()
    (session,) = runtime.hub.sessions()
    await direct_writer_attached(session)
    await eventually(lambda: session.writer_idle, within=3.0, what="the writer idle")
    await eventually(
        lambda: time.monotonic() - session.last_frame_at > interval,
        within=3.0,
        what="an interval since the last frame",
    )
    return session


async def test_a_busy_client_gets_one_frame_per_instant_written_by_the_sweep():
    interval = 0.05  # the flush floor: every frame at least this far apart for one client
    async with (
        hypercorn_serving(TICKER_FLUSH_INTERVAL=str(interval)) as (host, runtime),
        connect(f"ws://{host}/ws", origin=Origin(f"http://{host}")) as ws,
    ):
        session = await idle_for_an_interval(ws, runtime, "NVDA", interval)
        runtime.hub.ingest(tick("NVDA", seq=1))  # idle for an interval: written at once
        first_at, first = await _frame(ws)
        for seq in (2, 3, 4):  # too soon after it: these wait for the clock's next instant
            runtime.hub.ingest(tick("NVDA", seq=seq))
        second_at, second = await _frame(ws)
        swept = runtime.flush.swept
        for seq in (5, 6):  # the writer rests on: the sweep writes these, the task sleeps
            runtime.hub.ingest(tick("NVDA", seq=seq))
        third_at, third = await _frame(ws)
        assert (first, second, third) == ([1], [2, 3, 4], [5, 6])
        assert second_at - first_at >= interval * 0.8  # before: sent at once by the woken writer
        assert third_at - second_at >= interval * 0.8
        assert runtime.flush.swept > swept
        assert not session.writer_idle  # still resting with the clock, not woken for frames


async def test_a_busy_writer_rests_through_an_empty_instant_then_goes_idle_when_quiet():
    interval = 0.1  # the flush floor; a writer counts as busy for BUSY_INTERVALS of these
    async with (
        hypercorn_serving(TICKER_FLUSH_INTERVAL=str(interval)) as (host, runtime),
        connect(f"ws://{host}/ws", origin=Origin(f"http://{host}")) as ws,
    ):
        session = await idle_for_an_interval(ws, runtime, "AMD", interval)
        runtime.hub.ingest(tick("AMD", seq=1))  # written at once
        for seq in (2, 3):  # too soon: the writer rests, the next instant writes them
            runtime.hub.ingest(tick("AMD", seq=seq))
        assert [await _frame(ws) for _ in range(2)][1][1] == [2, 3]
        await asyncio.sleep(interval * 1.5)  # an instant with nothing pending went by
        assert not session.writer_idle  # busy: it rests on (before: woken, only to go idle)
        await eventually(lambda: session.writer_idle, within=3.0, what="the quiet writer idle")
        direct = session.direct_sent
        runtime.hub.ingest(tick("AMD", seq=4))  # quiet again: straight onto the socket
        assert (await _frame(ws))[1] == [4]
        assert session.direct_sent == direct + 1


async def test_a_quiet_client_gets_one_frame_per_tick_through_the_direct_path():
    async with (
        hypercorn_serving() as (host, runtime),
        connect(f"ws://{host}/ws", origin=Origin(f"http://{host}")) as ws,
    ):
        await ws.send(orjson.dumps({"op": "subscribe", "symbols": ["MSFT"]}).decode())
        await ws.recv()
        (session,) = runtime.hub.sessions()
        await direct_writer_attached(session)
        for seq in range(1, 6):
            await eventually(lambda: session.writer_idle, within=3.0, what="the writer idle")
            runtime.hub.ingest(tick("MSFT", seq=seq))
            assert not session.has_pending()  # written synchronously, nothing queued
            assert await _ticks(ws, 1) == [seq]
        assert (session.direct_sent, session.ticks_sent) == (5, 5)  # counted, and apart
        metrics = await _get(host, "/metrics")
        assert 'ticker_direct_writes_total{transport="websocket"} 5.0' in metrics


async def _get(host: str, path: str) -> str:
    """The body of a plain HTTP/1.1 GET (the server closes after it)."""
    name, port = host.split(":")
    reader, writer = await asyncio.open_connection(name, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    async with asyncio.timeout(timeout(5.0)):
        raw = await reader.read()
    writer.close()
    return raw.decode().partition("\r\n\r\n")[2]

"""Every transport's stream goes through one lifecycle and counts what it sends by one rule.

The rule (`ticker/stream/session.py`): a frame is one message the client receives (a WebSocket
message, an SSE event, a long-poll answer), heartbeats included; each tick counts once; latency
is sampled once per frame that carries ticks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from tests.conftest import tick
from tests.service.streams import ORIGIN, WAIT, recv, serving, sse_events
from tests.support.timing import eventually
from ticker.stream.totals import send_totals

LOGGER = "ticker.server.transports"


def _now_tick(seq: int) -> Any:
    return tick(seq=seq, ts=int(time.time() * 1000))


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.msg for r in caplog.records if r.name == LOGGER and isinstance(r.msg, dict)]


async def test_a_long_poll_answer_is_one_frame_and_records_its_latency():
    async with serving() as (client, runtime):
        runtime.hub.ingest(_now_tick(1))
        first = await (await client.get("/poll?symbols=AAPL")).get_json()
        for seq in (2, 3):
            runtime.hub.ingest(_now_tick(seq))
        second = await (await client.get(f"/poll?symbols=AAPL&cursor={first['cursor']}")).get_json()
        assert [t["seq"] for t in second["ticks"]] == [2, 3]
        totals = send_totals(runtime.hub)["longpoll"]
        assert (totals.frames, totals.ticks) == (2, 3)
        assert runtime.latency.count == 2  # one sample per answer with ticks


async def test_sse_heartbeats_count_as_frames_like_every_other_event():
    async with serving(TICKER_HEARTBEAT_INTERVAL="0.05") as (client, runtime):
        conn = client.request("/sse?symbols=AAPL", headers={})
        await conn.__aenter__()
        await conn.send_complete()
        raw = ""
        async with asyncio.timeout(WAIT):
            while len([e for e in sse_events(raw) if "data" in e]) < 3:  # subscribed, 2 beats
                raw += (await conn.receive()).decode()
        received = len([e for e in sse_events(raw) if "data" in e])
        (session,) = runtime.hub.sessions()
        assert received <= session.frames_sent <= received + 1  # the next one may be on its way
        await conn.disconnect()


async def test_a_websocket_counts_every_message_and_one_latency_sample_per_ticks_frame():
    async with (
        serving() as (client, runtime),
        client.websocket("/ws", headers={"Origin": ORIGIN}) as ws,
    ):
        await ws.send(json.dumps({"op": "subscribe", "symbols": ["AAPL"]}))
        assert (await recv(ws))["type"] == "subscribed"
        runtime.hub.ingest(_now_tick(1))
        assert (await recv(ws))["type"] == "ticks"
        (session,) = runtime.hub.sessions()
        await eventually(lambda: session.frames_sent == 2, within=3.0, what="two frames sent")
        assert (session.ticks_sent, session.direct_sent, runtime.latency.count) == (1, 0, 1)


async def test_websocket_and_sse_streams_log_open_and_close_and_polls_do_not(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with serving() as (client, runtime):
        async with client.websocket("/ws", headers={"Origin": ORIGIN}) as ws:
            await ws.send(json.dumps({"op": "subscribe", "symbols": ["AAPL"]}))
            await recv(ws)
        conn = client.request("/sse?symbols=AAPL", headers={})
        await conn.__aenter__()
        await conn.send_complete()
        await conn.receive()
        await conn.disconnect()
        await (await client.get("/poll?symbols=AAPL")).get_json()
        await eventually(lambda: not runtime.hub.sessions(), within=3.0, what="no session left")
        await eventually(lambda: len(_events(caplog)) >= 4, within=3.0, what="four log events")
    events = _events(caplog)
    opened = [e["transport"] for e in events if e["message"] == "stream_open"]
    closed = [e for e in events if e["message"] == "stream_close"]
    assert opened == ["websocket", "sse"]
    assert sorted(e["transport"] for e in closed) == ["sse", "websocket"]
    for event in closed:
        assert {"session", "peer", "seconds", "frames_sent", "ticks_sent"} <= set(event)
    assert next(e for e in closed if e["transport"] == "websocket")["reason"] == "peer closed"


async def test_a_refused_request_releases_its_stream_and_counts_the_error():
    async with serving(TICKER_MAX_CONNECTIONS_PER_ADDRESS="1") as (client, runtime):
        for path in ("/sse?symbols=", "/poll?symbols=", "/sse?symbols=", "/poll?symbols="):
            assert (await client.get(path)).status_code == 400
        assert runtime.hub.counters.errors_by_code["bad_symbol"] == 4
        assert (await client.get("/poll?symbols=AAPL")).status_code == 200  # nothing held

"""`/sse` in process: event format, cursors as ids, resume from Last-Event-ID or ?cursor, errors."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from tests.conftest import tick
from tests.service.streams import ORIGIN, WAIT, serving, sse_events
from tests.support.timing import eventually
from ticker.core.cursor import decode_cursor


class Stream:
    """An open /sse response read event by event."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.buffer = ""

    async def event(self, data_type: str | None = None) -> dict[str, str]:
        """The next complete event (optionally the next whose data has `type` == data_type)."""
        async with asyncio.timeout(WAIT):
            while True:
                events = sse_events(self.buffer)
                if events:
                    first = self.buffer.index("\n\n") + 2
                    self.buffer = self.buffer[first:]
                    event = events[0]
                    if data_type is None or (
                        "data" in event and orjson.loads(event["data"])["type"] == data_type
                    ):
                        return event
                    continue
                self.buffer += (await self.conn.receive()).decode()


async def _open(client: Any, query: str, headers: dict[str, str] | None = None) -> Any:
    conn = client.request(f"/sse?{query}", headers=headers or {})
    await conn.__aenter__()
    await conn.send_complete()
    return conn


async def test_stream_starts_with_retry_then_subscribed_snapshot_and_live_ticks():
    async with serving() as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        conn = await _open(client, "symbols=aapl,MSFT")
        stream = Stream(conn)
        assert await stream.event() == {"retry": "1000"}
        assert conn.status_code == 200
        assert conn.headers["content-type"].startswith("text/event-stream")
        sub = await stream.event()
        assert orjson.loads(sub["data"])["symbols"] == ["AAPL", "MSFT"]
        assert "id" not in sub
        snap = await stream.event("ticks")
        assert [t["seq"] for t in orjson.loads(snap["data"])["ticks"]] == [1]
        assert decode_cursor(snap["id"], runtime.settings.cursor_key, 200) == {"AAPL": 1}
        runtime.hub.ingest(tick("MSFT", seq=5))
        live = await stream.event("ticks")
        assert decode_cursor(live["id"], runtime.settings.cursor_key, 200) == {
            "AAPL": 1,
            "MSFT": 5,
        }
        assert runtime.hub.connections_by_transport()["sse"] == 1
        await conn.disconnect()
        await eventually(
            lambda: runtime.hub.connections_by_transport()["sse"] == 0,
            within=3.0,
            what="0 sse in the hub",
        )


@pytest.mark.parametrize("via", ["header", "query"])
async def test_resume_from_an_event_id_replays_what_was_missed(via):
    async with serving() as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        first = await _open(client, "symbols=AAPL")
        cursor = (await Stream(first).event("ticks"))["id"]
        await first.disconnect()
        for seq in range(2, 6):
            runtime.hub.ingest(tick(seq=seq))
        if via == "header":
            conn = await _open(client, "symbols=AAPL&cursor=ignored", {"Last-Event-ID": cursor})
        else:
            conn = await _open(client, f"symbols=AAPL&cursor={cursor}")
        stream = Stream(conn)
        assert orjson.loads((await stream.event("subscribed"))["data"])["recovered"] is True
        replay = await stream.event("ticks")
        assert [t["seq"] for t in orjson.loads(replay["data"])["ticks"]] == [2, 3, 4, 5]


async def test_a_resume_older_than_history_sends_resync_then_the_snapshot():
    async with serving(TICKER_HISTORY_SIZE="16") as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        first = await _open(client, "symbols=AAPL")
        cursor = (await Stream(first).event("ticks"))["id"]
        await first.disconnect()
        for seq in range(2, 40):
            runtime.hub.ingest(tick(seq=seq))
        stream = Stream(await _open(client, "symbols=AAPL", {"Last-Event-ID": cursor}))
        assert orjson.loads((await stream.event("resync"))["data"])["symbols"] == ["AAPL"]
        snap = await stream.event("ticks")
        assert [t["seq"] for t in orjson.loads(snap["data"])["ticks"]] == [39]


@pytest.mark.parametrize(
    ("query", "headers", "code"),
    [
        ("", {}, "bad_symbol"),
        ("symbols=../x", {}, "bad_symbol"),
        ("symbols=" + ",".join(f"S{i}" for i in range(300)), {}, "too_many_symbols"),
        ("symbols=AAPL&cursor=xx.yy", {}, "bad_cursor"),
        ("symbols=AAPL", {"Last-Event-ID": "garbage"}, "bad_cursor"),
        ("symbols=AAPL&max_rate=0", {}, "bad_max_rate"),
        ("symbols=AAPL&max_rate=x", {}, "bad_max_rate"),
    ],
)
async def test_bad_requests_get_400_with_a_json_message(query, headers, code):
    async with serving() as (client, runtime):
        resp = await client.get(f"/sse?{query}", headers=headers)
        assert resp.status_code == 400
        body = await resp.get_json()
        assert body["type"] == "error"
        assert body["code"] == code
        assert runtime.hub.connections_by_transport()["sse"] == 0


async def test_a_foreign_origin_is_refused_and_no_origin_is_allowed():
    async with serving() as (client, _):
        resp = await client.get("/sse?symbols=AAPL", headers={"Origin": "http://evil.example"})
        assert resp.status_code == 403
        conn = await _open(client, "symbols=AAPL", {"Origin": ORIGIN})
        assert await Stream(conn).event() == {"retry": "1000"}
        await conn.disconnect()


async def test_heartbeat_events_the_page_can_see_flow_while_idle():
    async with serving(TICKER_HEARTBEAT_INTERVAL="0.05") as (client, _):
        conn = await _open(client, "symbols=AAPL")
        stream = Stream(conn)
        await stream.event()  # retry
        await stream.event()  # subscribed
        for _ in range(2):  # `message` events (no comment lines: EventSource never shows those)
            beat = orjson.loads((await stream.event())["data"])
            assert beat["type"] == "heartbeat"
            assert beat["interval"] == 0.05
            assert abs(beat["ts"] - time.time() * 1000) < 5000
        await conn.disconnect()


async def test_max_age_sends_reconnect_and_ends_the_stream():
    async with serving(TICKER_MAX_CONNECTION_AGE="1") as (client, runtime):
        conn = await _open(client, "symbols=AAPL")
        stream = Stream(conn)
        event = await stream.event("reconnect")
        assert orjson.loads(event["data"])["reason"] == "max connection age reached"
        await eventually(
            lambda: runtime.hub.connections_by_transport()["sse"] == 0,
            within=3.0,
            what="0 sse in the hub",
        )

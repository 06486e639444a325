"""max_rate in process, all three transports: echo, clamp, bad values, pacing with the latest price.

Ticks are ingested straight into the hub in bursts; the rates are high (10-20/s) so the tests stay
short, and the bounds are scaled waits, not timings. The real-server timing check (1 tick/s on a
20 ticks/s feed) is `tests/integration/test_clients.py`.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from tests.conftest import tick
from tests.service.streams import WAIT, recv, recv_type, serving
from tests.service.test_sse import Stream, _open
from ticker.core.cursor import decode_cursor


def _sub(*symbols: str, **extra: object) -> str:
    return orjson.dumps({"op": "subscribe", "symbols": list(symbols), **extra}).decode()


async def test_ws_subscribed_echoes_the_rate_and_a_burst_ends_with_its_latest_price():
    async with serving() as (client, runtime):
        runtime.hub.ingest(tick(seq=1, price=1.0))
        async with client.websocket("/ws") as ws:
            await ws.send(_sub("AAPL", max_rate=10))
            assert await recv(ws) == {
                "type": "subscribed",
                "symbols": ["AAPL"],
                "recovered": False,
                "max_rate": 10.0,
            }
            assert [t["seq"] for t in (await recv(ws))["ticks"]] == [1]  # the snapshot at once
            sent = time.monotonic()
            for seq in range(2, 30):
                runtime.hub.ingest(tick(seq=seq, price=float(seq)))
            got = await recv_type(ws, "ticks")
            late = time.monotonic() - sent
            assert [t["seq"] for t in got["ticks"]] == [29]  # conflated to the latest
            assert late >= 0.05  # held: the interval after the snapshot is 0.1 s
            assert runtime.hub.counters.errors_by_code == {}


async def test_ws_a_rate_above_the_ceiling_is_clamped_and_echoed():
    async with serving(TICKER_MAX_RATE="5") as (client, _), client.websocket("/ws") as ws:
        await ws.send(_sub("AAPL", max_rate=500))
        assert (await recv(ws))["max_rate"] == 5.0


@pytest.mark.parametrize("value", [0, -1, "2", True, [1], 1e9])
async def test_ws_a_bad_rate_gets_an_error_frame_and_the_connection_stays(value):
    async with serving() as (client, runtime), client.websocket("/ws") as ws:
        await ws.send(_sub("AAPL", max_rate=value))
        error = await recv(ws)
        assert error["type"] == "error"
        assert error["code"] == "bad_max_rate"
        assert "max_rate" in error["message"]
        await ws.send(_sub("AAPL"))
        reply = await recv(ws)
        assert reply["type"] == "subscribed"
        assert "max_rate" not in reply
        assert runtime.hub.counters.errors_by_code["bad_max_rate"] == 1


async def test_ws_resubscribing_without_a_rate_lifts_it_and_resume_stays_recovered():
    async with serving() as (client, runtime):
        for seq in range(1, 11):
            runtime.hub.ingest(tick(seq=seq))
        async with client.websocket("/ws") as ws:
            await ws.send(_sub("AAPL", since={"AAPL": 3}, max_rate=1))
            reply = await recv(ws)
            assert reply["recovered"] is True
            assert [t["seq"] for t in (await recv(ws))["ticks"]] == [10]  # the replay's latest
            await ws.send(_sub("AAPL"))
            await recv_type(ws, "subscribed")
            for seq in range(11, 14):
                runtime.hub.ingest(tick(seq=seq))
            seqs: list[int] = []
            while len(seqs) < 3:
                seqs += [t["seq"] for t in (await recv_type(ws, "ticks"))["ticks"]]
            assert seqs == [11, 12, 13]  # every tick again, no resync
            runtime.hub.ingest(tick(seq=14))
            assert (await recv(ws))["type"] == "ticks"


async def test_sse_paces_and_its_cursor_covers_only_what_was_sent():
    async with serving(TICKER_POLL_TIMEOUT="0.1") as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        conn = await _open(client, "symbols=AAPL&max_rate=10")
        stream = Stream(conn)
        sub = orjson.loads((await stream.event("subscribed"))["data"])
        assert sub["max_rate"] == 10.0
        first = await stream.event("ticks")
        for seq in range(2, 20):
            runtime.hub.ingest(tick(seq=seq))
        last = await stream.event("ticks")
        assert [t["seq"] for t in orjson.loads(last["data"])["ticks"]] == [19]
        assert decode_cursor(first["id"], runtime.settings.cursor_key, 10) == {"AAPL": 1}
        assert decode_cursor(last["id"], runtime.settings.cursor_key, 10) == {"AAPL": 19}
        await conn.disconnect()
        resp = await client.get(f"/poll?symbols=AAPL&cursor={last['id']}", headers={})
        assert resp.status_code == 200  # the event id is a cursor any fallback accepts


async def test_poll_with_a_rate_is_held_one_interval_and_answers_the_latest_only():
    async with serving() as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        first = await (await client.get("/poll?symbols=AAPL&max_rate=5")).get_json()
        assert first["max_rate"] == 5.0
        for seq in range(2, 9):
            runtime.hub.ingest(tick(seq=seq))
        started = time.monotonic()
        resp = await client.get(f"/poll?symbols=AAPL&max_rate=5&cursor={first['cursor']}")
        body = await resp.get_json()
        assert time.monotonic() - started >= 0.19  # 1/5 s
        assert [t["seq"] for t in body["ticks"]] == [8]
        assert "resync" not in body


async def test_poll_with_a_rate_is_answered_early_on_drain():
    async with serving(TICKER_POLL_TIMEOUT="30") as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        first = await (await client.get("/poll?symbols=AAPL")).get_json()
        held = asyncio.create_task(
            client.get(f"/poll?symbols=AAPL&max_rate=0.01&cursor={first['cursor']}")
        )
        while runtime.hub.connections_by_transport()["longpoll"] == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        for session in runtime.hub.sessions():
            session.end(1012, "server draining")
        resp = await asyncio.wait_for(held, WAIT)
        assert resp.status_code == 200


async def test_poll_with_a_rate_and_nothing_new_waits_for_the_first_tick_then_answers_it():
    async with serving(TICKER_POLL_TIMEOUT="2") as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        first = await (await client.get("/poll?symbols=AAPL")).get_json()
        url = f"/poll?symbols=AAPL&max_rate=20&cursor={first['cursor']}"
        started = time.monotonic()
        idle = await (await client.get(url)).get_json()  # nothing comes: one poll_timeout
        assert idle["ticks"] == []
        assert time.monotonic() - started < 3.5  # held once (2 s), not twice (4 s)
        held = asyncio.create_task(client.get(url))
        while runtime.hub.connections_by_transport()["longpoll"] == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # past the 1/20 s interval: the first tick answers at once
        runtime.hub.ingest(tick(seq=2))
        body = await (await asyncio.wait_for(held, WAIT)).get_json()
        assert [t["seq"] for t in body["ticks"]] == [2]


async def test_sse_cursor_leaves_out_a_tick_still_held_for_another_symbol():
    async with serving() as (client, runtime):
        hub, key = runtime.hub, runtime.settings.cursor_key
        hub.ingest(tick("AAPL", seq=1))
        hub.ingest(tick("MSFT", seq=1))
        conn = await _open(client, "symbols=AAPL,MSFT&max_rate=5")
        stream = Stream(conn)
        await stream.event("ticks")  # both snapshots
        hub.ingest(tick("MSFT", seq=2))  # held for 0.2 s
        event = await stream.event("ticks")
        assert decode_cursor(event["id"], key, 10) == {"AAPL": 1, "MSFT": 2}
        hub.ingest(tick("MSFT", seq=3))  # held again: MSFT's interval restarted
        hub.ingest(tick("AAPL", seq=2))  # AAPL's interval is long over: goes at once
        event = await stream.event("ticks")
        assert [t["symbol"] for t in orjson.loads(event["data"])["ticks"]] == ["AAPL"]
        assert decode_cursor(event["id"], key, 10) == {"AAPL": 2, "MSFT": 2}  # not 3: unsent
        event = await stream.event("ticks")
        assert decode_cursor(event["id"], key, 10) == {"AAPL": 2, "MSFT": 3}
        await conn.disconnect()

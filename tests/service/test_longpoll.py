"""`/poll` in process: snapshot at once, held polls, cursors, resync, errors, counting."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import tick
from tests.service.streams import BASE_ENV, serving
from tests.support.timing import eventually

TOKEN = BASE_ENV["TICKER_ADMIN_TOKEN"]


async def _poll(client, query: str, **headers: str):
    resp = await client.get(f"/poll?{query}", headers=headers)
    return resp.status_code, await resp.get_json()


async def test_without_a_cursor_the_snapshot_comes_at_once():
    async with serving(TICKER_POLL_TIMEOUT="30") as (client, runtime):
        runtime.hub.ingest(tick(seq=3))
        status, body = await asyncio.wait_for(_poll(client, "symbols=AAPL,MSFT"), 2)
        assert status == 200
        assert [t["seq"] for t in body["ticks"]] == [3]
        assert "resync" not in body
        assert isinstance(body["cursor"], str)


async def test_with_a_cursor_newer_ticks_come_at_once_in_order_without_duplicates():
    async with serving() as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        _, first = await _poll(client, "symbols=AAPL")
        for seq in range(2, 6):
            runtime.hub.ingest(tick(seq=seq))
        _, second = await _poll(client, f"symbols=AAPL&cursor={first['cursor']}")
        assert [t["seq"] for t in second["ticks"]] == [2, 3, 4, 5]
        runtime.hub.ingest(tick(seq=6))
        _, third = await _poll(client, f"symbols=AAPL&cursor={second['cursor']}")
        assert [t["seq"] for t in third["ticks"]] == [6]


async def test_an_idle_poll_is_held_then_answered_by_the_next_tick():
    async with serving() as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        _, first = await _poll(client, "symbols=AAPL")
        held = asyncio.create_task(_poll(client, f"symbols=AAPL&cursor={first['cursor']}"))
        await eventually(
            lambda: runtime.hub.connections_by_transport()["longpoll"] == 1,
            within=3.0,
            what="1 longpoll in the hub",
        )
        assert not held.done()
        runtime.hub.ingest(tick(seq=2))
        _, body = await asyncio.wait_for(held, 2)
        assert [t["seq"] for t in body["ticks"]] == [2]
        assert runtime.hub.connections_by_transport()["longpoll"] == 0


async def test_an_idle_poll_times_out_empty_with_the_same_position():
    async with serving(TICKER_POLL_TIMEOUT="0.2") as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        _, first = await _poll(client, "symbols=AAPL")
        _, body = await asyncio.wait_for(_poll(client, f"symbols=AAPL&cursor={first['cursor']}"), 3)
        assert body["ticks"] == []
        assert body["cursor"] == first["cursor"]
        assert runtime.hub.connections_by_transport()["longpoll"] == 0


async def test_a_cursor_older_than_history_gets_the_snapshot_and_resync():
    async with serving(TICKER_HISTORY_SIZE="16") as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        _, first = await _poll(client, "symbols=AAPL")
        for seq in range(2, 50):
            runtime.hub.ingest(tick(seq=seq))
        _, body = await _poll(client, f"symbols=AAPL&cursor={first['cursor']}")
        assert body["resync"] is True
        assert [t["seq"] for t in body["ticks"]] == [49]


async def test_a_gap_while_held_answers_with_resync():
    async with serving() as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        _, first = await _poll(client, "symbols=AAPL")
        held = asyncio.create_task(_poll(client, f"symbols=AAPL&cursor={first['cursor']}"))
        await eventually(
            lambda: runtime.hub.connections_by_transport()["longpoll"] == 1,
            within=3.0,
            what="1 longpoll in the hub",
        )
        runtime.hub.ingest(tick(seq=9))
        _, body = await asyncio.wait_for(held, 2)
        assert body["resync"] is True
        assert [t["seq"] for t in body["ticks"]] == [9]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "bad_symbol"),
        ("symbols=", "bad_symbol"),
        ("symbols=AAPL,<script>", "bad_symbol"),
        ("symbols=" + "A" * 5000, "too_many_symbols"),
        ("symbols=AAPL&cursor=", "bad_cursor"),
        ("symbols=AAPL&cursor=abc", "bad_cursor"),
        ("symbols=AAPL&cursor=eyJBQVBMIjotMX0.AAAAAAAAAAAAAAAA", "bad_cursor"),
        ("symbols=AAPL&max_rate=0", "bad_max_rate"),
        ("symbols=AAPL&max_rate=-2", "bad_max_rate"),
        ("symbols=AAPL&max_rate=fast", "bad_max_rate"),
        ("symbols=AAPL&max_rate=nan", "bad_max_rate"),
        ("symbols=AAPL&max_rate=inf", "bad_max_rate"),
        ("symbols=AAPL&max_rate=1e9", "bad_max_rate"),
        ("symbols=AAPL&max_rate=" + "1" * 40, "bad_max_rate"),
    ],
)
async def test_bad_requests_get_400_with_a_json_message(query, code):
    async with serving() as (client, _runtime):
        status, body = await _poll(client, query)
        assert status == 400
        assert body == {"type": "error", "code": code, "message": body["message"]}


async def test_a_foreign_origin_is_refused():
    async with serving() as (client, _):
        status, body = await _poll(client, "symbols=AAPL", Origin="null")
        assert status == 403
        assert body["code"] == "origin_not_allowed"


async def test_a_poller_counts_as_connected_between_polls_and_once_while_held():
    async with serving() as (client, runtime):
        stats = runtime_stats(client)
        runtime.hub.ingest(tick(seq=1))
        _, first = await _poll(client, "symbols=AAPL,MSFT")
        view = await stats()
        assert view["instance"]["by_transport"]["longpoll"] == 1  # between polls, not 0
        assert view["instance"]["symbols"] == {"AAPL": 1, "MSFT": 1}
        held = asyncio.create_task(_poll(client, f"symbols=AAPL,MSFT&cursor={first['cursor']}"))
        await eventually(
            lambda: runtime.hub.connections_by_transport()["longpoll"] == 1,
            within=3.0,
            what="1 longpoll in the hub",
        )
        view = await stats()
        assert view["instance"]["by_transport"]["longpoll"] == 1  # held: counted once, not twice
        assert view["cluster"]["symbols"] == {"AAPL": 1, "MSFT": 1}
        runtime.hub.ingest(tick(seq=2))
        await asyncio.wait_for(held, 2)
        assert (await stats())["instance"]["by_transport"]["longpoll"] == 1


async def test_a_poller_that_stops_is_no_longer_counted_after_the_grace():
    async with serving() as (client, runtime):
        runtime.pollers.grace = 0.2
        await _poll(client, "symbols=AAPL")
        assert len(runtime.pollers.waiting()) == 1
        await asyncio.sleep(0.3)  # the grace is wall time: nothing to wait on but the clock
        assert (await runtime_stats(client)())["instance"]["by_transport"]["longpoll"] == 0


def runtime_stats(client):
    async def get():
        resp = await client.get("/admin/api/stats", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status_code == 200
        return await resp.get_json()

    return get

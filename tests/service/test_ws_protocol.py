"""`/ws` in process (Quart test client): protocol, every kind of bad input, admission, limits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import pytest
from quart.testing import WebsocketResponseError

from tests.conftest import tick
from tests.service.streams import ORIGIN, WAIT, close_code, recv, recv_type, serving
from tests.support.timing import eventually

HEADERS = {"Origin": ORIGIN}


def _sub(*symbols: str, **extra: object) -> str:
    return orjson.dumps({"op": "subscribe", "symbols": list(symbols), **extra}).decode()


async def test_subscribe_replies_sends_the_snapshot_then_live_ticks():
    async with serving() as (client, runtime):
        runtime.hub.ingest(tick("AAPL", seq=1))
        async with client.websocket("/ws", headers=HEADERS) as ws:
            await ws.send(_sub("aapl", "MSFT"))
            assert await recv(ws) == {
                "type": "subscribed",
                "symbols": ["AAPL", "MSFT"],
                "recovered": False,
            }
            assert [t["seq"] for t in (await recv(ws))["ticks"]] == [1]
            runtime.hub.ingest(tick("MSFT", seq=9))
            assert (await recv(ws))["ticks"][0]["symbol"] == "MSFT"


async def test_resume_with_since_replays_every_missed_tick():
    async with serving() as (client, runtime):
        for seq in range(1, 8):
            runtime.hub.ingest(tick(seq=seq))
        async with client.websocket("/ws", headers=HEADERS) as ws:
            await ws.send(_sub("AAPL", since={"AAPL": 4}))
            assert (await recv(ws))["recovered"] is True
            assert [t["seq"] for t in (await recv(ws))["ticks"]] == [5, 6, 7]


async def test_unsubscribe_stops_the_symbol():
    async with serving() as (client, runtime), client.websocket("/ws", headers=HEADERS) as ws:
        await ws.send(_sub("AAPL", "MSFT"))
        await recv_type(ws, "subscribed")
        await ws.send('{"op":"unsubscribe","symbols":["AAPL"]}')
        assert await recv(ws) == {"type": "unsubscribed", "symbols": ["AAPL"]}
        runtime.hub.ingest(tick("AAPL", seq=1))
        runtime.hub.ingest(tick("MSFT", seq=1))
        assert [t["symbol"] for t in (await recv(ws))["ticks"]] == ["MSFT"]


async def test_ping_gets_pong_with_the_nonce():
    async with serving() as (client, _), client.websocket("/ws", headers=HEADERS) as ws:
        await ws.send('{"op":"ping","nonce":"n1"}')
        pong = await recv(ws)
        assert pong["type"] == "pong"
        assert pong["nonce"] == "n1"


BAD_INPUT = [
    ("not json", "bad_json"),
    (b"\xff\xfe\x00", "bad_frame"),  # binary frames are refused whatever they carry
    (b'{"op":"ping"}', "bad_frame"),  # even valid JSON (the contract says JSON text frames)
    # an empty binary frame crashes the Quart test client itself; tests/e2e covers it for real
    ("", "bad_frame"),
    ("[]", "bad_frame"),
    ('[{"op":"subscribe","symbols":["AAPL"]}]', "bad_frame"),  # batched frames
    ("42", "bad_frame"),
    ('{"symbols":["AAPL"]}', "unknown_op"),
    ('{"op":"<script>alert(1)</script>"}', "unknown_op"),
    ('{"op":7}', "unknown_op"),
    ('{"op":"subscribe"}', "bad_frame"),
    ('{"op":"subscribe","symbols":"AAPL"}', "bad_frame"),
    ('{"op":"subscribe","symbols":[]}', "bad_frame"),
    ('{"op":"subscribe","symbols":[1]}', "bad_symbol"),
    ('{"op":"subscribe","symbols":["../etc"]}', "bad_symbol"),
    ('{"op":"subscribe","symbols":["' + "A" * 1024 + '"]}', "bad_symbol"),
    ('{"op":"subscribe","symbols":["<script>"]}', "bad_symbol"),
    ('{"op":"subscribe","symbols":["AAPL"],"since":[1]}', "bad_since"),
    ('{"op":"subscribe","symbols":["AAPL"],"since":{"AAPL":-1}}', "bad_since"),
    ('{"op":"subscribe","symbols":["AAPL"],"since":{"AAPL":"7"}}', "bad_since"),
    ('{"op":"subscribe","symbols":["AAPL"],"since":{"AAPL":1e30}}', "bad_since"),
    ('{"op":"unsubscribe","symbols":null}', "bad_frame"),
]


@pytest.mark.parametrize(("data", "code"), BAD_INPUT)
async def test_bad_input_gets_an_error_frame_and_the_connection_stays(data, code):
    async with serving() as (client, runtime), client.websocket("/ws", headers=HEADERS) as ws:
        await ws.send(data)
        async with asyncio.timeout(WAIT):
            raw = await ws.receive()
        assert "<" not in raw  # client input is never echoed as markup
        error = orjson.loads(raw)
        assert error["type"] == "error"
        assert error["code"] == code
        await ws.send(_sub("AAPL"))
        assert (await recv(ws))["type"] == "subscribed"
        assert runtime.hub.counters.errors_by_code[code] == 1


async def test_too_many_symbols_on_one_connection_is_refused():
    env = {"TICKER_MAX_SYMBOLS": "3"}
    async with serving(**env) as (client, _), client.websocket("/ws", headers=HEADERS) as ws:
        await ws.send(_sub("A", "B"))
        await recv_type(ws, "subscribed")
        await ws.send(_sub("C", "D"))
        assert (await recv(ws))["code"] == "too_many_symbols"
        await ws.send(_sub(*[f"S{i}" for i in range(300)]))
        assert (await recv(ws))["code"] == "too_many_symbols"


async def test_an_oversized_frame_closes_1009():
    env = {"TICKER_MAX_FRAME_BYTES": "1024"}
    async with serving(**env) as (client, _), client.websocket("/ws", headers=HEADERS) as ws:
        await ws.send("x" * 1025)
        assert (await close_code(ws))[0] == 1009


@pytest.mark.parametrize(
    "origin",
    ["null", "http://evil.example", "http://localhost.evil.example", "https://localhost"],
)
async def test_a_foreign_origin_is_refused_before_accept(origin):
    headers = {"Origin": origin}
    async with serving() as (client, runtime):
        async with client.websocket("/ws", headers=headers) as ws:
            with pytest.raises(WebsocketResponseError) as err:
                await ws.receive()
            assert err.value.response.status_code == 403
            assert not ws.accepted
        assert runtime.hub.connections_by_transport()["websocket"] == 0


async def test_a_native_client_without_origin_is_accepted_and_counted_as_native():
    async with serving() as (client, runtime):
        async with client.websocket("/ws") as ws:
            await ws.send(_sub("AAPL"))
            assert (await recv(ws))["type"] == "subscribed"
        async with client.websocket("/ws", headers=HEADERS) as ws:
            await ws.send(_sub("AAPL"))
            assert (await recv(ws))["type"] == "subscribed"
        opened = runtime.hub.counters.opened
        assert opened[("websocket", "native")] == 1
        assert opened[("websocket", "browser")] == 1
        metrics = (await (await client.get("/metrics")).get_data()).decode()
        assert (
            'ticker_connections_opened_total{client="native",transport="websocket"} 1.0' in metrics
        )


async def test_require_origin_refuses_a_handshake_without_one():
    async with serving(TICKER_REQUIRE_ORIGIN="1") as (client, runtime):
        async with client.websocket("/ws") as ws:
            with pytest.raises(WebsocketResponseError) as err:
                await ws.receive()
            assert err.value.response.status_code == 403
            body = orjson.loads(await err.value.response.get_data())
            assert body["code"] == "origin_required"
        async with client.websocket("/ws", headers=HEADERS) as ws:  # browsers still get in
            await ws.send(_sub("AAPL"))
            assert (await recv(ws))["type"] == "subscribed"
        assert runtime.hub.counters.refused[("websocket", "origin_required")] == 1


async def test_an_allowlisted_origin_is_accepted_and_the_host_no_longer_is():
    async with serving(TICKER_ALLOWED_ORIGINS="https://ticker.example") as (client, _):
        async with client.websocket("/ws", headers={"Origin": "https://ticker.example"}) as ws:
            await ws.send(_sub("AAPL"))
            assert (await recv(ws))["type"] == "subscribed"
        async with client.websocket("/ws", headers=HEADERS) as ws:
            with pytest.raises(WebsocketResponseError):
                await ws.receive()


async def test_connections_per_address_are_capped_with_429():
    async with serving(TICKER_MAX_CONNECTIONS_PER_ADDRESS="2") as (client, _):
        async with (
            client.websocket("/ws", headers=HEADERS) as a,
            client.websocket("/ws", headers=HEADERS) as b,
        ):
            for ws in (a, b):
                await ws.send('{"op":"ping"}')
                await recv_type(ws, "pong")
            async with client.websocket("/ws", headers=HEADERS) as c:
                with pytest.raises(WebsocketResponseError) as err:
                    await c.receive()
                assert err.value.response.status_code == 429
        async with client.websocket("/ws", headers=HEADERS) as d:  # slots came back
            await d.send('{"op":"ping"}')
            await recv_type(d, "pong")


async def test_new_streams_per_address_beyond_the_burst_get_429_with_retry_after():
    env = {"TICKER_CONNECT_BURST": "2", "TICKER_CONNECT_RATE": "0.01"}
    async with serving(**env) as (client, _):
        for _ in range(2):
            async with client.websocket("/ws") as ws:
                await ws.send('{"op":"ping"}')
                await recv_type(ws, "pong")
        async with client.websocket("/ws") as ws:  # closed ones do not give tokens back
            with pytest.raises(WebsocketResponseError) as err:
                await ws.receive()
            assert err.value.response.status_code == 429
            assert err.value.response.headers["Retry-After"] == "100"
            body = orjson.loads(await err.value.response.get_data())
            assert body["code"] == "connecting_too_fast"


async def test_a_flood_gets_rate_limited_errors_then_1008():
    env = {"TICKER_RATE_PER_MINUTE": "1", "TICKER_RATE_BURST": "3"}
    async with serving(**env) as (client, _), client.websocket("/ws", headers=HEADERS) as ws:
        for _ in range(3):
            await ws.send('{"op":"ping"}')
            assert (await recv(ws))["type"] == "pong"
        await ws.send('{"op":"ping"}')
        assert (await recv(ws))["code"] == "rate_limited"
        for _ in range(60):
            await ws.send('{"op":"ping"}')
        code, seen = await close_code(ws)
        assert code == 1008
        # pending errors may be cut short by the close
        assert {f.get("code") for f in seen} <= {"rate_limited"}


async def test_server_heartbeats_and_closes_a_silent_peer():
    async with serving(TICKER_HEARTBEAT_INTERVAL="0.1") as (client, runtime):
        async with client.websocket("/ws", headers=HEADERS) as ws:
            beat = await recv(ws)
            assert beat["type"] == "heartbeat"
            assert isinstance(beat["ts"], int)
            code, _ = await close_code(ws, wait=8.0)  # after 2 x 0.1 + 5 s of silence
            assert code == 1001
        await eventually(
            lambda: runtime.hub.connections_by_transport()["websocket"] == 0,
            within=3.0,
            what="0 websocket in the hub",
        )


async def test_clients_that_connect_together_get_their_first_heartbeats_spread_out():
    beat = 0.6
    async with (
        serving(TICKER_HEARTBEAT_INTERVAL=str(beat)) as (client, _),
        contextlib.AsyncExitStack() as stack,
    ):
        opened: list[tuple[Any, float]] = []
        for _ in range(12):  # all within a few ms: before, their heartbeats came together
            ws = await stack.enter_async_context(client.websocket("/ws", headers=HEADERS))
            opened.append((ws, time.monotonic()))

        async def first_beat_after(ws: Any, since: float) -> float:
            assert (await recv(ws))["type"] == "heartbeat"
            return time.monotonic() - since

        after = await asyncio.gather(*(first_beat_after(ws, at) for ws, at in opened))
    assert min(after) >= beat / 2 - 0.05  # at a random point of the interval's second half
    assert max(after) <= beat + 0.15  # never later than the interval the client is told
    assert max(after) - min(after) >= 0.1  # spread (12 uniform draws over 0.3 s)


async def test_a_seq_gap_sends_resync_before_the_new_tick():
    async with serving() as (client, runtime):
        runtime.hub.ingest(tick(seq=1))
        async with client.websocket("/ws", headers=HEADERS) as ws:
            await ws.send(_sub("AAPL"))
            await recv_type(ws, "ticks")
            runtime.hub.ingest(tick(seq=10))
            assert await recv(ws) == {"type": "resync", "symbols": ["AAPL"]}
            assert (await recv(ws))["ticks"][0]["seq"] == 10

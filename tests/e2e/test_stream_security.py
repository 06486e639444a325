"""Hostile clients against a real server process (RELIABILITY S1, S4-S9, S11).

Each test starts its own server (memory broker, simulated feed) and checks that a control client
keeps receiving every tick while the attack runs, where the scenario asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
import zlib
from typing import Any

import pytest
import websockets
from websockets.frames import Frame, Opcode

from tests.support.servers import group_rss_mb
from tests.support.timing import UNIT_S
from tests.support.wsclient import (
    SOAK,
    Recorder,
    close_code,
    connect,
    frame,
    frame_of,
    subscribe,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("release_raw_sockets")]


def _status(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


async def _handshake_status(base: str, origin: str | None) -> int:
    try:
        ws = (
            await connect(base, origin=origin)
            if origin
            else await websockets.connect(base.replace("http", "ws") + "/ws")
        )
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)
    await ws.close()
    return 101


async def test_s1_foreign_origins_never_get_101_and_the_own_origin_always_does(start_server):
    server = start_server()
    port = server.url.rsplit(":", 1)[1]
    bad = [
        "https://evil.example",
        "null",
        f"https://127.0.0.1:{port}",  # other scheme
        f"http://127.0.0.1:{int(port) + 1}",  # other port
        f"http://127.0.0.1:{port}.evil.com",
        f"http://127.0.0.1.evil.com:{port}",
        "http://localhost",
    ]
    for origin in bad * 5:
        assert await _handshake_status(server.url, origin) == 403, origin
    for _ in range(20):
        assert await _handshake_status(server.url, server.url) == 101
    for _ in range(5):  # no Origin at all: a native app or script (browsers always send one)
        assert await _handshake_status(server.url, None) == 101


async def test_s1_require_origin_refuses_handshakes_without_one(start_server):
    server = start_server(TICKER_REQUIRE_ORIGIN="1")
    for _ in range(5):
        assert await _handshake_status(server.url, None) == 403
    assert await _handshake_status(server.url, "https://evil.example") == 403
    assert await _handshake_status(server.url, server.url) == 101
    status, body = _status(f"{server.url}/sse?symbols=AAPL&max_rate=0")  # fallbacks: unaffected
    assert (status, body["code"]) == (400, "bad_max_rate")


async def test_s1_an_allowlisted_origin_replaces_the_default(start_server):
    server = start_server(TICKER_ALLOWED_ORIGINS="https://ticker.example")
    assert await _handshake_status(server.url, "https://ticker.example") == 101
    assert await _handshake_status(server.url, server.url) == 403
    assert await _handshake_status(server.url, "https://ticker.example.evil.com") == 403


@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_s4_frames_over_the_limit_close_1009_with_flat_memory(start_server, kind):
    server = start_server()
    before = group_rss_mb(server.proc.pid)
    payload: str | bytes = "x" * (16 * 1024 + 1)
    if kind == "binary":
        payload = b"x" * (16 * 1024 + 1)
    for _ in range(1000 if SOAK else 200):
        ws = await connect(server.url, compression=None)
        await ws.send(payload)
        assert await close_code(ws) == 1009
    assert group_rss_mb(server.proc.pid) - before < 20


def _barrage() -> list[str | bytes]:
    kinds: list[str | bytes] = [
        "{not json",
        '{"op": 1}',
        '{"op":"subscribe","symbols":"AAPL"}',
        '{"op":"subscribe","symbols":[1,2]}',
        '{"op":"explode"}',
        '{"op":"subscribe","symbols":["' + "A" * 200 + '"]}',
        b"\xff\xfe\xfd",  # not UTF-8 (as a binary frame)
        b"",  # empty binary frame: Quart hands it over as None
        "",
        '[{"op":"subscribe","symbols":["AAPL"]},{"op":"ping"}]',  # batched frames
        '{"op":"<script>alert(1)</script>"}',
        '{"op":"subscribe","symbols":["<img src=x onerror=alert(1)>"]}',
        '{"op":"subscribe","symbols":["AAPL"],"since":{"AAPL":-5}}',
        "null",
    ]
    return [kinds[i % len(kinds)] for i in range(10_000)]


async def _control(
    base: str, symbols: list[str], stop: asyncio.Event, ready: asyncio.Event | None = None
) -> Recorder:
    """A well-behaved client that records every tick until `stop` is set."""
    rec = Recorder()
    ws = await connect(base)
    await subscribe(ws, symbols)
    if ready is not None:
        ready.set()
    while not stop.is_set():
        got = await frame(ws)
        if got.get("type") == "heartbeat":
            await ws.send('{"op":"ping"}')
        rec.take(got)
    await ws.close()
    return rec


async def test_s5_a_malformed_barrage_gets_an_error_each_and_the_control_misses_nothing(
    start_server,
):
    server = start_server(
        TICKER_SIM_RATE="200", TICKER_RATE_PER_MINUTE="1000000000", TICKER_RATE_BURST="1000000"
    )
    stop = asyncio.Event()
    control = asyncio.create_task(_control(server.url, ["AAPL", "MSFT"], stop))
    attacker = await connect(server.url)
    frames = _barrage()
    errors = 0
    window = 16  # below the server's 32 pending control frames: none is dropped
    for start in range(0, len(frames), window):
        chunk = frames[start : start + window]
        for data in chunk:
            await attacker.send(data)
        for _ in chunk:
            got = await frame(attacker)
            assert got["type"] == "error", got
            assert got["code"] in {"bad_json", "bad_frame", "unknown_op", "bad_symbol", "bad_since"}
            errors += 1
    assert errors == 10_000
    await attacker.send('{"op":"ping"}')
    assert (await frame_of(attacker, "pong"))["type"] == "pong"  # still served
    stop.set()
    rec = await control
    assert rec.total() > 0
    rec.assert_exact()  # 100 % of the control client's ticks, in order


async def test_s5_invalid_utf8_in_a_text_frame_closes_only_that_connection(start_server):
    server = start_server()
    bystander = await connect(server.url)
    ws = await connect(server.url, compression=None)
    # a text frame whose payload is not UTF-8, written below the library's checks
    ws.protocol.send_frame(Frame(Opcode.TEXT, b"\xff\xfe"))
    ws.send_data()
    assert await close_code(ws) in (1007, None)  # Hypercorn drops it (no close frame) or 1007
    await bystander.send('{"op":"ping"}')
    assert (await frame_of(bystander, "pong"))["type"] == "pong"


async def test_s6_a_flood_is_throttled_then_closed_1008_and_others_keep_their_ticks(
    start_server,
):
    server = start_server(TICKER_SIM_RATE="100")
    stop = asyncio.Event()
    control = asyncio.create_task(_control(server.url, ["AAPL"], stop))
    ws = await connect(server.url)
    codes = []
    try:
        for i in range(1000):
            op = "subscribe" if i % 2 == 0 else "unsubscribe"
            await ws.send(json.dumps({"op": op, "symbols": ["AAPL"]}))
    except websockets.ConnectionClosed:
        pass
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            codes.append((await frame(ws)).get("code"))
    assert ws.protocol.close_rcvd is not None
    assert ws.protocol.close_rcvd.code == 1008
    assert codes[-1] == "rate_limited"  # an error frame comes right before the close
    stop.set()
    (await control).assert_exact()


async def _open_many(base: str, count: int) -> tuple[list[Any], list[tuple[int, str]]]:
    """Open `count` WebSockets from this one address: the open ones, and (status, Retry-After)."""
    sockets, statuses = [], []
    for _ in range(count):
        try:
            sockets.append(await connect(base))
            statuses.append((101, ""))
        except websockets.InvalidStatus as exc:
            statuses.append((exc.response.status_code, exc.response.headers["Retry-After"]))
    return sockets, statuses


async def test_s6_an_office_behind_one_address_gets_in_with_the_defaults(start_server):
    server = start_server()
    sockets, statuses = await _open_many(server.url, 150)  # the old cap was 20
    assert statuses == [(101, "")] * 150
    await subscribe(sockets[-1], ["AAPL"])
    assert (await frame_of(sockets[-1], "subscribed"))["symbols"] == ["AAPL"]


async def test_s6_a_handshake_flood_from_one_address_gets_429_and_others_keep_their_ticks(
    start_server,
):
    server = start_server(TICKER_CONNECT_BURST="20", TICKER_CONNECT_RATE="0.01")
    stop, ready = asyncio.Event(), asyncio.Event()
    control = asyncio.create_task(_control(server.url, ["AAPL"], stop, ready))
    await asyncio.wait_for(ready.wait(), UNIT_S)
    _, statuses = await _open_many(server.url, 50)
    assert statuses.count((101, "")) == 19  # the control client took the first token
    assert statuses.count((429, "100")) == 31  # Retry-After: one token at 0.01/s
    status, body = _status(f"{server.url}/sse?symbols=AAPL")  # SSE spends the same tokens
    assert status == 429
    assert body["code"] == "connecting_too_fast"
    stop.set()
    (await control).assert_exact()


async def test_s6_the_ceiling_of_open_streams_per_address_is_429_and_slots_come_back(
    start_server,
):
    server = start_server(TICKER_MAX_CONNECTIONS_PER_ADDRESS="20")
    sockets, statuses = await _open_many(server.url, 50)
    assert [s for s, _ in statuses].count(101) == 20
    assert [s for s, _ in statuses].count(429) == 30
    status, body = _status(f"{server.url}/sse?symbols=AAPL")  # SSE shares the ceiling
    assert status == 429
    assert body["code"] == "too_many_connections"
    for ws in sockets:
        await ws.close()
    ws = await connect(server.url)  # slots come back when connections end
    await ws.close()


async def test_s7_subscription_abuse_is_refused_without_echo(start_server):
    server = start_server()
    ws = await connect(server.url)
    await subscribe(ws, [f"S{i}" for i in range(201)])
    assert (await frame(ws))["code"] == "too_many_symbols"
    for bad in ["../etc/passwd", "A" * 1024, "<b>", ""]:
        await subscribe(ws, [bad])
        got = await frame(ws)
        assert got["code"] == "bad_symbol"
        assert "<b>" not in json.dumps(got) or "\\u003c" in json.dumps(got)
    await subscribe(ws, ["ZZZZ"])  # well-formed but unknown: subscribed, simply no data
    assert (await frame(ws))["type"] == "subscribed"
    await subscribe(ws, [f"S{i}" for i in range(10_000)])  # ~90 KB: over the frame limit
    assert await close_code(ws) == 1009


def _ws_count(base: str) -> int:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith('ticker_connections{transport="websocket"}'):
            return int(float(line.split()[-1]))
    return 0


async def test_s8_a_silent_peer_is_closed_and_uncounted(start_server):
    server = start_server(TICKER_HEARTBEAT_INTERVAL="0.5")
    ws = await connect(server.url)
    assert (await frame_of(ws, "heartbeat"))["type"] == "heartbeat"
    assert await asyncio.to_thread(_ws_count, server.url) == 1
    # silent: it reads nothing more, so it answers neither heartbeats nor protocol pings
    ws.transport.pause_reading()
    loop = asyncio.get_running_loop()
    opened = loop.time()
    while True:
        if await asyncio.to_thread(_ws_count, server.url) == 0:
            break
        assert loop.time() - opened <= 2 * 0.5 + 5 + 1.5, "the silent peer is still counted"
        await asyncio.sleep(0.1)
    assert loop.time() - opened >= 2 * 0.5 + 5 - 1
    ws.transport.resume_reading()
    assert await close_code(ws, wait=15) == 1001
    live = await connect(server.url)  # a peer that answers heartbeats stays
    for _ in range(3):
        await frame_of(live, "heartbeat")
        await live.send('{"op":"ping"}')
    await live.close()


async def test_s9_permessage_deflate_is_declined_by_default(start_server):
    server = start_server()
    ws = await connect(server.url, compression="deflate")
    assert ws.protocol.extensions == []  # the client must send plain frames: nothing to inflate


async def test_s9_a_compression_bomb_closes_1009_with_bounded_memory(start_server):
    server = start_server(TICKER_WS_DEFLATE="1")  # deflate on: the bounded inflater is in use
    before = group_rss_mb(server.proc.pid)
    bomb = "a" * (64 * 1024 * 1024)  # deflates to ~64 KB
    assert len(zlib.compress(bomb.encode())) < 100_000
    for _ in range(5):
        ws = await connect(server.url, compression="deflate", max_size=None)
        assert ws.protocol.extensions  # negotiated
        await ws.send(bomb)
        assert await close_code(ws) == 1009
    assert group_rss_mb(server.proc.pid) - before < 10  # a 64 MiB inflation never happened


@pytest.mark.parametrize(
    "cursor",
    [
        "-1",
        "99999999999999999999999999999",
        "abc",
        "eyJBQVBMIjotMX0.AAAAAAAAAAAAAAAA",  # {"AAPL":-1} with a forged tag
        "eyJBQVBMIjoiNyJ9.AAAAAAAAAAAAAAAA",  # {"AAPL":"7"}
        "x" * 20_000,
    ],
)
def test_s11_tampered_cursors_get_400_on_poll_and_sse(start_server, cursor):
    server = start_server()
    for path in ("poll", "sse"):
        status, body = _status(f"{server.url}/{path}?symbols=AAPL&cursor={cursor}")
        assert status == 400
        assert body["code"] == "bad_cursor"


def test_s11_fallbacks_check_the_origin_too(start_server):
    server = start_server()
    for path in ("poll", "sse"):
        for origin in ("https://evil.example", "null", f"{server.url}.evil.com"):
            status, body = _status(f"{server.url}/{path}?symbols=AAPL", {"Origin": origin})
            assert status == 403
            assert body["code"] == "origin_not_allowed"
    status, body = _status(f"{server.url}/poll?symbols=AAPL", {"Origin": server.url})
    assert status == 200
    assert "cursor" in body

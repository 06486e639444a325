"""Clients that are not browsers, against real server processes (issue 9).

- a plain `websockets` client and `ticker.client`, both without Origin, stream ticks; a foreign
  browser Origin is still 403 before the upgrade; TICKER_REQUIRE_ORIGIN=1 refuses a missing one;
- `ticker.client` resumes across server-side rotations with no gap and no duplicate;
- the CLI prints ticks, exits 0 on Ctrl-C and non-zero with a message against a closed port;
- max_rate=1 on a 20 ticks/s burst through the emulator, on all three transports: at most about
  one tick per second, and the burst's final price within 1 s of an unpaced client getting it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
import websockets

from tests.integration.stack import run_publisher, start_pubsub_server
from tests.support.servers import REPO, free_port
from tests.support.timing import timeout
from tests.support.wsclient import ws_url
from ticker.client import ConnectFailed, Reconnecting, Resync, Subscribed, Tick, connect

pytestmark = pytest.mark.integration


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=timeout(5)) as resp:
        return str(resp.read().decode())


async def test_a_plain_websockets_client_without_origin_streams_ticks(start_server):
    server = start_server(TICKER_SIM_SYMBOLS="AAPL", TICKER_SIM_RATE="20")
    async with websockets.connect(ws_url(server.url), open_timeout=timeout(10)) as ws:
        assert ws.request is not None
        assert "Origin" not in ws.request.headers
        await ws.send(json.dumps({"op": "subscribe", "symbols": ["AAPL"]}))
        seqs: list[int] = []
        async with asyncio.timeout(timeout(10)):
            while len(seqs) < 10:
                frame = json.loads(await ws.recv())
                seqs += [t["seq"] for t in frame.get("ticks", [])]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    metrics = await asyncio.to_thread(_text, server.url + "/metrics")
    assert 'ticker_connections_opened_total{client="native",transport="websocket"} 1.0' in metrics


async def test_ticker_client_without_origin_streams_ticks_in_order(start_server):
    server = start_server(TICKER_SIM_SYMBOLS="AAPL,MSFT", TICKER_SIM_RATE="20")
    got: dict[str, list[int]] = {"AAPL": [], "MSFT": []}
    async with connect(ws_url(server.url)) as client, asyncio.timeout(timeout(10)):
        async for tick in client.ticks(["aapl", "MSFT"]):
            got[tick.symbol].append(tick.seq)
            if min(len(v) for v in got.values()) >= 5:
                break
    for seqs in got.values():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert client.cursor == {s: v[-1] for s, v in got.items()}


async def _handshake(url: str, origin: str | None) -> int:
    try:
        async with websockets.connect(url, origin=origin, open_timeout=timeout(10)):  # type: ignore[arg-type]
            return 101
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)


async def test_a_foreign_browser_origin_is_still_403_and_require_origin_refuses_none(start_server):
    server = start_server()
    assert await _handshake(ws_url(server.url), "https://evil.example") == 403
    assert await _handshake(ws_url(server.url), server.url) == 101
    assert await _handshake(ws_url(server.url), None) == 101
    strict = start_server(TICKER_REQUIRE_ORIGIN="1")
    assert await _handshake(ws_url(strict.url), None) == 403
    assert await _handshake(ws_url(strict.url), strict.url) == 101
    with pytest.raises(ConnectFailed) as err:
        async with connect(ws_url(strict.url)):
            pass
    assert err.value.status == 403
    assert "origin_required" in str(err.value)


@pytest.mark.parametrize("max_rate", [None, 4.0])
async def test_ticker_client_resumes_across_rotations_without_gap_or_duplicate(
    start_server, max_rate
):
    server = start_server(
        TICKER_SIM_SYMBOLS="AAPL", TICKER_SIM_RATE="20", TICKER_MAX_CONNECTION_AGE="1"
    )
    seqs: list[int] = []
    reconnects: list[Reconnecting] = []
    subscribed: list[Subscribed] = []
    resyncs: list[Resync] = []
    async with (
        connect(ws_url(server.url), max_rate=max_rate) as client,
        asyncio.timeout(timeout(30)),
    ):
        async for event in client.events(["AAPL"]):
            if isinstance(event, Tick):
                seqs.append(event.seq)
            elif isinstance(event, Reconnecting):
                reconnects.append(event)
            elif isinstance(event, Subscribed):
                subscribed.append(event)
            elif isinstance(event, Resync):
                resyncs.append(event)
            if len(reconnects) >= 3 and len(subscribed) > 3:
                break
    assert client.connections >= 4
    assert all(r.delay <= 0.5 for r in reconnects)  # planned: a short jitter, not a backoff
    assert subscribed[0].recovered is False
    assert all(s.recovered for s in subscribed[1:])  # every resume replayed what it missed
    assert all(s.max_rate == max_rate for s in subscribed)
    assert not resyncs  # conflation by max_rate skips seqs, and that is no loss
    if max_rate is None:
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    else:
        assert seqs == sorted(set(seqs))
        assert len(seqs) < (seqs[-1] - seqs[0] + 1) / 2  # 20 ticks/s paced to about 4


def _cli(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ticker.client", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_the_cli_prints_ticks_from_a_real_server_then_stops_on_ctrl_c(start_server):
    server = start_server(TICKER_SIM_SYMBOLS="AAPL,MSFT", TICKER_SIM_RATE="20")
    done = _cli("AAPL", "MSFT", "--url", ws_url(server.url), "--count", "6", "--json")
    out, err = done.communicate(timeout=timeout(20))
    assert done.returncode == 0, err
    ticks = [json.loads(line) for line in out.splitlines()]
    assert len(ticks) == 6
    assert {t["symbol"] for t in ticks} == {"AAPL", "MSFT"}
    assert "subscribed to AAPL,MSFT" in err
    running = _cli("AAPL", "--url", ws_url(server.url))
    assert running.stdout is not None
    first = running.stdout.readline()  # a tick line: it is streaming
    assert "AAPL" in first
    running.send_signal(signal.SIGINT)
    _, err = running.communicate(timeout=timeout(10))
    assert running.returncode == 0
    assert "Traceback" not in err


def test_the_cli_exits_non_zero_with_a_message_against_a_closed_port():
    done = _cli("AAPL", "--url", f"ws://127.0.0.1:{free_port()}/ws")
    out, err = done.communicate(timeout=timeout(20))
    assert done.returncode == 1
    assert out == ""
    assert "cannot connect" in err
    assert "connection refused" in err
    assert "Traceback" not in err


# --- max_rate on every transport ---------------------------------------------------------------

BURST_RATE = 20
BURST_SECONDS = 4


class Arrivals:
    """(arrival monotonic time, seq) of every AAPL tick one client got."""

    def __init__(self) -> None:
        self.got: list[tuple[float, int]] = []
        self.ready = asyncio.Event()

    def take(self, ticks: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        self.got += [(now, t["seq"]) for t in ticks if t["symbol"] == "AAPL"]

    def arrival_of(self, seq: int) -> float | None:
        return next((at for at, s in self.got if s == seq), None)


async def _ws_client(url: str, rec: Arrivals, max_rate: float | None) -> None:
    async with connect(url, max_rate=max_rate) as client:
        async for event in client.events(["AAPL"]):
            if isinstance(event, Subscribed):
                assert event.max_rate == max_rate
                rec.ready.set()
            elif isinstance(event, Tick):
                rec.take([event.as_dict()])


async def _sse_client(base: str, rec: Arrivals) -> None:
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:  # HTTP/1.0: the body is the stream until the server closes, no chunked framing
        writer.write(f"GET /sse?symbols=AAPL&max_rate=1 HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        while line := await reader.readline():
            if line.startswith(b"data: "):
                frame = json.loads(line[6:])
                if frame["type"] == "subscribed":
                    assert frame["max_rate"] == 1.0
                    rec.ready.set()
                elif frame["type"] == "ticks":
                    rec.take(frame["ticks"])
    finally:
        writer.close()


async def _poll_client(base: str, rec: Arrivals) -> None:
    def get(query: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{base}/poll?{query}", timeout=timeout(40)) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body

    body = await asyncio.to_thread(get, "symbols=AAPL&max_rate=1")
    rec.ready.set()
    while True:
        cursor = urllib.parse.quote(body["cursor"])
        body = await asyncio.to_thread(get, f"symbols=AAPL&max_rate=1&cursor={cursor}")
        assert body["max_rate"] == 1.0
        rec.take(body["ticks"])


async def test_max_rate_1_on_a_20_per_second_burst_on_every_transport(
    emulator, unique_name, start_server
):
    topic = unique_name("prices")
    server = start_pubsub_server(start_server, emulator, topic, TICKER_POLL_TIMEOUT="2")
    reference, ws, sse, poll = Arrivals(), Arrivals(), Arrivals(), Arrivals()
    tasks = [
        asyncio.create_task(_ws_client(ws_url(server.url), reference, None)),
        asyncio.create_task(_ws_client(ws_url(server.url), ws, 1.0)),
        asyncio.create_task(_sse_client(server.url, sse)),
        asyncio.create_task(_poll_client(server.url, poll)),
    ]
    paced = {"websocket": ws, "sse": sse, "longpoll": poll}
    try:
        async with asyncio.timeout(timeout(15)):
            await asyncio.gather(*(r.ready.wait() for r in (reference, *paced.values())))
        sent = await asyncio.to_thread(
            run_publisher, emulator, topic, "AAPL", BURST_RATE, BURST_SECONDS
        )
        async with asyncio.timeout(timeout(15)):
            while len(reference.got) < sent:  # noqa: ASYNC110 - four clients fill these
                await asyncio.sleep(0.05)
        final = reference.got[-1][1]
        async with asyncio.timeout(timeout(5)):
            while any(r.arrival_of(final) is None for r in paced.values()):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    seqs = [s for _, s in reference.got]
    assert seqs == list(range(seqs[0], seqs[0] + sent))  # unpaced: every tick
    spread = reference.got[-1][0] - reference.got[0][0]  # how long the burst lasted here
    for name, rec in paced.items():
        got = [s for _, s in rec.got]
        assert got == sorted(set(got)), f"{name}: out of order or duplicated {got}"
        assert got[-1] == final, f"{name}: the burst's final price never came"
        assert len(got) <= math.ceil(spread) + 2, f"{name}: {len(got)} ticks in {spread:.1f} s"
        late = rec.arrival_of(final) - reference.arrival_of(final)  # type: ignore[operator]
        print(
            f"max_rate=1 {name}: {len(got)} of {sent} ticks in {spread:.1f} s, final +{late:.2f} s"
        )
        assert late <= timeout(1.0) + 0.3, f"{name}: final price {late:.2f} s after the reference"
        gaps = [b - a for (a, _), (b, _) in itertools.pairwise(rec.got)]
        assert not gaps or min(gaps) >= 0.5, f"{name}: ticks {min(gaps):.2f} s apart"


def test_the_three_line_script_of_the_readme_streams_ticks(start_server):
    server = start_server(TICKER_SIM_SYMBOLS="AAPL,MSFT", TICKER_SIM_RATE="20")
    script = (
        "from ticker.client import ticks\n"
        f"for tick in ticks(['AAPL', 'MSFT'], '{ws_url(server.url)}'):\n"
        "    print(tick.symbol, tick.price, tick.seq, flush=True)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        try:
            lines = [proc.stdout.readline().split() for _ in range(6)]
        finally:
            proc.kill()
    assert {symbol for symbol, _, _ in lines} == {"AAPL", "MSFT"}
    assert all(float(price) > 0 for _, price, _ in lines)


async def test_ticker_client_backs_off_while_the_server_is_gone_then_gives_up(start_server):
    server = start_server(TICKER_SIM_SYMBOLS="AAPL", TICKER_SIM_RATE="20")
    seen: list[Any] = []
    client = connect(ws_url(server.url), max_retries=2)

    async def follow() -> None:
        async with client, asyncio.timeout(timeout(30)):
            async for event in client.events(["AAPL"]):
                seen.append(event)
                if isinstance(event, Tick) and len(seen) == 3:
                    await asyncio.to_thread(server.stop)  # SIGTERM: drained, then gone

    with pytest.raises(ConnectFailed) as err:
        await follow()
    reconnects = [e for e in seen if isinstance(e, Reconnecting)]
    assert reconnects, seen
    assert "connection refused" in str(err.value)
    assert client.cursor["AAPL"] == max(e.seq for e in seen if isinstance(e, Tick))

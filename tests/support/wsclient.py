"""The tests' WebSocket clients that see raw frames: real `websockets` connections to a server.

Rules: waits are bounded by the scaled unit and driven by frames, never by sleeps. These clients
stand in for a page (they send its Origin) and show a test exactly what the server sent on one
connection: every frame, a `reconnect` frame, the close code. A test that needs a real reconnecting
client uses the `ticker.client` library instead, which by design resumes, answers heartbeats
and drops what it already has, so it cannot see those.

- `connect`, `frame`, `frame_of`, `close_code`, `follow`, `subscribe`, `drop`: one async socket;
  a `Recorder` keeps every tick per symbol so tests can assert "no gap, no duplicate" exactly.
- `WsClient`, `connect_clients`, `stop_clients`: background clients that record every tick with
  its arrival time, every `reconnect` frame and the close code, and ping so heartbeats never
  close them.
- `page_sockets`: synchronous page stand-ins for tests driving a browser or a thread, each
  subscribed (the `subscribed` reply read) and closed on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as connect_sync
from websockets.typing import Origin

from tests.support.timing import UNIT_S

SOAK = os.environ.get("TICKER_SOAK", "") == "1"  # long variants of the scenarios


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws"


OPEN: list[Any] = []  # every connection made, so `drop_all` can release them after a test


async def connect(base: str, **kwargs: Any) -> Any:
    """A WebSocket to `base` with its own Origin (what a page of that server sends)."""
    kwargs.setdefault("origin", base)
    kwargs.setdefault("open_timeout", UNIT_S)
    ws = await websockets.connect(ws_url(base), **kwargs)
    OPEN.append(ws)
    return ws


async def drop(ws: Any) -> None:
    """Cut the TCP connection without a close handshake, and wait until it is gone."""
    ws.transport.abort()
    async with asyncio.timeout(UNIT_S):
        await ws.wait_closed()


async def drop_all() -> None:
    """Cut every connection still open (an unread backlog would stall a polite close)."""
    while OPEN:
        await drop(OPEN.pop())


async def frame(ws: Any, wait: float = UNIT_S) -> dict[str, Any]:
    async with asyncio.timeout(wait):
        decoded: dict[str, Any] = json.loads(await ws.recv())
        return decoded


async def frame_of(ws: Any, kind: str, wait: float = UNIT_S) -> dict[str, Any]:
    async with asyncio.timeout(wait):
        while True:
            got = await frame(ws, wait)
            if got.get("type") == kind:
                return got


async def close_code(ws: Any, wait: float = UNIT_S) -> int | None:
    """Read until the server closes; its close code (None: closed without a close frame)."""
    async with asyncio.timeout(wait):
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None


@dataclass
class Recorder:
    """Every tick seen, per symbol, plus the control frames."""

    seqs: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    resyncs: list[list[str]] = field(default_factory=list)
    subscribed: list[dict[str, Any]] = field(default_factory=list)

    def take(self, got: dict[str, Any]) -> None:
        kind = got.get("type")
        if kind == "ticks":
            for t in got["ticks"]:
                self.seqs[t["symbol"]].append(t["seq"])
        elif kind == "resync":
            self.resyncs.append(got["symbols"])
        elif kind == "subscribed":
            self.subscribed.append(got)

    def total(self) -> int:
        return sum(len(v) for v in self.seqs.values())

    def since(self) -> dict[str, int]:
        return {s: v[-1] for s, v in self.seqs.items() if v}

    def assert_exact(self) -> None:
        """Every symbol's seqs are consecutive: no gap, no duplicate, no regression."""
        for symbol, seqs in self.seqs.items():
            bad = [(a, b) for a, b in itertools.pairwise(seqs) if b != a + 1]
            assert not bad, f"{symbol}: non-consecutive seqs {bad[:5]} of {len(seqs)}"


async def follow(ws: Any, rec: Recorder, until: int, wait: float = UNIT_S) -> None:
    """Read frames into `rec` (answering heartbeats) until it holds `until` ticks."""
    async with asyncio.timeout(wait):
        while rec.total() < until:
            got = await frame(ws, wait)
            if got.get("type") == "heartbeat":
                await ws.send('{"op":"ping"}')
            rec.take(got)


async def subscribe(ws: Any, symbols: list[str], since: dict[str, int] | None = None) -> None:
    msg: dict[str, Any] = {"op": "subscribe", "symbols": symbols}
    if since:
        msg["since"] = since
    await ws.send(json.dumps(msg))


@dataclass
class WsClient:
    """A page stand-in that records ticks `(symbol, seq, ts, arrived)` and control frames."""

    url: str  # the server's base URL (http://host:port)
    symbols: list[str]
    ticks: list[tuple[str, int, int, float]] = field(default_factory=list)
    reconnects: list[float] = field(default_factory=list)
    close_code: int | None = None
    closed_at: float | None = None
    _task: asyncio.Task[None] | None = None
    _ws: Any = None
    _subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        """Connect, subscribe, and keep reading in the background."""
        ws = await connect(self.url)
        self._ws = ws
        await subscribe(ws, self.symbols)
        self._task = asyncio.create_task(self._run(ws))
        await asyncio.wait_for(self._subscribed.wait(), UNIT_S)

    async def _run(self, ws: Any) -> None:
        pinger = asyncio.create_task(self._ping(ws))
        try:
            async for raw in ws:
                self._record(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        finally:
            pinger.cancel()
            self.close_code = ws.close_code
            self.closed_at = time.monotonic()

    def _record(self, msg: dict[str, Any]) -> None:
        now = time.time()
        if msg.get("type") == "ticks":
            for t in msg["ticks"]:
                self.ticks.append((t["symbol"], t["seq"], t["ts"], now))
        elif msg.get("type") == "reconnect":
            self.reconnects.append(time.monotonic())
        elif msg.get("type") == "subscribed":
            self._subscribed.set()

    async def _ping(self, ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(5)
                await ws.send(json.dumps({"op": "ping"}))

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    async def stop(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2)
            if self._ws in OPEN:
                OPEN.remove(self._ws)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def stop_clients(clients: Iterable[WsClient]) -> None:
    """Close every client (safe on clients already closed by the server)."""
    await asyncio.gather(*(c.stop() for c in clients))


async def connect_clients(base: str, symbols: list[str], count: int) -> list[WsClient]:
    """`count` clients on the server at `base`, each subscribed to `symbols`."""
    clients = [WsClient(base, symbols) for _ in range(count)]
    await asyncio.gather(*(c.start() for c in clients))
    return clients


@contextlib.contextmanager
def page_sockets(base: str, symbol_lists: Iterable[list[str]]) -> Iterator[list[ClientConnection]]:
    """One synchronous page stand-in per list of symbols, subscribed; all closed on exit."""
    with contextlib.ExitStack() as stack:
        sockets = []
        for symbols in symbol_lists:
            ws = stack.enter_context(
                connect_sync(ws_url(base), origin=Origin(base), open_timeout=UNIT_S)
            )
            ws.send(json.dumps({"op": "subscribe", "symbols": symbols}))
            json.loads(ws.recv(timeout=UNIT_S))  # the `subscribed` reply: the hub has counted it
            sockets.append(ws)
        yield sockets

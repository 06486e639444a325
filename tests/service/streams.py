"""Helpers for the transport service tests: an app on the in-memory broker, in process.

Ticks are fed straight into the hub (synchronously), so a test knows exactly what exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart.testing.connections import WebsocketDisconnectError

from tests.support.timing import timeout
from ticker.app import create_app
from ticker.broker.memory import InMemoryBroker
from ticker.ops.procs import free_port
from ticker.server.runtime import Runtime
from ticker.server.transports import runtime_of

ORIGIN = "http://localhost"  # the Quart test client's Host is `localhost`
BASE_ENV = {"TICKER_BROKER": "memory", "TICKER_SIM_RATE": "0", "TICKER_ADMIN_TOKEN": "t"}
WAIT = timeout(3.0)


@asynccontextmanager
async def serving(**env: str) -> AsyncIterator[tuple[Any, Runtime]]:
    """(test client, runtime) of a started app with `env` on top of the defaults."""
    app = create_app({**BASE_ENV, **env}, broker=InMemoryBroker())
    runtime = runtime_of(app)
    async with app.test_app() as test_app:
        yield test_app.test_client(), runtime
        await runtime.drain(spread=0.0, wait=0.0)  # shutdown then reuses this drain: no 1 s pause


async def recv(ws: Any, wait: float = WAIT) -> dict[str, Any]:
    """The next frame, decoded; fails after `wait` seconds."""
    async with asyncio.timeout(wait):
        frame: dict[str, Any] = orjson.loads(await ws.receive())
        return frame


async def recv_type(ws: Any, kind: str, wait: float = WAIT) -> dict[str, Any]:
    """Skip frames (heartbeats...) until one of type `kind`."""
    async with asyncio.timeout(wait):
        while True:
            frame = await recv(ws, wait)
            if frame.get("type") == kind:
                return frame


def sse_events(raw: str) -> list[dict[str, str]]:
    """Parse complete SSE events (`field: value` lines) out of a stream prefix."""
    events = []
    for block in raw.split("\n\n")[:-1]:
        event: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            event[name] = value
        events.append(event)
    return events


async def close_code(ws: Any, wait: float = WAIT) -> tuple[int, list[dict[str, Any]]]:
    """Read until the server closes; return the close code and the frames seen before it."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(wait):
        while True:
            try:
                seen.append(orjson.loads(await ws.receive()))
            except WebsocketDisconnectError as exc:
                return int(exc.args[0]), seen


@asynccontextmanager
async def hypercorn_serving(**env: str) -> AsyncIterator[tuple[str, Runtime]]:
    """("127.0.0.1:port", runtime) of the app under a real Hypercorn, in process: sockets, the
    fast paths and the protocol guard, which the Quart test client does not have."""
    app = create_app({**BASE_ENV, **env}, broker=InMemoryBroker())
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        async with asyncio.timeout(timeout(5.0)):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                break
        yield f"127.0.0.1:{port}", runtime_of(app)
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout(10.0))

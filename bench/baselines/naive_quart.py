"""Baseline 1: a naive Quart fan-out, as the framework's examples suggest.

One frame per tick, `json.dumps` per client, an unbounded asyncio.Queue and a writer per client.
permessage-deflate is declined (patched below) so that it measures fan-out, not compression.
Same protocol as /ws (subscribe -> subscribed, then `ticks` frames with one tick each).
Run: hypercorn "bench.baselines.naive_quart:create_app()" with TICKER_SIM_SYMBOLS/TICKER_SIM_RATE.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator

from hypercorn.protocol import ws_stream
from quart import Quart, websocket

from bench.baselines.simfeed import feed_config, run_feed

_handshake_init = ws_stream.Handshake.__init__


def _no_deflate(self: ws_stream.Handshake, *args: object, **kwargs: object) -> None:
    """Decline permessage-deflate like every other stack here (Hypercorn accepts it by default)."""
    _handshake_init(self, *args, **kwargs)  # type: ignore[arg-type]
    self.extensions = None


ws_stream.Handshake.__init__ = _no_deflate  # type: ignore[method-assign]


def create_app() -> Quart:
    app = Quart(__name__)
    subscribers: dict[str, set[asyncio.Queue[str]]] = {}

    def on_tick(tick: dict[str, object]) -> None:
        for queue in subscribers.get(str(tick["symbol"]), ()):
            queue.put_nowait(json.dumps({"type": "ticks", "ticks": [tick]}))

    @app.websocket("/ws")
    async def ws() -> None:
        queue: asyncio.Queue[str] = asyncio.Queue()
        mine: set[str] = set()

        async def writer() -> None:
            while True:
                await websocket.send(await queue.get())

        task = asyncio.create_task(writer())
        try:
            while True:
                msg = json.loads(await websocket.receive())
                if msg.get("op") == "subscribe":
                    for symbol in msg["symbols"]:
                        subscribers.setdefault(symbol.upper(), set()).add(queue)
                        mine.add(symbol.upper())
                    reply = {"type": "subscribed", "symbols": msg["symbols"], "recovered": False}
                    queue.put_nowait(json.dumps(reply))
        finally:
            task.cancel()
            for symbol in mine:
                subscribers[symbol].discard(queue)

    @app.while_serving
    async def feed() -> AsyncGenerator[None, None]:
        symbols, rate = feed_config()
        task = asyncio.create_task(run_feed(symbols, rate, on_tick))
        yield
        task.cancel()

    return app

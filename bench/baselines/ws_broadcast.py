"""Baseline 2: the Python `websockets` library's broadcast (encode once, one frame per tick).

Same protocol as /ws. Compression off (like the ticker by default). Run:
python -m bench.baselines.ws_broadcast PORT with TICKER_SIM_SYMBOLS/TICKER_SIM_RATE set.
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.baselines.simfeed import feed_config, run_feed


async def main(port: int) -> None:
    subscribers: dict[str, set[ServerConnection]] = {}

    def on_tick(tick: dict[str, object]) -> None:
        subs = subscribers.get(str(tick["symbol"]))
        if subs:
            broadcast(subs, json.dumps({"type": "ticks", "ticks": [tick]}))

    async def handler(conn: ServerConnection) -> None:
        mine: set[str] = set()
        try:
            async for raw in conn:
                msg = json.loads(raw)
                if msg.get("op") == "subscribe":
                    for symbol in msg["symbols"]:
                        subscribers.setdefault(symbol.upper(), set()).add(conn)
                        mine.add(symbol.upper())
                    reply = {"type": "subscribed", "symbols": msg["symbols"], "recovered": False}
                    await conn.send(json.dumps(reply))
        finally:
            for symbol in mine:
                subscribers[symbol].discard(conn)

    symbols, rate = feed_config()
    async with serve(handler, "127.0.0.1", port, compression=None, backlog=4096):
        await run_feed(symbols, rate, on_tick)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

"""A client session inside a real `Runtime`: what a transport would send, read as fast as it comes.

Rule: it attaches a real `Session` to the hub and reads its batches (no transport, no socket),
so a broker-level test sees exactly the ticks and control frames a client would get.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import orjson

from ticker.server.runtime import Runtime
from ticker.stream.session import Session


class SessionReader:
    """A session subscribed to `symbols`; records ticks `(symbol, seq)`, prices and resyncs."""

    def __init__(self, runtime: Runtime, symbols: Iterable[str]) -> None:
        self.session = Session("websocket", "test", outbox_limit=100_000)
        self.seen: list[tuple[str, int]] = []
        self._prices: list[tuple[str, float]] = []
        self.resyncs: list[str] = []
        runtime.hub.attach(self.session)
        runtime.hub.subscribe(self.session, tuple(symbols), {})
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batch = await self.session.next_batch()
            for control in batch.control:
                frame = orjson.loads(control)
                if frame["type"] == "resync":
                    self.resyncs += frame["symbols"]
            for encoded in batch.ticks:
                tick = orjson.loads(encoded)
                self.seen.append((tick["symbol"], tick["seq"]))
                self._prices.append((tick["symbol"], tick["price"]))

    def seqs(self, symbol: str) -> list[int]:
        return [seq for s, seq in self.seen if s == symbol]

    def prices(self, symbol: str) -> list[float]:
        return [price for s, price in self._prices if s == symbol]

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

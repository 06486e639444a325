"""Socket-level clients for the e2e stream scenarios: real `websockets` connections to a server.

Rules: waits are bounded by one scaled unit and driven by frames, never by sleeps. A `Recorder`
keeps every tick per symbol so tests can assert "no gap, no duplicate" exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import websockets

from tests.support.servers import UNIT_S

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


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in the server's process group, in MB."""
    total_kb = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 of stat: process group id
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total_kb / 1024

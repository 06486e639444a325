"""Browser stand-ins for the rehearsal: WebSocket clients that behave like the live page.

Rules (the page's ticker/static/js/client.js, in Python):
- Resume state lives in the client: `last_seq` per symbol, sent as `since` on every reconnect.
  A tick whose seq is <= the last one is a duplicate; one above last + 1 that no `resync`
  announced is a gap. Both are counted, never hidden.
- A `reconnect` frame means "come back now": reconnect at once (unless it came within 1 s of
  connecting: then back off, so a draining instance cannot bounce a client in a tight loop).
  A lost connection backs off with full jitter (250 ms x 2^attempt, capped at 10 s); a
  connection that stayed up 5 s resets the attempt count. Silence for 2 heartbeat intervals
  + 5 s means a dead server.
- Like a browser, each client keeps the front end's affinity cookie (GCLB) and sends it back;
  `keep_cookie=False` is a client whose cookie is lost.
- Every client connects from its own 127.1.x.y source address, 10 per address (the servers
  cap streams per address; HAProxy forwards the address in X-Forwarded-For).
- Each move is recorded: when the old connection ended, when the new one was subscribed, from
  which front-end slot to which, and whether the server replayed what was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

BACKOFF_BASE = 0.25
BACKOFF_CAP = 10.0
HEALTHY_AFTER = 5.0
BOUNCE = 1.0
PER_ADDRESS = 10


def backoff_delay(attempt: int) -> float:
    """Full jitter, as the page does: uniform in [0, min(cap, base * 2^attempt))."""
    return random.random() * min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)


def source_address(index: int) -> str:
    """127.1.x.y for client `index`, 10 clients per address."""
    n = index // PER_ADDRESS
    return f"127.1.{n // 250}.{n % 250 + 1}"


@dataclass
class Move:
    """One reconnection: the old connection ended at `left`, the new one subscribed at `back`."""

    left: float
    cause: str  # "reconnect" (the server asked) or "lost" (closed / silent / refused)
    from_slot: str | None
    back: float | None = None
    to_slot: str | None = None
    recovered: bool | None = None
    attempts: int = 0

    @property
    def took(self) -> float | None:
        return None if self.back is None else self.back - self.left


@dataclass
class Client:
    """One simulated browser tab following `symbols` through the front end."""

    index: int
    url: str
    symbols: list[str]
    keep_cookie: bool = True
    origin: str | None = None  # the page's origin, as a browser sends it
    last_seq: dict[str, int] = field(default_factory=dict)
    ticks: int = 0
    gaps: int = 0
    duplicates: int = 0
    resyncs: int = 0
    connects: int = 0
    failures: int = 0
    slot: str | None = None
    connected_at: float | None = None
    moves: list[Move] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # failed attempts by status / kind
    cookie: str | None = None
    heartbeat: float = 15.0
    _resyncing: set[str] = field(default_factory=set)
    _task: asyncio.Task[None] | None = None
    _ws: ClientConnection | None = None
    _stopping: bool = False
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def connected(self) -> bool:
        return self.connected_at is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"client-{self.index}")

    async def stop(self) -> None:
        self._stopping = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        attempt = 0
        move: Move | None = None
        while not self._stopping:
            try:
                ws = await self._open()
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                self.failures += 1
                why = getattr(getattr(exc, "response", None), "status_code", None)
                self.errors[str(why or type(exc).__name__)] += 1
                if move is not None:
                    move.attempts += 1
                await asyncio.sleep(backoff_delay(attempt))
                attempt += 1
                continue
            opened = time.monotonic()
            cause = await self._serve(ws, move)
            lived = time.monotonic() - opened
            if lived >= HEALTHY_AFTER:
                attempt = 0
            if self._stopping:
                return
            if move is None or move.back is not None:
                move = Move(time.monotonic(), cause, self.slot)
                self.moves.append(move)
            else:
                move.attempts += 1  # bounced before it was subscribed: still the same move
            self.connected_at, self.slot = None, None
            if cause == "reconnect" and lived >= BOUNCE:
                continue  # asked to leave: come back at once, resuming
            await asyncio.sleep(backoff_delay(attempt))
            attempt += 1

    async def _open(self) -> ClientConnection:
        headers = {"Cookie": self.cookie} if (self.keep_cookie and self.cookie) else None
        ws = await connect(
            self.url, origin=self.origin, additional_headers=headers, proxy=None,  # type: ignore[arg-type]
            compression=None,
            ping_interval=None, open_timeout=10, close_timeout=2, max_size=2**20,
            local_addr=(source_address(self.index), 0),
        )  # fmt: skip
        response = ws.response
        if response is not None:
            self.slot = response.headers.get("X-Ticker-Backend")
            set_cookie = response.headers.get("Set-Cookie")
            if set_cookie:
                self.cookie = set_cookie.split(";", 1)[0]
        return ws

    async def _serve(self, ws: ClientConnection, move: Move | None) -> str:
        """Subscribe (resuming), then read until the connection ends; returns why it ended."""
        self._ws = ws
        since = {s: self.last_seq[s] for s in self.symbols if s in self.last_seq}
        subscribe: dict[str, Any] = {"op": "subscribe", "symbols": self.symbols}
        if since:
            subscribe["since"] = since
        try:
            await ws.send(orjson.dumps(subscribe).decode())
            while True:
                limit = 2 * self.heartbeat + 5
                raw = await asyncio.wait_for(ws.recv(), limit)
                frame = orjson.loads(raw)
                kind = frame.get("type")
                if kind == "ticks":
                    self._accept(frame["ticks"])
                elif kind == "subscribed":
                    self.connects += 1
                    self.connected_at = time.monotonic()
                    if move is not None:
                        move.back, move.to_slot = self.connected_at, self.slot
                        move.recovered = bool(frame.get("recovered"))
                        move = None
                    self.subscribed.set()
                elif kind == "reconnect":
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(ws.close(), 1)
                    return "reconnect"
                elif kind == "resync":
                    self.resyncs += 1
                    self._resyncing.update(frame.get("symbols", ()))
                elif kind == "heartbeat":
                    self.heartbeat = float(frame.get("interval") or self.heartbeat)
                    await ws.send('{"op":"ping"}')
        except (websockets.ConnectionClosed, TimeoutError, OSError):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1)
            return "lost"
        finally:
            self._ws = None

    def _accept(self, ticks: Iterable[dict[str, Any]]) -> None:
        for tick in ticks:
            symbol, seq = tick["symbol"], tick["seq"]
            self.ticks += 1
            last = self.last_seq.get(symbol)
            if last is not None and seq <= last:
                self.duplicates += 1
                continue
            announced = symbol in self._resyncing
            self._resyncing.discard(symbol)
            if last is not None and seq > last + 1 and not announced:
                self.gaps += 1
            self.last_seq[symbol] = seq


class Crowd:
    """Many clients: start them at a bounded connection rate, read their state, stop them."""

    def __init__(self, url: str, symbols: Sequence[str], per_client: int = 5) -> None:
        self.url = url
        self.origin = url.replace("ws", "http", 1).removesuffix("/ws")
        self.symbols = list(symbols)
        self.per_client = per_client
        self.clients: list[Client] = []

    def symbols_of(self, index: int) -> list[str]:
        n = len(self.symbols)
        return [self.symbols[(index * self.per_client + j) % n] for j in range(self.per_client)]

    async def add(self, count: int, rate: float = 200.0, keep_cookie: bool = True) -> list[Client]:
        """Start `count` clients at `rate` connections/s; wait until all are subscribed."""
        new = []
        for _ in range(count):
            index = len(self.clients)
            client = Client(
                index, self.url, self.symbols_of(index), keep_cookie=keep_cookie,
                origin=self.origin,
            )  # fmt: skip
            self.clients.append(client)
            new.append(client)
            client.start()
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(asyncio.gather(*(c.subscribed.wait() for c in new)), 120)
        return new

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.clients))

    def connected(self) -> int:
        return sum(1 for c in self.clients if c.connected)

    def by_slot(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.clients:
            if c.connected and c.slot:
                counts[c.slot] = counts.get(c.slot, 0) + 1
        return dict(sorted(counts.items()))

    def totals(self) -> dict[str, Any]:
        return {
            "clients": len(self.clients),
            "connected": self.connected(),
            "ticks": sum(c.ticks for c in self.clients),
            "gaps": sum(c.gaps for c in self.clients),
            "duplicates": sum(c.duplicates for c in self.clients),
            "resyncs": sum(c.resyncs for c in self.clients),
            "failed_attempts": sum(c.failures for c in self.clients),
            "failures_by_reason": dict(sum((c.errors for c in self.clients), Counter())),
        }

    def moves_since(self, since: float) -> list[Move]:
        return [m for c in self.clients for m in c.moves if m.left >= since]

    def latest_seq(self) -> dict[str, int]:
        """The highest seq any client holds per symbol (what "caught up" is measured against)."""
        best: dict[str, int] = {}
        for c in self.clients:
            for symbol, seq in c.last_seq.items():
                best[symbol] = max(best.get(symbol, seq), seq)
        return best

    def behind(self, slack: int = 3) -> int:
        """Clients missing more than `slack` ticks of a symbol against the crowd's latest."""
        best = self.latest_seq()
        return sum(
            1
            for c in self.clients
            if any(best.get(s, 0) - c.last_seq.get(s, 0) > slack for s in c.symbols)
        )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def move_summary(moves: Sequence[Move], t0: float, bucket: float = 0.5) -> dict[str, Any]:
    """Reconnect times (p50/p99/max), how many came back, and arrivals per slot over time."""
    took = [m.took for m in moves if m.took is not None]
    arrivals: dict[str, dict[str, int]] = {}
    for m in moves:
        if m.back is not None and m.to_slot:
            key = f"{(m.back - t0) // bucket * bucket:.1f}"
            per = arrivals.setdefault(m.to_slot, {})
            per[key] = per.get(key, 0) + 1
    peak = {slot: max(per.values()) / bucket for slot, per in arrivals.items()}
    return {
        "moves": len(moves),
        "back": len(took),
        "recovered": sum(1 for m in moves if m.recovered),
        "asked": sum(1 for m in moves if m.cause == "reconnect"),
        "lost": sum(1 for m in moves if m.cause == "lost"),
        "retries": sum(m.attempts for m in moves),
        "reconnect_ms": {
            "p50": _ms(percentile(took, 50)),
            "p99": _ms(percentile(took, 99)),
            "max": _ms(max(took, default=None)),
        },
        "peak_arrivals_per_s": dict(sorted(peak.items())),
        "arrivals": {slot: dict(sorted(per.items(), key=lambda kv: float(kv[0])))
                     for slot, per in sorted(arrivals.items())},
    }  # fmt: skip


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)

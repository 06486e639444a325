"""A reconnecting `/ws` client that keeps its own resume cursor.

Rules:
- The cursor `{symbol: last seq received}` lives in the client, never in a server: after any
  disconnect it reconnects (full-jitter backoff; at once after a `reconnect` frame) and
  subscribes again with `since` = the cursor, so whichever instance it lands on replays what
  it missed (`recovered`) or says `resync`. A tick at or below the cursor is never yielded,
  except the snapshot that follows a `resync` (a poisoned seq re-based onto a lower lineage).
- Every server `heartbeat` is answered with `{"op": "ping"}` while the stream is read.
- Errors it cannot fix by reconnecting raise: an `error` frame (bad symbol, bad max_rate...:
  `ServerError`), a refused handshake (403, `ConnectFailed`), closes 1003/1008/1009
  (`ConnectionRefused`). A first connection that fails raises `ConnectFailed`; later ones are
  retried without end (or `max_retries` times). 429 waits at least its `Retry-After`.
- With `max_rate`, skipped seqs are expected (the server conflates): they are not gaps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Iterable
from types import TracebackType
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Origin

from ticker.client.events import (
    Backoff,
    ConnectFailed,
    ConnectionRefused,
    Event,
    Reconnecting,
    Resync,
    ServerError,
    Subscribed,
)
from ticker.core.errors import InvalidTick
from ticker.core.ticks import Tick, make_tick, normalise_symbol

DEFAULT_URL = "ws://127.0.0.1:8080/ws"  # what `make dev` serves
FATAL_CLOSE_CODES = frozenset({1003, 1008, 1009})  # our frames were refused: retrying cannot help
TICK_FIELDS = ("symbol", "price", "seq", "ts")
PLANNED_RECONNECT_JITTER = 0.5  # seconds, after a `reconnect` frame (the server spreads drains)


class Client:
    """One logical stream over successive WebSocket connections (see `connect`)."""

    def __init__(
        self,
        url: str,
        *,
        max_rate: float | None = None,
        origin: str | None = None,
        open_timeout: float = 10.0,
        max_retries: int | None = None,
        backoff: Backoff | None = None,
        on_resync: Callable[[Resync], None] | None = None,
    ) -> None:
        self.url = url
        self.max_rate = max_rate
        self.origin = origin
        self.open_timeout = open_timeout
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()
        self.on_resync = on_resync
        self.cursor: dict[str, int] = {}  # symbol -> last seq received: the resume position
        self._resyncing: set[str] = set()  # symbols whose next tick is a snapshot (after resync)
        self.symbols: list[str] = []
        self.connections = 0  # successful handshakes so far
        self._ws: ClientConnection | None = None
        self._planned: str | None = None  # the reason of a `reconnect` frame, until the close

    async def __aenter__(self) -> Client:
        await self._open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the current connection (idempotent)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(ConnectionClosed, OSError, TimeoutError):
                await asyncio.wait_for(ws.close(), 2.0)

    async def ticks(self, symbols: Iterable[str]) -> AsyncGenerator[Tick, None]:
        """Subscribe to `symbols` and yield their ticks for ever, across reconnects.

        `Resync` goes to `on_resync` (if set); other events are skipped. Use `events()` to see
        them all.
        """
        async for event in self.events(symbols):
            if isinstance(event, Tick):
                yield event

    async def events(self, symbols: Iterable[str]) -> AsyncGenerator[Event, None]:
        """Subscribe to `symbols` and yield ticks and events (`Subscribed`, `Resync`...)."""
        new = [normalise_symbol(s) for s in symbols]
        self.symbols += [s for s in new if s not in self.symbols]
        if self._ws is None:
            await self._open()
        await self._subscribe()
        while True:
            ws = self._ws
            assert ws is not None
            try:
                raw = await ws.recv()
            except ConnectionClosed as exc:
                reconnecting = self._plan_reconnect(exc)
                yield reconnecting  # before the wait, so a caller can say what is happening
                await asyncio.sleep(reconnecting.delay)
                await self._open(retrying=True)
                await self._subscribe()
                continue
            for event in await self._handle(ws, orjson.loads(raw)):
                yield event

    async def _handle(self, ws: ClientConnection, frame: dict[str, Any]) -> list[Event]:
        kind = frame.get("type")
        if kind == "ticks":
            return self._fresh(frame.get("ticks", []))
        if kind == "heartbeat":
            with contextlib.suppress(ConnectionClosed):
                await ws.send('{"op":"ping"}')
        elif kind == "subscribed":
            self.backoff.reset()
            rate = frame.get("max_rate")
            return [Subscribed(tuple(frame["symbols"]), bool(frame["recovered"]), rate)]
        elif kind == "resync":
            resync = Resync(tuple(frame["symbols"]))
            # the next tick of each is a fresh snapshot, taken whatever its seq (the server
            # re-bases a symbol whose seq a foreign producer poisoned onto a lower lineage)
            self._resyncing.update(resync.symbols)
            if self.on_resync is not None:
                self.on_resync(resync)
            return [resync]
        elif kind == "reconnect":
            self._planned = str(frame.get("reason", "server asked"))
        elif kind == "error":
            raise ServerError(str(frame.get("code")), str(frame.get("message")))
        return []

    def _fresh(self, raw_ticks: list[dict[str, Any]]) -> list[Event]:
        out: list[Event] = []
        for raw in raw_ticks:
            extra = {k: v for k, v in raw.items() if k not in TICK_FIELDS}
            try:
                tick = make_tick(raw["symbol"], raw["price"], raw["seq"], raw["ts"], **extra)
            except (InvalidTick, KeyError, TypeError):
                continue  # not a tick we can use; the next one carries the price
            snapshot = tick.symbol in self._resyncing
            if snapshot or tick.seq > self.cursor.get(tick.symbol, -1):
                self._resyncing.discard(tick.symbol)
                self.cursor[tick.symbol] = tick.seq
                out.append(tick)
        return out

    async def _subscribe(self) -> None:
        assert self._ws is not None
        op: dict[str, Any] = {"op": "subscribe", "symbols": self.symbols}
        since = {s: seq for s, seq in self.cursor.items() if s in self.symbols}
        if since:
            op["since"] = since
        if self.max_rate is not None:
            op["max_rate"] = self.max_rate
        with contextlib.suppress(ConnectionClosed):  # a close is seen by the next recv
            await self._ws.send(orjson.dumps(op).decode())

    def _plan_reconnect(self, closed: ConnectionClosed) -> Reconnecting:
        """How long to wait before reconnecting; raise when retrying cannot help."""
        code = closed.rcvd.code if closed.rcvd else None
        reason = closed.rcvd.reason if closed.rcvd else "connection lost"
        if code in FATAL_CLOSE_CODES:
            raise ConnectionRefused(code, reason)
        planned, self._planned = self._planned, None
        attempt = self.backoff.attempt
        if planned is not None:
            delay = self.backoff.rand(0.0, PLANNED_RECONNECT_JITTER)
        else:
            delay = self.backoff.next_delay()
        return Reconnecting(planned or f"closed ({code}): {reason}", delay, attempt)

    async def _open(self, *, retrying: bool = False) -> None:
        """Connect; with `retrying`, keep trying (backoff) until it works or retries run out."""
        failures = 0
        while True:
            try:
                self._ws = await ws_connect(
                    self.url,
                    origin=Origin(self.origin) if self.origin else None,
                    open_timeout=self.open_timeout,
                    compression=None,  # the server declines permessage-deflate by default
                    ping_interval=None,  # the server's heartbeat frames keep the line checked
                )
                self.connections += 1
                return
            except InvalidStatus as exc:
                failure = _refused(self.url, exc)
            except InvalidURI as exc:
                raise ConnectFailed(self.url, f"not a ws:// or wss:// URL ({exc})") from None
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                failure = ConnectFailed(self.url, _reason(exc))
            failures += 1
            fatal = failure.status is not None and failure.status not in (429, 502, 503, 504)
            gave_up = self.max_retries is not None and failures > self.max_retries
            if not retrying or fatal or gave_up:
                raise failure
            retry_after = failure.retry_after if isinstance(failure, _Throttled) else 0.0
            await asyncio.sleep(self.backoff.next_delay(at_least=retry_after))


class _Throttled(ConnectFailed):
    """429: the server asks us to come back after `retry_after` seconds."""

    def __init__(self, url: str, reason: str, retry_after: float) -> None:
        super().__init__(url, reason, 429)
        self.retry_after = retry_after


def _refused(url: str, exc: InvalidStatus) -> ConnectFailed:
    response = exc.response
    status = response.status_code
    detail = f"HTTP {status}"
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        body = orjson.loads(response.body or b"")
        detail += f" {body['code']}: {body['message']}"
    if status == 429:
        try:
            retry_after = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            retry_after = 1.0
        return _Throttled(url, f"server refused: {detail}", retry_after)
    return ConnectFailed(url, f"server refused: {detail}", status)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running on that port?)"
    return str(exc) or type(exc).__name__


def connect(
    url: str = DEFAULT_URL,
    *,
    max_rate: float | None = None,
    origin: str | None = None,
    open_timeout: float = 10.0,
    max_retries: int | None = None,
    on_resync: Callable[[Resync], None] | None = None,
) -> Client:
    """A client for the ticker's `/ws` at `url`; use it as `async with connect(url) as c:`.

    `max_rate` caps each symbol at that many ticks per second (the server clamps it to its
    ceiling; `Subscribed.max_rate` says what is in force). `origin` is for browser stand-ins:
    native clients send none. `max_retries` bounds reconnect attempts after a disconnect
    (None: for ever).
    """
    return Client(
        url,
        max_rate=max_rate,
        origin=origin,
        open_timeout=open_timeout,
        max_retries=max_retries,
        on_resync=on_resync,
    )

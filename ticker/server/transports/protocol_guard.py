"""Guards inside Hypercorn 0.18's connection handling, where the app cannot act (issue 13).

Hypercorn leaves holes that no setting closes; `install()` swaps in subclasses of the classes it
instantiates (`hypercorn.asyncio.run.TCPServer`, `hypercorn.protocol.{h11,h2}.WSStream`), the way
`deflate.install()` swaps its extension class:

- Oversized WebSocket messages. `WSStream` answers a message past `websocket_max_message_size`
  with close 1009 but keeps writing the rest of it into the same buffer (the check runs after each
  write) and keeps reading: one client streaming a 150 MB frame grew a server by 300 MB, and the
  TCP connection stayed open. `GuardedWSStream` buffers at most the limit (the smaller of
  Hypercorn's setting and the app's `TICKER_MAX_FRAME_BYTES`), drops everything after its close
  frame unread, and cuts the TCP connection `OVERSIZE_CLOSE_GRACE` s later unless the peer's close
  reply arrived first.
- Bytes after a rejected handshake. Once the app answered a WebSocket handshake with HTTP (403,
  429), Hypercorn answers any further bytes with a second response, which h11 refuses: a 3.3 KB
  ERROR traceback per connection. They are dropped here and counted in one short WARNING line at
  most every `NOTE_INTERVAL` s.
- Pongs. Hypercorn discards the peer's Pong events, so a server ping proves nothing. Every
  `GuardedWSStream` keeps `last_heard` (monotonic time anything arrived: data, ping, pong, close)
  and can `ping()`, so `/ws` closes dead peers without demanding app frames.
- The peer's FIN on an idle keep-alive connection. `TCPServer._read_data` ends on EOF, but the
  connection's task group still waits for the keep-alive timer (620 s in `hypercorn_conf`), so
  each closed connection sat in CLOSE-WAIT holding its file descriptor: 20,000 connect-request-close
  cycles exhausted the FD limit. `GuardedTCPServer` stops the timer when the peer is gone.
- Headers that never finish. Only the keep-alive timer bounded them. `GuardedTCPServer` closes a
  connection whose request headers are not complete `header_timeout` s after its first byte (or,
  on a new connection, after the connect). An idle keep-alive connection between requests still
  waits up to `keep_alive_timeout` (the front end's reuse needs that).

Rules: process-wide (Hypercorn runs one app per worker process; the last `install()` sets the
limit). Everything here relies on Hypercorn 0.18 internals, listed by name in `EXPECTED`;
`install()` patches only when they all have the expected shape (else it logs
`protocol_guard_skipped` naming them and leaves Hypercorn as it is), `ticker.server.fastpaths`
reports it at start, and `tests/service/test_protocol_guard.py` fails naming the internal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from ssl import SSLError
from typing import Any, ClassVar

import hypercorn.asyncio.run as asyncio_run
import hypercorn.protocol.h2 as h2_protocol
import hypercorn.protocol.h11 as h11_protocol
import structlog
from hypercorn.asyncio.tcp_server import MAX_RECV, TCPServer
from hypercorn.asyncio.worker_context import AsyncioSingleTask
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.events import Body, Data, StreamClosed
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.ws_stream import (
    ASGIWebsocketState,
    FrameTooLargeError,
    WebsocketBuffer,
    WSStream,
)
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping
from wsproto.frame_protocol import CloseReason

from ticker.server.transports.internals import Expect, params, problems, source

log = structlog.get_logger("ticker.server.transports")

OVERSIZE_CLOSE_GRACE = 0.5  # s after our 1009 for the peer's close reply, then the TCP cut
HEADER_TIMEOUT = 10.0  # s for a request's headers to arrive complete (TICKER_HEADER_TIMEOUT)
NOTE_INTERVAL = 60.0  # s between two log lines about the same kind of dropped input


class Notes:
    """Counts events of a kind and logs them as one short line at most every `interval` s."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._logged: dict[str, float] = {}
        self.totals: dict[str, int] = {}

    def note(self, kind: str) -> bool:
        """Count one `kind`; log (and return True) when its last line is `interval` s old."""
        self.totals[kind] = self.totals.get(kind, 0) + 1
        self._counts[kind] = self._counts.get(kind, 0) + 1
        now = self._clock()
        last = self._logged.get(kind)
        if last is not None and now - last < self.interval:
            return False
        self._logged[kind] = now
        log.warning("connection_input_dropped", kind=kind, count=self._counts.pop(kind))
        return True


class GuardedWSStream(WSStream):
    """Hypercorn's WebSocket stream with a hard message bound, pong tracking and a quiet reject."""

    max_message_bytes: ClassVar[int] = 16 * 1024  # set by install(): the app's frame limit
    notes: ClassVar[Notes] = Notes(NOTE_INTERVAL)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = min(self.config.websocket_max_message_size, self.max_message_bytes)
        self.buffer = WebsocketBuffer(limit)
        self.last_heard = time.monotonic()  # anything from the peer, protocol pongs included
        self.oversized = False

    async def handle(self, event: StreamEvent) -> None:
        """Drop bytes that follow an HTTP answer to the handshake; note when the peer spoke."""
        if isinstance(event, Body | Data) and not self.closed:
            if not self.handshake.accepted and self.state in (
                ASGIWebsocketState.RESPONSE,
                ASGIWebsocketState.HTTPCLOSED,
            ):
                self.notes.note("bytes_after_rejected_handshake")
                return
            self.last_heard = time.monotonic()
        await super().handle(event)

    async def _handle_events(self) -> None:
        for event in self.connection.events():
            if isinstance(event, Message):
                if self.oversized:
                    continue  # the rest of an oversized message, after our close: dropped
                try:
                    self.buffer.extend(event)
                except FrameTooLargeError:
                    await self._refuse_oversized()
                    continue
                if event.message_finished:
                    assert self.app_put is not None
                    await self.app_put(self.buffer.to_message())
                    self.buffer.clear()
            elif isinstance(event, Ping):
                await self._send_wsproto_event(event.response())
            elif isinstance(event, CloseConnection):
                if self.connection.state == ConnectionState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                await self.send(StreamClosed(stream_id=self.stream_id))
            # a Pong needs nothing more: `handle` noted the time

    async def _refuse_oversized(self) -> None:
        self.buffer.clear()
        self.oversized = True
        self.notes.note("oversized_message")
        await self._send_wsproto_event(CloseConnection(code=CloseReason.MESSAGE_TOO_BIG))
        self.task_group.spawn(self._cut_after, OVERSIZE_CLOSE_GRACE)

    async def _cut_after(self, grace: float) -> None:
        await self.context.sleep(grace)
        if not self.closed:  # still no close reply: the peer is streaming on; end the TCP too
            await self.send(StreamClosed(stream_id=self.stream_id))

    async def ping(self) -> None:
        """Send a protocol ping (every client library answers it with a pong by itself)."""
        if not self.closed and self.state is ASGIWebsocketState.CONNECTED:
            await self._send_wsproto_event(Ping(payload=b"ticker"))


class GuardedTCPServer(TCPServer):
    """Hypercorn's TCP connection that lets go on the peer's FIN and bounds header time."""

    header_timeout: ClassVar[float] = HEADER_TIMEOUT
    notes: ClassVar[Notes] = GuardedWSStream.notes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_task = AsyncioSingleTask()
        self.in_request = False  # between a request's headers and the end of its response
        self.headers_due = False  # the header timer runs

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated):
            self.in_request = not event.idle
            if not event.idle:
                self.headers_due = False
                await self.header_task.stop()
        await super().protocol_send(event)

    async def _read_data(self) -> None:
        await self._expect_headers()  # a new connection: its first request is due
        while not self.reader.at_eof():
            try:
                data = await asyncio.wait_for(self.reader.read(MAX_RECV), self.config.read_timeout)
            except (ConnectionError, OSError, TimeoutError, SSLError):
                break
            if data and not self.in_request and not self.headers_due:
                await self._expect_headers()  # bytes of a next request on a kept-alive connection
            await self.protocol.handle(RawData(data))
        await self.protocol.handle(Closed())
        # The peer is gone: no keep-alive to wait out, no headers to wait for. (Hypercorn keeps
        # the idle timer running here, holding the socket in CLOSE-WAIT for keep_alive_timeout.)
        await self.header_task.stop()
        await self.idle_task.stop()

    async def _expect_headers(self) -> None:
        self.headers_due = True
        await self.header_task.restart(self._task_group, self._header_timeout)

    async def _header_timeout(self) -> None:
        await asyncio.sleep(self.header_timeout)
        self.notes.note("header_timeout")
        await asyncio.shield(self._initiate_server_close())


WS_STREAM_PARAMS = [
    "self",
    "app",
    "config",
    "context",
    "task_group",
    "ssl",
    "client",
    "server",
    "send",
    "stream_id",
]
TCP_SERVER_PARAMS = ["self", "app", "loop", "config", "context", "state", "reader", "writer"]
# What the guards override or call, as they were in Hypercorn 0.18 (the classes it instantiates,
# the constructors they inherit, the two methods they re-implement, the buffer they replace).
EXPECTED = (
    Expect(
        "hypercorn.asyncio.run.TCPServer (the class Hypercorn instantiates per connection)",
        lambda: asyncio_run.TCPServer in (TCPServer, GuardedTCPServer),  # type: ignore[attr-defined]
    ),
    Expect(
        "hypercorn.protocol.h11.WSStream (the class H11Protocol instantiates)",
        lambda: h11_protocol.WSStream in (WSStream, GuardedWSStream),  # type: ignore[attr-defined]
    ),
    Expect(
        "hypercorn.protocol.h2.WSStream (the class H2Protocol instantiates)",
        lambda: h2_protocol.WSStream in (WSStream, GuardedWSStream),  # type: ignore[attr-defined]
    ),
    Expect(
        "hypercorn.asyncio.tcp_server.TCPServer.__init__",
        lambda: params(TCPServer.__init__) == TCP_SERVER_PARAMS,
    ),
    Expect(
        "hypercorn.asyncio.tcp_server.TCPServer._read_data",
        lambda: (
            params(TCPServer._read_data) == ["self"]
            and "self.reader.read(MAX_RECV)" in source(TCPServer._read_data)
            and "self.protocol.handle(Closed())" in source(TCPServer._read_data)
        ),
    ),
    Expect(
        "hypercorn.asyncio.tcp_server.TCPServer.protocol_send, ._initiate_server_close, "
        ".idle_task, ._task_group",
        lambda: (
            all(
                hasattr(TCPServer, name)
                for name in ("protocol_send", "_initiate_server_close", "_idle_timeout")
            )
            and "self.idle_task" in source(TCPServer.__init__)
            and "self._task_group" in source(TCPServer)
        ),
    ),
    Expect(
        "hypercorn.protocol.ws_stream.WSStream.__init__",
        lambda: params(WSStream.__init__) == WS_STREAM_PARAMS,
    ),
    Expect(
        "hypercorn.protocol.ws_stream.WSStream._handle_events",
        lambda: (
            params(WSStream._handle_events) == ["self"]
            and "self.buffer.extend(event)" in source(WSStream._handle_events)
        ),
    ),
    Expect(
        "hypercorn.protocol.ws_stream.WSStream.handle, ._send_wsproto_event, .app_send",
        lambda: all(
            hasattr(WSStream, name) for name in ("handle", "_send_wsproto_event", "app_send")
        ),
    ),
    Expect(
        "hypercorn.protocol.ws_stream.WebsocketBuffer.__init__",
        lambda: params(WebsocketBuffer.__init__) == ["self", "max_length"],
    ),
)


def shape_problems() -> list[str]:
    """The internals in `EXPECTED` whose shape is not the one the guards were written for."""
    return problems(EXPECTED)


def installed() -> bool:
    """Whether Hypercorn uses the guarded classes now."""
    return (
        asyncio_run.TCPServer is GuardedTCPServer  # type: ignore[attr-defined]
        and h11_protocol.WSStream is GuardedWSStream  # type: ignore[attr-defined]
    )


def install(max_message_bytes: int, header_timeout: float = HEADER_TIMEOUT) -> bool:
    """Make Hypercorn use the guarded classes; True when they are in place."""
    changed = shape_problems()
    if changed:
        log.warning(
            "protocol_guard_skipped", reason="unexpected Hypercorn internals", internals=changed
        )
        return False
    GuardedWSStream.max_message_bytes = max_message_bytes
    GuardedTCPServer.header_timeout = header_timeout
    asyncio_run.TCPServer = GuardedTCPServer  # type: ignore[attr-defined]
    h11_protocol.WSStream = GuardedWSStream  # type: ignore[attr-defined]
    h2_protocol.WSStream = GuardedWSStream  # type: ignore[attr-defined]
    return True


def probe(stream: WSStream | None) -> GuardedWSStream | None:
    """The guarded stream, or None (another server, or Hypercorn left unpatched)."""
    return stream if isinstance(stream, GuardedWSStream) else None

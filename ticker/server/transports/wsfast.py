"""The /ws writer's fast paths onto Hypercorn: where a frame costs least.

Measured per text frame on this stack (process CPU, one core, issue 5): Quart's
`websocket.send` ~30-40 us, the ASGI `send` under it ~18-24 us, a direct socket write ~8-15 us.
A quiet client (a tick every few hundred ms) gets one frame per tick whatever we do, so what a
frame costs is what such clients cost; a busy one gets a frame per flush interval.

Rules:
- `SocketWriter` writes complete frames onto the socket synchronously, only while the stream is
  Hypercorn's open HTTP/1.1 WebSocket without extensions and the socket has nothing buffered.
  Otherwise (not ready) the caller takes the awaiting path, `text_sender()`, which hands frames
  to the ASGI server (and so waits on flow control): a backed-up client gets its writer blocked
  and its outbox conflated, never a growing buffer. Frames are whole messages, so they interleave
  safely with Hypercorn's own (pongs, close).
- `text_sender()` skips Quart's per-frame layers (a `sleep(0)`, an `accept()` re-check and a
  blinker signal); it falls back to Quart's `send`.
- `direct_writer()` is for `Session.offer`: a tick for an idle writer with nothing pending (so
  order holds) goes out at once as its own frame, unless the client's last frame is less than a
  flush interval old (a busy client gets batches). Each tick is framed once for all its
  subscribers (`TickFrames`).
- Both read Hypercorn/Quart internals, listed by name in `EXPECTED_SEND` and `EXPECTED_SOCKET`.
  When one changed shape (`shape_problems()`, checked once per process) or the stack is another,
  they return the slow but always-correct path; `ticker.server.fastpaths` logs which and why
  once at start, and `tests/service/test_fast_paths.py` fails naming the internal.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol import ProtocolWrapper
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import WSStream
from quart import websocket
from quart.asgi import ASGIWebsocketConnection
from quart.wrappers.websocket import Websocket
from wsproto.connection import ConnectionState

from ticker.core.codec import ticks_frame
from ticker.server.transports.internals import Expect, params, problems, source
from ticker.stream.session import Session
from ticker.stream.tuning import WAIT, WAKE, WROTE, FlushClock, Sweep

AsgiSend = Callable[[dict[str, object]], Awaitable[None]]
Direct = Callable[[str], float]

# The chain from Quart's `websocket` to the socket, link by link: Quart's half is what
# `text_sender()` needs (`_asgi_send`), Hypercorn's what `SocketWriter.for_current` adds.
EXPECTED_SEND = (
    Expect(
        "quart.asgi.ASGIWebsocketConnection (Websocket's send = partial(send_data, asgi_send))",
        lambda: (
            "partial(self.send_data, send)"
            in source(ASGIWebsocketConnection._create_websocket_from_scope)
        ),
    ),
    Expect(
        "quart.wrappers.websocket.Websocket._send",
        lambda: "self._send = send" in source(Websocket.__init__),
    ),
)
EXPECTED_SOCKET = (
    Expect(
        "hypercorn.protocol.ws_stream.WSStream.app_send (the ASGI send given to the app)",
        lambda: "self.app_send" in source(WSStream.handle) and hasattr(WSStream, "app_send"),
    ),
    Expect(
        "hypercorn.protocol.ws_stream.WSStream.send (H11Protocol.stream_send)",
        lambda: (
            "send" in params(WSStream.__init__)
            and "self.send = send" in source(WSStream.__init__)
            and "self.stream_send" in source(H11Protocol)
        ),
    ),
    Expect(
        "hypercorn.protocol.h11.H11Protocol.send (TCPServer.protocol_send, via ProtocolWrapper)",
        lambda: (
            "self.send = send" in source(H11Protocol.__init__)
            and "self.send = send" in source(ProtocolWrapper.__init__)
            and "self.protocol_send" in source(TCPServer)
        ),
    ),
    Expect(
        "hypercorn.asyncio.tcp_server.TCPServer.writer (the connection's asyncio StreamWriter)",
        lambda: "self.writer = writer" in source(TCPServer.__init__),
    ),
    Expect(
        "hypercorn.protocol.ws_stream.WSStream.closed, .connection (wsproto, ConnectionState.OPEN)",
        lambda: (
            "self.closed = False" in source(WSStream.__init__)
            and "self.connection" in source(WSStream)
            and hasattr(ConnectionState, "OPEN")
        ),
    ),
)


@functools.cache
def shape_problems() -> tuple[str, ...]:
    """The internals both paths rely on whose shape changed (a fact of the installed libraries:
    checked once per process)."""
    return tuple(problems(EXPECTED_SEND + EXPECTED_SOCKET))


def _asgi_send() -> tuple[Any, AsgiSend | None]:
    ws = websocket._get_current_object()  # type: ignore[attr-defined]
    quart_send = getattr(ws, "_send", None)  # Quart builds it as partial(send_data, asgi_send)
    if isinstance(quart_send, partial) and quart_send.args:
        return ws, quart_send.args[0]
    return ws, None


def current_stream() -> WSStream | None:
    """Hypercorn's stream of the current WebSocket, or None on another stack."""
    _, asgi_send = _asgi_send()
    stream = getattr(asgi_send, "__self__", None)  # the bound WSStream.app_send
    return stream if isinstance(stream, WSStream) else None


def text_sender() -> Callable[[str], Awaitable[None]]:
    """The cheapest correct way to send a text frame to the current WebSocket."""
    ws, asgi_send = _asgi_send()
    if asgi_send is None:
        fallback: Callable[[str], Awaitable[None]] = ws.send
        return fallback
    send = asgi_send

    async def send_text(text: str) -> None:
        await send({"type": "websocket.send", "bytes": None, "text": text})

    return send_text


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final, uncompressed WebSocket text frame (server to client, RFC 6455)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


class TickFrames:
    """A one-entry memo: the hub offers a tick to all its subscribers in a row, so the
    `ticks` frame of that one tick is built once and shared."""

    __slots__ = ("_encoded", "_frame")

    def __init__(self) -> None:
        self._encoded = ""
        self._frame = b""

    def frame(self, encoded: str) -> bytes:
        """The wire frame `{"type":"ticks","ticks":[<encoded>]}`."""
        if encoded is not self._encoded:  # identity: the memo holds the string, so no reuse
            self._encoded = encoded
            self._frame = text_frame(ticks_frame((encoded,)).encode())
        return self._frame


class SocketWriter:
    """Writes whole text frames straight onto a Hypercorn WebSocket's socket, when it can."""

    __slots__ = ("connection", "stream", "transport")

    def __init__(self, stream: WSStream, transport: asyncio.WriteTransport) -> None:
        self.stream = stream
        self.connection = stream.connection
        self.transport = transport

    @classmethod
    def for_current(cls, *, deflate: bool) -> SocketWriter | None:
        """The current WebSocket's socket writer, or None when the stack is not the expected one."""
        if deflate or shape_problems():
            return None
        stream = current_stream()
        if stream is None:
            return None
        try:  # WSStream.send is H11Protocol.stream_send, whose .send is TCPServer.protocol_send
            transport = stream.send.__self__.send.__self__.writer.transport  # type: ignore[attr-defined]
        except AttributeError:
            return None
        return cls(stream, transport) if isinstance(transport, asyncio.WriteTransport) else None

    def ready(self) -> bool:
        """Open, and nothing waiting in the socket's buffer (else: the slow, awaiting path)."""
        return not (
            self.stream.closed
            or self.connection.state is not ConnectionState.OPEN
            or self.transport.is_closing()
            or self.transport.get_write_buffer_size()
        )

    def write_frame(self, frame: bytes) -> bool:
        """Write one complete frame if `ready()`; False (nothing written) otherwise."""
        if not self.ready():
            return False
        self.transport.write(frame)
        return True

    def write_text(self, text: str) -> bool:
        """Write `text` as one text frame if `ready()`."""
        return self.write_frame(text_frame(text.encode()))


def sweeper(
    session: Session, socket: SocketWriter, closing: Callable[[], bool], flush: FlushClock
) -> Sweep:
    """The writer's `Sweep` for the flush clock: the pending ticks as one frame, written now.

    `WAIT` when a busy client has nothing pending this instant; `WAKE` while the connection is
    closing, the socket is backed up, there is anything but ticks to send, or the client went
    quiet: the writer then wakes and takes its own path.
    """
    outbox = session.outbox

    def sweep() -> int:
        if not outbox:
            if session.only_ticks() and flush.still_busy(session.last_frame_at, time.monotonic()):
                return WAIT
            return WAKE
        if closing() or not socket.ready():
            return WAKE
        taken = session.take_ticks()
        if taken is None:
            return WAKE
        ticks, oldest = taken
        socket.transport.write(text_frame(ticks_frame(ticks).encode()))
        session.sent(1, len(ticks), oldest)
        return WROTE

    return sweep


def direct_writer(
    session: Session, socket: SocketWriter, frames: TickFrames, flush: FlushClock
) -> Direct:
    """A synchronous one-tick frame writer for `Session.offer` (which records what it sent).

    It refuses (0.0) while the session sent a frame less than `flush.interval` ago (a busy
    client's ticks then gather in its outbox for the writer's next frame) or the socket is not
    ready; else it returns the time of the write.
    """

    def direct(encoded: str) -> float:
        now = time.monotonic()
        if flush.too_soon(session.last_frame_at, now) or not socket.write_frame(
            frames.frame(encoded)
        ):
            return 0.0
        return now

    return direct

"""`/ws`: the contract's WebSocket protocol over a `Session`, hardened against hostile peers.

Rules:
- Admission (Origin allowlist, per-address policy) is decided before `accept()`: a refused
  handshake gets HTTP 403/429, never `101`. A browser Origin must be on the allowlist; a
  handshake without one (a native client) is accepted unless TICKER_REQUIRE_ORIGIN=1.
- One reader and one writer task per connection, no task per message; the handler itself is the
  heartbeat/watchdog loop. Cleanup is in `finally`; CancelledError propagates.
- Bad input never closes the connection: it gets an error frame. Only these close it: a frame over
  `max_frame_bytes` (1009), persistent flooding (1008), silence for 2 x heartbeat + 5 s (1001),
  rotation at max age and drain (`reconnect` frame first).
- Every heartbeat interval the server sends `{"type":"heartbeat","ts":...}` (the page's proof that
  the server lives) and a WebSocket protocol ping, which every client library answers with a pong
  by itself. No ping when the client sent a frame since the previous heartbeat: the page answers
  each heartbeat with `{"op":"ping"}`, which proves it alive, and a ping with its pong took ~70 of
  the ~360 us of server CPU per client that a heartbeat round trip cost (1,000 clients).
  A connection's first heartbeat comes at a random point of the second half of the interval
  (`first_beat`), so clients that connected together do not beat together. A peer from which
  nothing arrives (no frame, no pong) for 2 x heartbeat + 5 s is dead and closed 1001: a
  contract client never has to send app frames. `{"op":"ping"}` (answered by `pong`) stays the
  page's cheap app-level check. Pongs are seen through `protocol_guard`; on a stack without it
  only app frames count, as before.
- Logs name peer, origin, session and reason; never a frame's content.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

from quart import Blueprint, Response, current_app, websocket
from quart.blueprints import BlueprintSetupState

from ticker.core.client_ops import Ping, Subscribe, Unsubscribe, clamp_rate, parse_client_frame
from ticker.core.codec import error_frame, frame
from ticker.core.errors import ClientError
from ticker.core.ratelimit import RateDecision, TokenBucket
from ticker.server.runtime import Runtime
from ticker.server.transports import deflate, protocol_guard, runtime_of, wsfast
from ticker.server.transports.guard import app_of, setup_guard
from ticker.server.transports.lifecycle import ROTATION_CODE, Stream
from ticker.stream.session import Session

bp = Blueprint("websocket", __name__)

_TICK_FRAMES = wsfast.TickFrames()  # one-tick frames, built once per tick for every client
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SEND_TIMEOUT = 2.0  # a dead peer must not hold the handler in close()
SILENCE_GRACE = 5.0


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    setup_guard(state)
    settings = runtime_of(app_of(state)).settings
    deflate.install(settings.max_frame_bytes, enabled=settings.ws_deflate)
    protocol_guard.install(settings.max_frame_bytes, settings.header_timeout)


class _Peer:
    """What the reader learns about the peer, read by the watchdog."""

    __slots__ = ("close_reason", "closing", "last_heard")

    def __init__(self, now: float) -> None:
        self.last_heard = now
        self.close_reason = "peer closed"
        self.closing = False  # we sent a close: the other task's sends may fail, and that is fine


@bp.websocket("/ws")
async def ws() -> Response | None:
    """Serve one WebSocket client until it leaves, misbehaves, or the server rotates/drains it."""
    runtime = runtime_of(current_app)
    stream = Stream.admit(
        current_app, websocket, "websocket", require_origin=runtime.settings.require_origin
    )
    if isinstance(stream, Response):
        return stream  # sent as the HTTP answer to the handshake: no 101
    session = stream.session
    peer = _Peer(asyncio.get_running_loop().time())
    try:
        await websocket.accept()
        stream.open()
        await _serve(runtime, session, peer)
    finally:
        stream.close(peer.close_reason)
    await _linger()  # only after our own close: a disconnect or cancellation skips it
    return None


async def _serve(runtime: Runtime, session: Session, peer: _Peer) -> None:
    """Run reader and writer; beat and watch for silence until either ends."""
    settings = runtime.settings
    loop = asyncio.get_running_loop()
    reader = asyncio.create_task(_read(runtime, session, peer), name=f"ws-read-{session.id}")
    writer = asyncio.create_task(_write(runtime, session, peer), name=f"ws-write-{session.id}")
    stream = protocol_guard.probe(wsfast.current_stream())  # sees protocol pongs, sends pings
    pinger: asyncio.Task[None] | None = None
    beat = settings.heartbeat_interval
    silence = 2 * beat + SILENCE_GRACE
    last_beat = loop.time()  # the previous heartbeat (at first: the start)
    next_beat = last_beat + first_beat(beat)

    def quiet_for() -> float:
        """Seconds since the peer last sent anything (a frame, or a pong when we can see them)."""
        quiet = loop.time() - peer.last_heard
        return quiet if stream is None else min(quiet, time.monotonic() - stream.last_heard)

    try:
        while True:
            wake = min(next_beat - loop.time(), silence - quiet_for())
            done, _ = await asyncio.wait(
                {reader, writer}, timeout=max(0.0, wake), return_when=asyncio.FIRST_COMPLETED
            )
            if done:
                for task in done:
                    if not peer.closing:
                        task.result()  # surface unexpected errors in the log
                return
            if quiet_for() >= silence:
                peer.close_reason = "heartbeat timeout"
                await _close(peer, CLOSE_GOING_AWAY, "no heartbeat")
                return
            now = loop.time()
            if now >= next_beat:
                beat_frame = {"ts": time.time_ns() // 1_000_000, "interval": beat}
                session.push_control(frame("heartbeat", beat_frame))
                if (
                    stream is not None
                    and (pinger is None or pinger.done())
                    and peer.last_heard < last_beat  # no frame from it since the last beat
                ):
                    pinger = asyncio.create_task(stream.ping(), name=f"ws-ping-{session.id}")
                last_beat, next_beat = now, now + beat
    finally:
        session.direct = session.direct_text = None  # nothing more straight onto the socket
        tasks = [reader, writer] if pinger is None else [reader, writer, pinger]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def first_beat(beat: float, rand: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds from a connection's start to its first heartbeat: a random point in [beat/2, beat].

    Why: clients that connect together (a drain's reconnects, a front end's restart, a bench's
    1,000 clients) would beat together for as long as they stay. When measured, each beat was a
    heartbeat frame, a protocol ping and the client's answer, each waking the connection's
    writer: at 20,000 ticks/s with 1,000 such clients, every 15 s, ~2,000 writer wakes came
    within ~2 s, a burst of loop work on top of the feed's (cheaper per beat since, still a
    burst). Never later than `beat`: a client may time out a server that stays silent longer
    than the interval it announced.
    """
    return rand(beat / 2, beat)


async def _linger() -> None:
    """Read and discard until the peer's disconnect cancels us (at most `CLOSE_SEND_TIMEOUT`).

    When the handler returns, Quart stops draining Hypercorn's bounded per-connection queue; a peer
    still sending (a flood) then blocks Hypercorn before it reads the peer's close reply, and the
    TCP connection is never closed. Lingering lets the close handshake finish.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_SEND_TIMEOUT):
            while True:
                await websocket.receive()


async def _close(peer: _Peer, code: int, reason: str) -> None:
    peer.closing = True
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_SEND_TIMEOUT):
            await websocket.close(code, reason)


async def _read(runtime: Runtime, session: Session, peer: _Peer) -> None:
    settings = runtime.settings
    counters = runtime.hub.counters
    loop = asyncio.get_running_loop()
    bucket = TokenBucket(settings.rate_per_minute, settings.rate_burst, loop.time)
    while True:
        data = await websocket.receive()
        peer.last_heard = loop.time()
        if data is not None and len(data) > settings.max_frame_bytes:
            peer.close_reason = "frame too large"
            await _close(peer, CLOSE_TOO_BIG, "frame too large")
            return
        decision = bucket.take()
        if decision is RateDecision.ABUSIVE:
            peer.close_reason = "rate limit exceeded"
            counters.errors_by_code["rate_limited"] += 1
            await websocket.send(error_frame("rate_limited", "too many messages: closing"))
            await _close(peer, CLOSE_POLICY, "rate limit exceeded")
            return
        try:
            if decision is RateDecision.LIMITED:
                raise ClientError("rate_limited", "too many messages: slow down")
            if not isinstance(data, str):  # binary (an empty one arrives as None)
                raise ClientError("bad_frame", "binary frames are not accepted: send JSON text")
            _apply(runtime, session, parse_client_frame(data, settings.max_symbols_per_client))
        except ClientError as exc:
            counters.errors_by_code[exc.code] += 1
            session.push_control(error_frame(exc.code, exc.message))


def _apply(runtime: Runtime, session: Session, op: Subscribe | Unsubscribe | Ping) -> None:
    if isinstance(op, Subscribe):
        limit = runtime.settings.max_symbols_per_client
        if len(session.symbols | set(op.symbols)) > limit:
            raise ClientError("too_many_symbols", f"at most {limit} symbols per connection")
        rate = clamp_rate(op.max_rate, runtime.settings.max_rate)
        runtime.hub.subscribe(session, op.symbols, op.since, rate)
    elif isinstance(op, Unsubscribe):
        runtime.hub.unsubscribe(session, op.symbols)
    else:
        session.push_control(frame("pong", {"nonce": op.nonce, "ts": time.time_ns() // 1_000_000}))


async def _write(runtime: Runtime, session: Session, peer: _Peer) -> None:
    flush = runtime.flush  # under load, rest up to flush.interval after a frame: fewer frames
    send = wsfast.text_sender()
    sock = wsfast.SocketWriter.for_current(deflate=runtime.settings.ws_deflate)
    sweep = None
    if sock is not None:
        session.direct = wsfast.direct_writer(session, sock, _TICK_FRAMES, flush)
        session.direct_text = lambda text: not peer.closing and sock.write_text(text)
        sweep = wsfast.sweeper(session, sock, lambda: peer.closing, flush)
    while True:
        await session.wait_pending()
        if session.close_code is None and flush.too_soon(session.last_frame_at, time.monotonic()):
            # Woken less than an interval after the last frame (the direct write declined):
            # rest first, so a busy client's ticks gather instead of going out one by one.
            await flush.rest(sweep)
            if not session.has_pending():
                continue  # the sweeps took it all, then found nothing: idle again
        batch = session.take_now()
        frames = batch.frames()
        for text in frames:
            if peer.closing:
                return
            if sock is None or not sock.write_text(text):
                await send(text)
        session.sent(len(frames), len(batch.ticks), batch.oldest_ts)
        if session.close_code is not None and not session.has_pending():
            peer.close_reason = "rotated" if session.close_code == ROTATION_CODE else "drained"
            await _close(peer, session.close_code, "reconnect")
            return
        if flush.interval:
            # Let more gather: about one frame per interval for a busy client, written by the
            # clock's sweep while this task sleeps on; woken when it is idle or has other work.
            await flush.rest(sweep)

"""`/ws`: the contract's WebSocket protocol over a `Session`.

Rule: one reader and one writer task per connection, no task per message. The reader turns frames
into hub calls (bad input -> an error frame, the connection stays open); the writer sends whatever
the session has pending, ticks joined into one frame. Cleanup is in `finally`; CancelledError
propagates.
"""

from __future__ import annotations

import asyncio
import random
import time

from quart import Blueprint, current_app, websocket

from ticker.core.client_ops import Ping, Subscribe, Unsubscribe, parse_client_frame
from ticker.core.codec import error_frame, frame
from ticker.core.errors import ClientError
from ticker.runtime import Runtime
from ticker.session import Session
from ticker.transports import runtime_of

bp = Blueprint("websocket", __name__)

CLOSE_TOO_BIG = 1009


@bp.websocket("/ws")
async def ws() -> None:
    """Serve one WebSocket client until it leaves or the server rotates/drains it."""
    runtime = runtime_of(current_app)
    settings = runtime.settings
    session = Session("websocket", websocket.remote_addr or "?", settings.outbox_limit)
    await websocket.accept()
    runtime.hub.attach(session)
    loop = asyncio.get_running_loop()
    age = settings.max_connection_age
    age -= random.uniform(0, min(settings.max_connection_age_jitter, age * 0.1))
    rotate = loop.call_later(age, session.end, 1000, "max connection age reached")
    reader = asyncio.create_task(_read(runtime, session), name=f"ws-read-{session.id}")
    writer = asyncio.create_task(_write(runtime, session), name=f"ws-write-{session.id}")
    try:
        done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # surface unexpected errors in the log
    finally:
        rotate.cancel()
        for task in (reader, writer):
            task.cancel()
        await asyncio.gather(reader, writer, return_exceptions=True)
        runtime.hub.detach(session)


async def _read(runtime: Runtime, session: Session) -> None:
    settings = runtime.settings
    while True:
        data = await websocket.receive()
        if data is not None and len(data) > settings.max_frame_bytes:
            session.push_control(error_frame("bad_frame", "frame too large"))
            await websocket.close(CLOSE_TOO_BIG, "frame too large")
            return
        try:
            op = parse_client_frame(data, settings.max_symbols_per_client)
            _apply(runtime, session, op)
        except ClientError as exc:
            runtime.hub.counters.errors_by_code[exc.code] += 1
            session.push_control(error_frame(exc.code, exc.message))


def _apply(runtime: Runtime, session: Session, op: Subscribe | Unsubscribe | Ping) -> None:
    if isinstance(op, Subscribe):
        limit = runtime.settings.max_symbols_per_client
        if len(session.symbols | set(op.symbols)) > limit:
            raise ClientError("too_many_symbols", f"at most {limit} symbols per connection")
        runtime.hub.subscribe(session, op.symbols, op.since)
    elif isinstance(op, Unsubscribe):
        runtime.hub.unsubscribe(session, op.symbols)
    else:
        session.push_control(frame("pong", {"nonce": op.nonce, "ts": time.time_ns() // 1_000_000}))


async def _write(runtime: Runtime, session: Session) -> None:
    flush_interval = runtime.settings.flush_interval
    latency = runtime.latency
    while True:
        batch = await session.next_batch()
        frames = batch.frames()
        for text in frames:
            await websocket.send(text)
        session.frames_sent += len(frames)
        if batch.ticks:
            session.ticks_sent += len(batch.ticks)
            latency.record(time.time() * 1000 - batch.oldest_ts)
        if session.close_code is not None and not session.has_pending():
            await websocket.close(session.close_code, "reconnect")
            return
        if flush_interval:
            await asyncio.sleep(flush_interval)

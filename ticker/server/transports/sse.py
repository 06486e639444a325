"""`/sse`: server-sent events for browsers without WebSockets (contract: Fallbacks).

Rules:
- Every `data:` line is one frame the WebSocket would send (`ticks`, `subscribed`, `resync`,
  `reconnect`), as unnamed `message` events. Only `ticks` events carry an `id:`: the resume cursor
  after that event. `Last-Event-ID` wins over `?cursor=` (the browser sends the newer one on its
  own reconnects, with the original URL).
- A resume replays from this instance's history when it covers the gap (`recovered: true`),
  otherwise sends `resync` + snapshot. Any instance serves any cursor.
- A `heartbeat` event (`{"type": "heartbeat", "ts": ..., "interval": ...}`, as on /ws) goes out
  after each heartbeat interval without events: a comment line would keep proxies from timing out
  too, but a page cannot see comments, and it needs proof that the stream flows (a buffering
  proxy delivers nothing). `retry:` sets the browser's reconnect delay. The response timeout is
  disabled for this response only.
- `&max_rate=N` paces every symbol of the stream as `/ws` does; the `id:` cursor then covers
  only what was sent (a held tick is not in it).
- Max age and drain end the stream after a `reconnect` event. Cleanup runs exactly once, even if
  the body is never iterated (the client left before the first byte).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator

import structlog
from quart import Blueprint, Response, current_app, request

from ticker.core.codec import frame, ticks_frame
from ticker.core.errors import ClientError
from ticker.server.runtime import Runtime
from ticker.server.transports import runtime_of, schedule_rotation
from ticker.server.transports.guard import Admission, Guard, guard_of, setup_guard, shown
from ticker.server.transports.params import (
    bad_request,
    max_rate_param,
    next_cursor,
    since_param,
    symbols_param,
)
from ticker.stream.session import Session

bp = Blueprint("sse", __name__)
log = structlog.get_logger("ticker.server.transports")
bp.record_once(setup_guard)


class _Stream:
    """One open event stream's resources; `close()` is idempotent."""

    def __init__(self, runtime: Runtime, guard: Guard, admission: Admission, session: Session):
        self.runtime, self.guard, self.admission, self.session = runtime, guard, admission, session
        self.rotate: asyncio.TimerHandle | None = None
        self.started = time.monotonic()
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.rotate is not None:
            self.rotate.cancel()
        self.runtime.hub.detach(self.session)
        self.guard.release(self.admission)
        log.info(
            "stream_close",
            transport="sse",
            session=self.session.id,
            peer=self.admission.address,
            seconds=round(time.monotonic() - self.started, 3),
            frames_sent=self.session.frames_sent,
        )


@bp.get("/sse")
async def sse() -> Response:
    """Open an event stream of the `symbols` query parameter, resuming from a cursor if given."""
    runtime = runtime_of(current_app)
    settings = runtime.settings
    guard = guard_of(current_app)
    admission = guard.admit(request, "sse")
    if isinstance(admission, Response):
        return admission
    cursor = request.headers.get("Last-Event-ID") or request.args.get("cursor")
    try:
        symbols = symbols_param(request.args.get("symbols"), settings.max_symbols_per_client)
        since = since_param(cursor, settings.cursor_key, settings.max_symbols_per_client, symbols)
        rate = max_rate_param(request.args.get("max_rate"), settings.max_rate)
    except ClientError as exc:
        guard.release(admission)
        runtime.hub.counters.errors_by_code[exc.code] += 1
        return bad_request(exc)
    session = Session("sse", admission.address, settings.outbox_limit)
    stream = _Stream(runtime, guard, admission, session)
    runtime.hub.attach(session)
    runtime.hub.subscribe(session, symbols, since, rate)
    stream.rotate = schedule_rotation(settings, session)
    log.info(
        "stream_open",
        transport="sse",
        session=session.id,
        peer=admission.address,
        origin=shown(admission.origin),
        resumed=bool(since),
    )
    body = _events(stream, since, symbols)
    weakref.finalize(body, stream.close)  # the client may leave before the body is iterated
    response = Response(
        body,
        content_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"},
    )
    response.timeout = None  # this response streams for up to max_connection_age
    return response


async def _events(
    stream: _Stream, since: dict[str, int], symbols: tuple[str, ...]
) -> AsyncIterator[str]:
    runtime, session = stream.runtime, stream.session
    settings = runtime.settings
    try:
        yield f"retry: {settings.sse_retry_ms}\n\n"
        while True:
            try:
                async with asyncio.timeout(settings.heartbeat_interval):
                    batch = await session.next_batch()
            except TimeoutError:
                beat = {"ts": time.time_ns() // 1_000_000, "interval": settings.heartbeat_interval}
                yield f"data: {frame('heartbeat', beat)}\n\n"
                continue
            parts = [f"data: {control}\n\n" for control in batch.control]
            if batch.ticks:
                sent = session.outbox.sent_seq()  # a held max_rate tick is not sent yet
                cursor = next_cursor(since, sent, symbols, settings.cursor_key)
                parts.append(f"id: {cursor}\ndata: {ticks_frame(batch.ticks)}\n\n")
                session.ticks_sent += len(batch.ticks)
                runtime.latency.record(time.time() * 1000 - batch.oldest_ts)
            session.frames_sent += len(parts)
            yield "".join(parts)
            if session.close_code is not None and not session.has_pending():
                return
    finally:
        stream.close()

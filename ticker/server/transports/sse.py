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

from quart import Blueprint, Response, current_app, request

from ticker.core.codec import frame, ticks_frame
from ticker.core.errors import ClientError
from ticker.server.transports import runtime_of
from ticker.server.transports.guard import setup_guard
from ticker.server.transports.lifecycle import Stream
from ticker.server.transports.params import next_cursor, stream_params

bp = Blueprint("sse", __name__)
bp.record_once(setup_guard)


@bp.get("/sse")
async def sse() -> Response:
    """Open an event stream of the `symbols` query parameter, resuming from a cursor if given."""
    runtime = runtime_of(current_app)
    stream = Stream.admit(current_app, request, "sse")
    if isinstance(stream, Response):
        return stream
    cursor = request.headers.get("Last-Event-ID") or request.args.get("cursor")
    try:
        params = stream_params(request.args, cursor, runtime.settings)
    except ClientError as exc:
        return stream.refuse(exc)
    stream.open(resumed=bool(params.since))
    runtime.hub.subscribe(stream.session, params.symbols, params.since, params.max_rate)
    body = _events(stream, params.since, params.symbols)
    weakref.finalize(body, stream.close)  # the client may leave before the body is iterated
    response = Response(
        body,
        content_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"},
    )
    response.timeout = None  # this response streams for up to max_connection_age
    return response


async def _events(
    stream: Stream, since: dict[str, int], symbols: tuple[str, ...]
) -> AsyncIterator[str]:
    settings, session = stream.runtime.settings, stream.session
    try:
        yield f"retry: {settings.sse_retry_ms}\n\n"
        while True:
            try:
                async with asyncio.timeout(settings.heartbeat_interval):
                    batch = await session.next_batch()
            except TimeoutError:
                beat = {"ts": time.time_ns() // 1_000_000, "interval": settings.heartbeat_interval}
                session.sent(1)  # counted as it is handed over, like every SSE write
                yield f"data: {frame('heartbeat', beat)}\n\n"
                continue
            parts = [f"data: {control}\n\n" for control in batch.control]
            if batch.ticks:
                sent = session.outbox.sent_seq()  # a held max_rate tick is not sent yet
                cursor = next_cursor(since, sent, symbols, settings.cursor_key)
                parts.append(f"id: {cursor}\ndata: {ticks_frame(batch.ticks)}\n\n")
            session.sent(len(parts), len(batch.ticks), batch.oldest_ts)
            yield "".join(parts)
            if session.close_code is not None and not session.has_pending():
                return
    finally:
        stream.close()

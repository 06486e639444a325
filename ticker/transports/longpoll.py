"""`/poll`: long polling for clients that have neither WebSockets nor SSE (contract: Fallbacks).

Rules:
- `GET /poll?symbols=..` answers at once with the snapshot and a cursor. With `&cursor=C` it
  answers at once when history holds newer ticks, else holds the request up to `poll_timeout` for
  new ones, then answers empty with an equivalent cursor.
- A cursor that history no longer covers (or a seq gap while waiting) adds `"resync": true`; the
  ticks are then the snapshot. Cursors are self-contained: any instance serves any cursor.
- A held poll is a `longpoll` session (counted in stats); it is detached when answered, on
  client disconnect (cancellation) and on drain (answered early, empty). Between two polls the
  client is remembered in `runtime.pollers` under (address, the cursor it was given), so the
  dashboard keeps counting it and its symbols (ticker/core/pollers.py).
"""

from __future__ import annotations

import asyncio

import orjson
from quart import Blueprint, Response, current_app, request

from ticker.core.errors import ClientError
from ticker.runtime import Runtime
from ticker.session import Session
from ticker.transports import runtime_of
from ticker.transports.guard import guard_of, setup_guard
from ticker.transports.params import bad_request, next_cursor, since_param, symbols_param

bp = Blueprint("longpoll", __name__)
bp.record_once(setup_guard)


@bp.get("/poll")
async def poll() -> Response:
    """Answer with ticks after the cursor (waiting for some if needed) and the next cursor."""
    runtime = runtime_of(current_app)
    settings = runtime.settings
    guard = guard_of(current_app)
    admission = guard.admit(request, "longpoll", origin_required=False)
    if isinstance(admission, Response):
        return admission
    try:
        cursor = request.args.get("cursor")
        symbols = symbols_param(request.args.get("symbols"), settings.max_symbols_per_client)
        since = since_param(cursor, settings.cursor_key, settings.max_symbols_per_client, symbols)
        session = Session("longpoll", admission.address, settings.outbox_limit)
        runtime.pollers.polling(admission.address, cursor)
        body, next_cursor_ = await _answer(
            runtime, session, symbols, since, wait=cursor is not None
        )
        runtime.pollers.answered(admission.address, next_cursor_, symbols)
    except ClientError as exc:
        runtime.hub.counters.errors_by_code[exc.code] += 1
        return bad_request(exc)
    finally:
        guard.release(admission)
    response = Response(body, 200, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


async def _answer(
    runtime: Runtime, session: Session, symbols: tuple[str, ...], since: dict[str, int], wait: bool
) -> tuple[bytes, str]:
    hub = runtime.hub
    hub.attach(session)
    try:
        hub.subscribe(session, symbols, since)
        ticks = session.take_now().ticks
        if wait and not ticks and not session.resynced:
            try:
                async with asyncio.timeout(runtime.settings.poll_timeout):
                    while not ticks and not session.resynced and session.close_code is None:
                        ticks = (await session.next_batch()).ticks
            except TimeoutError:
                pass
            ticks += session.take_now().ticks  # whatever arrived as the wait ended
        cursor = next_cursor(since, session.outbox.last_seq, symbols, runtime.settings.cursor_key)
        session.frames_sent += 1
        session.ticks_sent += len(ticks)
    finally:
        hub.detach(session)
    tail = {"cursor": cursor, "resync": True} if session.resynced else {"cursor": cursor}
    return b'{"ticks":[' + ",".join(ticks).encode() + b"]," + orjson.dumps(tail)[1:], cursor

"""`/poll`: long polling for clients that have neither WebSockets nor SSE (contract: Fallbacks).

Rules:
- `GET /poll?symbols=..` answers at once with the snapshot and a cursor. With `&cursor=C` it
  answers at once when history holds newer ticks, else holds the request up to `poll_timeout` for
  new ones, then answers empty with an equivalent cursor.
- A cursor that history no longer covers (or a seq gap while waiting) adds `"resync": true`; the
  ticks are then the snapshot. Cursors are self-contained: any instance serves any cursor.
- `&max_rate=N`: a poll with a cursor is answered no sooner than 1/N s after it arrived, with
  the latest tick per symbol only. A client polls again only after an answer, so each symbol
  gets at most N ticks/s, and the last tick of a burst comes at most 1/N s (plus a round trip)
  late. Stateless like the cursor: nothing is kept between polls.
- A new poller (no cursor) spends a new-stream token of its address; a poll with a cursor is a
  continuation and only counts toward the address's open streams.
- A held poll is a `longpoll` session (counted in stats); it is detached when answered, on
  client disconnect (cancellation) and on drain (answered early, empty). Between two polls the
  client is remembered in `runtime.pollers` under (address, the cursor it was given), so the
  dashboard keeps counting it and its symbols (ticker/core/pollers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
from quart import Blueprint, Response, current_app, request

from ticker.core.errors import ClientError
from ticker.server.runtime import Runtime
from ticker.server.transports import runtime_of
from ticker.server.transports.guard import guard_of, setup_guard
from ticker.server.transports.params import (
    bad_request,
    max_rate_param,
    next_cursor,
    since_param,
    symbols_param,
)
from ticker.stream.session import Session

bp = Blueprint("longpoll", __name__)
bp.record_once(setup_guard)


@bp.get("/poll")
async def poll() -> Response:
    """Answer with ticks after the cursor (waiting for some if needed) and the next cursor."""
    runtime = runtime_of(current_app)
    settings = runtime.settings
    guard = guard_of(current_app)
    cursor = request.args.get("cursor")
    admission = guard.admit(request, "longpoll", charge=cursor is None)
    if isinstance(admission, Response):
        return admission
    try:
        symbols = symbols_param(request.args.get("symbols"), settings.max_symbols_per_client)
        since = since_param(cursor, settings.cursor_key, settings.max_symbols_per_client, symbols)
        rate = max_rate_param(request.args.get("max_rate"), settings.max_rate)
        session = Session("longpoll", admission.address, settings.outbox_limit)
        runtime.pollers.polling(admission.address, cursor)
        body, given = await _answer(
            runtime, session, symbols, since, wait=cursor is not None, rate=rate
        )
        runtime.pollers.answered(admission.address, given, symbols)
    except ClientError as exc:
        runtime.hub.counters.errors_by_code[exc.code] += 1
        return bad_request(exc)
    finally:
        guard.release(admission)
    response = Response(body, 200, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


async def _answer(
    runtime: Runtime,
    session: Session,
    symbols: tuple[str, ...],
    since: dict[str, int],
    *,
    wait: bool,
    rate: float | None,
) -> tuple[bytes, str]:
    hub = runtime.hub
    hub.attach(session)
    try:
        hub.subscribe(session, symbols, since)
        paced = rate is not None and wait
        if rate is not None and wait:
            ticks = await _paced(session, 1.0 / rate, runtime.settings.poll_timeout)
        else:
            ticks = session.take_now().ticks
        if wait and not paced and not ticks and not session.resynced:
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
    tail: dict[str, object] = {"cursor": cursor}
    if session.resynced:
        tail["resync"] = True
    if rate is not None:
        tail["max_rate"] = rate
    return b'{"ticks":[' + ",".join(ticks).encode() + b"]," + orjson.dumps(tail)[1:], cursor


async def _paced(session: Session, interval: float, hold: float) -> list[str]:
    """A max_rate poll's ticks: held `interval`, then (if none yet) until the first one.

    Nothing is taken before the end, so the answer holds the latest tick of each symbol and
    the cursor (the outbox's seq gate) matches exactly what is sent.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + interval
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(hold):
            while session.close_code is None and not session.resynced:
                if loop.time() >= deadline and session.outbox:
                    break
                left = deadline - loop.time()
                async with _at_most(left if left > 0 else None):
                    await session.wait_wake()  # a tick into an empty outbox, a resync, a drain
    session.outbox.conflate_now()
    return session.take_now().ticks


@contextlib.asynccontextmanager
async def _at_most(seconds: float | None) -> AsyncIterator[None]:
    """`asyncio.timeout(seconds)` whose expiry just ends the block (None: no limit)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            yield

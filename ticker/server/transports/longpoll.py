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
from ticker.server.transports import runtime_of
from ticker.server.transports.guard import setup_guard
from ticker.server.transports.lifecycle import Stream
from ticker.server.transports.params import StreamParams, next_cursor, stream_params
from ticker.stream.session import Batch, Session

bp = Blueprint("longpoll", __name__)
bp.record_once(setup_guard)


@bp.get("/poll")
async def poll() -> Response:
    """Answer with ticks after the cursor (waiting for some if needed) and the next cursor."""
    runtime = runtime_of(current_app)
    cursor = request.args.get("cursor")
    stream = Stream.admit(current_app, request, "longpoll", charge=cursor is None)
    if isinstance(stream, Response):
        return stream
    address = stream.admission.address
    try:
        params = stream_params(request.args, cursor, runtime.settings)
        runtime.pollers.polling(address, cursor)
        body, given = await _answer(stream, params, wait=cursor is not None)
        runtime.pollers.answered(address, given, params.symbols)
    except ClientError as exc:
        return stream.refuse(exc)
    finally:
        stream.close()
    response = Response(body, 200, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


async def _answer(stream: Stream, params: StreamParams, *, wait: bool) -> tuple[bytes, str]:
    runtime, session = stream.runtime, stream.session
    symbols, since, rate = params.symbols, params.since, params.max_rate
    stream.open()
    runtime.hub.subscribe(session, symbols, since)
    paced = rate is not None and wait
    if rate is not None and wait:
        batches = [await _paced(session, 1.0 / rate, runtime.settings.poll_timeout)]
    else:
        batches = [session.take_now()]
    if wait and not paced and not batches[0].ticks and not session.resynced:
        try:
            async with asyncio.timeout(runtime.settings.poll_timeout):
                while not session.resynced and session.close_code is None:
                    batches.append(await session.next_batch())
                    if batches[-1].ticks:
                        break
        except TimeoutError:
            pass
        batches.append(session.take_now())  # whatever arrived as the wait ended
    ticks = [encoded for batch in batches for encoded in batch.ticks]
    oldest = min((batch.oldest_ts for batch in batches if batch.ticks), default=0)
    cursor = next_cursor(since, session.outbox.last_seq, symbols, runtime.settings.cursor_key)
    session.sent(1, len(ticks), oldest)  # one answer: one frame
    tail: dict[str, object] = {"cursor": cursor}
    if session.resynced:
        tail["resync"] = True
    if rate is not None:
        tail["max_rate"] = rate
    return b'{"ticks":[' + ",".join(ticks).encode() + b"]," + orjson.dumps(tail)[1:], cursor


async def _paced(session: Session, interval: float, hold: float) -> Batch:
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
    return session.take_now()


@contextlib.asynccontextmanager
async def _at_most(seconds: float | None) -> AsyncIterator[None]:
    """`asyncio.timeout(seconds)` whose expiry just ends the block (None: no limit)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            yield

"""One client stream's life, the same for `/ws`, `/sse` and `/poll`: admit, open, close.

The transports differ only in how they write (`websocket.py`, `sse.py`, `longpoll.py`); what a
stream goes through from its first request to its end is here, once.

Rules:
- `admit` decides before anything is accepted (the guard: Origin allowlist, per-address policy);
  a refusal is the 403/429 response to send instead (for a WebSocket: no `101`).
- An admitted stream owns its `Session`, made for its transport with the instance's outbox limit
  and latency record, so every transport's sends are counted by the same rule (`Session.sent`).
- `open` attaches the session to the hub (from then on it gets ticks), starts the rotation at
  max connection age and logs `stream_open`. `close` undoes it all exactly once, whatever ended
  the stream: it cancels the rotation, detaches the session (the hub keeps its send counters in
  the per-transport totals), releases the admission and logs `stream_close`.
- `refuse(exc)` ends a stream whose parameters are bad: the error code is counted, the admission
  released, and the answer is a 400 with the error frame.
- A long poll is one request of a longer-lived poller, not a stream: no rotation (it ends within
  `poll_timeout`) and no open/close log lines (a busy poller sends several requests a second).
- The rotation is jittered (up to 10 % of the age, at most `max_connection_age_jitter`) so the
  clients of one instance do not all reconnect in the same second.
"""

from __future__ import annotations

import asyncio
import random
import time

import structlog
from quart import Quart, Response
from quart.wrappers.base import BaseRequestWebsocket

from ticker.core.errors import ClientError
from ticker.server.runtime import Runtime
from ticker.server.transports import runtime_of
from ticker.server.transports.guard import Admission, Guard, guard_of, shown
from ticker.server.transports.params import bad_request
from ticker.stream.session import Session, Transport

log = structlog.get_logger("ticker.server.transports")
ROTATION_CODE = 1000  # a normal close: the client reconnects at once, resuming from its cursor


class Stream:
    """An admitted client stream: its runtime, its admission and its session."""

    def __init__(
        self, runtime: Runtime, guard: Guard, admission: Admission, transport: Transport
    ) -> None:
        self.runtime, self.guard, self.admission = runtime, guard, admission
        settings = runtime.settings
        self.session = Session(
            transport, admission.address, settings.outbox_limit, latency=runtime.latency
        )
        self._lasting = transport != "longpoll"  # a stream, not one poll: rotation, log lines
        self._rotation: asyncio.TimerHandle | None = None
        self._started = time.monotonic()
        self._opened = self._closed = False

    @classmethod
    def admit(
        cls,
        app: Quart,
        conn: BaseRequestWebsocket,
        transport: Transport,
        *,
        require_origin: bool = False,
        charge: bool = True,
    ) -> Stream | Response:
        """An admitted stream for `conn`, or the 403/429 response to send instead."""
        guard = guard_of(app)
        admission = guard.admit(conn, transport, require_origin=require_origin, charge=charge)
        if isinstance(admission, Response):
            return admission
        return cls(runtime_of(app), guard, admission, transport)

    def open(self, **fields: object) -> None:
        """Start delivering to the session; a stream also starts its rotation and logs."""
        session = self.session
        self.runtime.hub.attach(session)
        if not self._lasting:
            return
        self._opened = True
        self._rotation = _schedule_rotation(self.runtime, session)
        log.info(
            "stream_open",
            transport=session.transport,
            session=session.id,
            peer=self.admission.address,
            origin=shown(self.admission.origin),
            **fields,
        )

    def close(self, reason: str | None = None) -> None:
        """End the stream: stop its rotation, detach, release the admission, log. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._rotation is not None:
            self._rotation.cancel()
        session = self.session
        self.runtime.hub.detach(session)
        self.guard.release(self.admission)
        if not self._opened:  # logged only if its opening was
            return
        log.info(
            "stream_close",
            transport=session.transport,
            session=session.id,
            peer=self.admission.address,
            **({} if reason is None else {"reason": reason}),
            seconds=round(time.monotonic() - self._started, 3),
            frames_sent=session.frames_sent,
            ticks_sent=session.ticks_sent,
        )

    def refuse(self, exc: ClientError) -> Response:
        """Close a stream whose request was bad: count the error, answer 400 with its frame."""
        self.runtime.hub.counters.errors_by_code[exc.code] += 1
        self.close()
        return bad_request(exc)


def _schedule_rotation(runtime: Runtime, session: Session) -> asyncio.TimerHandle:
    """End the session with `reconnect` before App Engine's one-hour cut (jittered)."""
    settings = runtime.settings
    age = settings.max_connection_age
    age -= random.uniform(0, min(settings.max_connection_age_jitter, age * 0.1))
    loop = asyncio.get_running_loop()
    return loop.call_later(age, session.end, ROTATION_CODE, "max connection age reached")

"""Thin I/O layers that move a `Session`'s frames over WebSocket, SSE and long polling."""

from __future__ import annotations

import asyncio
import random

from quart import Quart

from ticker.server.runtime import Runtime
from ticker.server.settings import Settings
from ticker.stream.session import Session


def runtime_of(app: Quart) -> Runtime:
    """The app's `Runtime` (set by `create_app`), typed."""
    runtime = app.extensions["ticker"]
    assert isinstance(runtime, Runtime)
    return runtime


def schedule_rotation(settings: Settings, session: Session) -> asyncio.TimerHandle:
    """End the stream with `reconnect` before App Engine's one-hour cut, jittered.

    The jitter (up to 10 % of the age, at most `max_connection_age_jitter`) keeps the clients of
    one instance from all reconnecting in the same second.
    """
    age = settings.max_connection_age
    age -= random.uniform(0, min(settings.max_connection_age_jitter, age * 0.1))
    loop = asyncio.get_running_loop()
    return loop.call_later(age, session.end, 1000, "max connection age reached")

"""Thin I/O layers that move a `Session`'s frames over WebSocket, SSE and long polling."""

from __future__ import annotations

from quart import Quart

from ticker.server.runtime import Runtime


def runtime_of(app: Quart) -> Runtime:
    """The app's `Runtime` (set by `create_app`), typed."""
    runtime = app.extensions["ticker"]
    assert isinstance(runtime, Runtime)
    return runtime

"""The fast paths say whether they are on and why, and an upgrade that changes the internals
they rely on fails here by name instead of falling back silently.

`wsfast`, `protocol_guard` and `deflate` list the Hypercorn/Quart/wsproto internals they reach
into (`EXPECTED*`); the first test is the one an upgrade breaks. The others change one internal
on purpose (as an upgrade would), and check that its path is named, turned off, and logged.
That the live chain resolves on real Hypercorn when these checks pass is
`test_ws_fast_paths.py`'s (it fails naming the changed internals when no socket writer is found).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypercorn.asyncio.tcp_server import TCPServer
from quart.asgi import ASGIWebsocketConnection
from wsproto.extensions import PerMessageDeflate

from tests.service.streams import BASE_ENV, serving
from ticker.server import fastpaths
from ticker.server.logs import configure_logging
from ticker.server.settings import Settings
from ticker.server.transports import deflate, protocol_guard, wsfast

PATHS = {
    "ws_direct_writes",
    "ws_asgi_send",
    "protocol_guard",
    "ws_deflate",
    "orjson",
    "event_loop",
    "gc",
    "gil_switch",
}


@pytest.mark.parametrize("module", [wsfast, protocol_guard, deflate], ids=lambda m: m.__name__)
def test_every_internal_a_fast_path_relies_on_has_the_expected_shape(module: Any) -> None:
    changed = list(module.shape_problems())
    assert changed == [], f"{module.__name__} relies on internals that changed: {changed}"


@pytest.fixture
def fresh_shapes() -> Iterator[None]:
    """`wsfast.shape_problems` is computed once per process: recompute around a change."""
    wsfast.shape_problems.cache_clear()
    yield
    wsfast.shape_problems.cache_clear()
    deflate.install(16 * 1024)  # back to what every app installs by default


@contextmanager
def records_of(name: str) -> Iterator[list[logging.LogRecord]]:
    """The records logger `name` emits meanwhile (logging configured first: the app's
    `configure_logging` replaces the root's handlers, caplog's among them)."""
    configure_logging()
    handler = _Collect()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


class _Collect(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _paths(settings: Settings) -> dict[str, fastpaths.FastPath]:
    loop = asyncio.new_event_loop()
    try:
        return {p.name: p for p in fastpaths.survey(settings, loop)}
    finally:
        loop.close()


def test_a_changed_quart_internal_turns_the_direct_writes_off_by_name(
    monkeypatch: pytest.MonkeyPatch, fresh_shapes: None
) -> None:
    async def built_otherwise(self: object, *args: object) -> None:
        """An upgraded Quart that builds its Websocket another way."""

    monkeypatch.setattr(ASGIWebsocketConnection, "_create_websocket_from_scope", built_otherwise)
    internal = (
        "quart.asgi.ASGIWebsocketConnection (Websocket's send = partial(send_data, asgi_send))"
    )
    assert wsfast.shape_problems() == (internal,)
    assert wsfast.SocketWriter.for_current(deflate=False) is None  # the awaiting path, no lookup
    paths = _paths(Settings.from_env(BASE_ENV))
    for name in ("ws_direct_writes", "ws_asgi_send"):
        assert not paths[name].on
        assert paths[name].degraded
        assert internal in paths[name].why


def test_a_changed_hypercorn_internal_leaves_hypercorn_unpatched_and_says_which(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def read_otherwise(self: object) -> None:
        """An upgraded Hypercorn whose read loop is not the one GuardedTCPServer re-implements."""

    monkeypatch.setattr(TCPServer, "_read_data", read_otherwise)
    assert protocol_guard.shape_problems() == ["hypercorn.asyncio.tcp_server.TCPServer._read_data"]
    with records_of("ticker.server.transports") as records:
        assert protocol_guard.install(16 * 1024) is False
    (record,) = records
    assert record.levelno == logging.WARNING
    assert record.msg["message"] == "protocol_guard_skipped"  # type: ignore[index]
    assert record.msg["internals"] == ["hypercorn.asyncio.tcp_server.TCPServer._read_data"]  # type: ignore[index]


def test_a_changed_wsproto_internal_declines_deflate_even_when_asked_for(
    monkeypatch: pytest.MonkeyPatch, fresh_shapes: None
) -> None:
    def complete_otherwise(self: object, proto: object, fin: bool, more: object) -> None:
        """An upgraded wsproto with another signature."""

    monkeypatch.setattr(PerMessageDeflate, "frame_inbound_complete", complete_otherwise)
    (internal,) = deflate.shape_problems()
    assert "frame_inbound_complete" in internal
    deflate.install(16 * 1024, enabled=True)
    assert deflate.mode() == "declined"  # plain frames: always correct, never unbounded
    path = _paths(Settings.from_env({**BASE_ENV, "TICKER_WS_DEFLATE": "1"}))["ws_deflate"]
    assert (path.on, path.degraded) == (False, True)
    assert internal in path.why


async def test_serving_logs_one_fast_paths_line() -> None:
    with records_of("ticker.server.fastpaths") as lines:
        async with serving():
            pass
    assert len(lines) == 1
    (line,) = lines
    event = line.msg
    assert isinstance(event, dict)
    assert event["message"] == "fast_paths"
    assert line.levelno == logging.INFO  # nothing degraded on the pinned versions
    assert set(event) >= PATHS
    assert event["ws_direct_writes"].startswith("on: ")
    assert event["ws_deflate"] == "off: declined (TICKER_WS_DEFLATE=0: plain frames)"


def test_a_degraded_path_makes_the_line_a_warning() -> None:
    with records_of("ticker.server.fastpaths") as lines:
        fastpaths.log_survey(
            [
                fastpaths.FastPath("orjson", True, "fine"),
                fastpaths.FastPath("protocol_guard", False, "unexpected internals: x", True),
            ]
        )
    (line,) = lines
    assert line.levelno == logging.WARNING
    assert line.msg["protocol_guard"] == "off: unexpected internals: x"  # type: ignore[index]

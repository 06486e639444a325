"""The Hypercorn internals that `protocol_guard` overrides keep the shape it expects.

The guards subclass Hypercorn 0.18's `TCPServer` and `WSStream` and re-implement two of their
methods (`TCPServer._read_data`, `WSStream._handle_events`); an upgrade that changes them must fail
here, naming the internal, not silently in production (`test_fast_paths.py` changes one on
purpose: the guards are then not installed and the log says which). Their behaviour is tested
against real server processes in `tests/e2e/test_floods.py`.
"""

from __future__ import annotations

import hypercorn.asyncio.run as asyncio_run
import hypercorn.protocol.h2 as h2_protocol
import hypercorn.protocol.h11 as h11_protocol

from tests.conftest import FakeClock
from tests.service.streams import BASE_ENV
from ticker.app import create_app
from ticker.broker.memory import InMemoryBroker
from ticker.server.transports import protocol_guard
from ticker.server.transports.protocol_guard import GuardedTCPServer, GuardedWSStream, Notes


def test_the_overridden_hypercorn_internals_have_the_expected_shape():
    # The constructors the guards inherit, the two methods they re-implement (their source
    # fragments), the buffer they replace: `protocol_guard.EXPECTED`, each named.
    assert protocol_guard.shape_problems() == []


def test_creating_the_app_installs_the_guards_with_the_apps_limits():
    create_app(
        {**BASE_ENV, "TICKER_MAX_FRAME_BYTES": "4096", "TICKER_HEADER_TIMEOUT": "3"},
        broker=InMemoryBroker(),
    )
    assert asyncio_run.TCPServer is GuardedTCPServer  # type: ignore[attr-defined]
    assert h11_protocol.WSStream is GuardedWSStream  # type: ignore[attr-defined]
    assert h2_protocol.WSStream is GuardedWSStream  # type: ignore[attr-defined]
    assert GuardedWSStream.max_message_bytes == 4096
    assert GuardedTCPServer.header_timeout == 3.0
    assert protocol_guard.install(16 * 1024)  # idempotent: installing again keeps the guards
    assert asyncio_run.TCPServer is GuardedTCPServer  # type: ignore[attr-defined]


def test_notes_log_one_line_per_interval_with_the_count(clock: FakeClock):
    notes = Notes(60.0, clock)
    assert notes.note("x") is True
    assert [notes.note("x") for _ in range(99)] == [False] * 99
    assert notes.note("y") is True  # kinds are independent
    clock.advance(60)
    assert notes.note("x") is True
    assert notes.totals == {"x": 101, "y": 1}

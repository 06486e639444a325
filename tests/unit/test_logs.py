"""asyncio's per-connection tracebacks become one short line a minute."""

from __future__ import annotations

import logging
import sys

from tests.conftest import FakeClock
from ticker.server.logs import ConnectionErrorDigest


def _record(name: str = "asyncio", msg: str = ConnectionErrorDigest.PREFIX + "\ntransport: x"):
    try:
        raise ExceptionGroup("unhandled errors in a TaskGroup", [KeyError("boom")])
    except ExceptionGroup:
        exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, (), exc_info)


def test_connection_tracebacks_are_digested_once_a_minute(clock: FakeClock):
    digest = ConnectionErrorDigest(60.0, clock)
    first = _record()
    assert digest.filter(first)
    assert first.exc_info is None
    assert first.getMessage() == "connection failed inside the server: KeyError (x1 since last)"
    assert [digest.filter(_record()) for _ in range(50)] == [False] * 50
    clock.advance(60)
    later = _record()
    assert digest.filter(later)
    assert "(x51 since last)" in later.getMessage()


def test_other_records_pass_untouched(clock: FakeClock):
    digest = ConnectionErrorDigest(60.0, clock)
    other = _record(name="ticker")
    assert digest.filter(other)
    assert other.exc_info is not None
    assert digest.filter(_record(msg="Task exception was never retrieved"))

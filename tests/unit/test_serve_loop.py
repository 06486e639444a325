"""`python -m ticker.serve` picks its event loop from TICKER_EVENT_LOOP (asyncio by default)."""

from __future__ import annotations

import asyncio

import pytest

from ticker.serve import loop_factory


def test_asyncio_is_the_default():
    assert loop_factory({}) is None
    assert loop_factory({"TICKER_EVENT_LOOP": " AsyncIO "}) is None


def test_uvloop_when_asked_and_installed():
    uvloop = pytest.importorskip("uvloop")
    factory = loop_factory({"TICKER_EVENT_LOOP": "uvloop"})
    assert factory is uvloop.new_event_loop
    loop = factory()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()


def test_anything_else_stops_with_a_message_naming_the_variable():
    with pytest.raises(SystemExit, match="TICKER_EVENT_LOOP must be 'asyncio' or 'uvloop'"):
        loop_factory({"TICKER_EVENT_LOOP": "trio"})

"""Gap signalling: a `resync` frame precedes the snapshot whenever ticks were lost."""

from __future__ import annotations

import orjson

from tests.conftest import FakeClock, tick
from ticker.core.history import RecentTicks
from ticker.stream.hub import Hub
from ticker.stream.session import Session


def _hub(size=8) -> Hub:
    return Hub(RecentTicks(size, 300.0, FakeClock()))


def _frames(session: Session) -> list[dict]:
    return [orjson.loads(f) for f in session.take_now().frames()]


def test_a_seq_gap_at_ingest_sends_resync_then_the_new_tick():
    hub = _hub()
    s = Session("websocket", "p", outbox_limit=64)
    hub.ingest(tick(seq=1))
    hub.subscribe(s, ["AAPL"], {})
    _frames(s)
    hub.ingest(tick(seq=5))
    frames = _frames(s)
    assert frames[0] == {"type": "resync", "symbols": ["AAPL"]}
    assert frames[1]["ticks"][0]["seq"] == 5
    assert s.resynced == {"AAPL"}


def test_contiguous_ticks_send_no_resync():
    hub = _hub()
    s = Session("sse", "p", outbox_limit=64)
    hub.ingest(tick(seq=1))
    hub.subscribe(s, ["AAPL"], {})
    hub.ingest(tick(seq=2))
    assert [f["type"] for f in _frames(s)] == ["subscribed", "ticks"]
    assert not s.resynced


def test_a_resume_older_than_history_sends_resync_for_that_symbol_only():
    hub = _hub(size=4)
    for seq in range(1, 11):
        hub.ingest(tick(seq=seq))
        hub.ingest(tick("MSFT", seq=seq))
    s = Session("longpoll", "p", outbox_limit=64)
    assert hub.subscribe(s, ["AAPL", "MSFT"], {"AAPL": 2, "MSFT": 8}) is False
    frames = _frames(s)
    assert frames[0]["type"] == "subscribed"
    assert frames[1] == {"type": "resync", "symbols": ["AAPL"]}
    got = [(t["symbol"], t["seq"]) for t in frames[2]["ticks"]]
    assert got == [("AAPL", 10), ("MSFT", 9), ("MSFT", 10)]


def test_a_covered_resume_sends_no_resync():
    hub = _hub()
    for seq in range(1, 6):
        hub.ingest(tick(seq=seq))
    s = Session("websocket", "p", outbox_limit=64)
    assert hub.subscribe(s, ["AAPL"], {"AAPL": 3}) is True
    assert [f["type"] for f in _frames(s)] == ["subscribed", "ticks"]

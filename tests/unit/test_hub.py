from __future__ import annotations

import orjson

from tests.conftest import FakeClock, tick
from ticker.core.history import RecentTicks
from ticker.stream.hub import Hub
from ticker.stream.session import Session


def _hub(clock=None, size=64) -> Hub:
    return Hub(RecentTicks(size, 300.0, clock or FakeClock()))


def _session(limit=64) -> Session:
    return Session("websocket", "127.0.0.1", outbox_limit=limit)


def _frames(session: Session) -> list[dict]:
    return [orjson.loads(f) for f in session.take_now().frames()]


def _seqs(frames: list[dict], symbol: str = "AAPL") -> list[int]:
    return [
        t["seq"]
        for f in frames
        if f["type"] == "ticks"
        for t in f["ticks"]
        if t["symbol"] == symbol
    ]


def test_subscribe_replies_then_sends_the_snapshot_then_every_tick():
    hub = _hub()
    hub.ingest(tick(seq=1))
    hub.ingest(tick(seq=2))
    s = _session()
    hub.attach(s)
    assert hub.subscribe(s, ["AAPL", "MSFT"], {}) is False
    hub.ingest(tick(seq=3))
    frames = _frames(s)
    assert frames[0] == {"type": "subscribed", "symbols": ["AAPL", "MSFT"], "recovered": False}
    assert _seqs(frames) == [2, 3]


def test_each_tick_is_encoded_once_and_shared_by_every_client():
    hub = _hub()
    sessions = [_session() for _ in range(3)]
    for s in sessions:
        hub.subscribe(s, ["AAPL"], {})
        s.take_now()
    hub.ingest(tick(seq=1))
    pieces = [s.outbox.take()[0][0] for s in sessions]
    assert pieces[0] is pieces[1] is pieces[2]
    assert hub.counters.deliveries == 3


def test_duplicates_and_stale_ticks_are_dropped_and_counted():
    hub = _hub()
    s = _session()
    hub.subscribe(s, ["AAPL"], {})
    for seq in (1, 2, 2, 1, 3, 7, 5):
        hub.ingest(tick(seq=seq))
    assert _seqs(_frames(s)) == [1, 2, 3, 7]
    c = hub.counters
    assert (c.ticks_in, c.duplicates, c.stale, c.gaps) == (7, 1, 2, 1)


def test_resume_with_since_replays_missed_ticks_and_reports_recovered():
    hub = _hub()
    for seq in range(1, 11):
        hub.ingest(tick(seq=seq))
    s = _session()
    assert hub.subscribe(s, ["AAPL"], {"AAPL": 6}) is True
    frames = _frames(s)
    assert frames[0]["recovered"] is True
    assert _seqs(frames) == [7, 8, 9, 10]


def test_resume_beyond_history_falls_back_to_the_snapshot():
    hub = _hub(size=4)
    for seq in range(1, 11):
        hub.ingest(tick(seq=seq))
    s = _session()
    assert hub.subscribe(s, ["AAPL"], {"AAPL": 2}) is False
    frames = _frames(s)
    assert frames[0]["recovered"] is False
    assert _seqs(frames) == [10]


def test_a_client_ahead_of_this_instance_gets_no_regression():
    hub = _hub()
    for seq in range(1, 4):
        hub.ingest(tick(seq=seq))
    s = _session()
    assert hub.subscribe(s, ["AAPL"], {"AAPL": 5}) is True
    hub.ingest(tick(seq=4))
    hub.ingest(tick(seq=5))
    hub.ingest(tick(seq=6))
    assert _seqs(_frames(s)) == [6]


def test_unsubscribe_stops_ticks_and_detach_forgets_the_session():
    hub = _hub()
    s = _session()
    hub.attach(s)
    hub.subscribe(s, ["AAPL", "MSFT"], {})
    hub.ingest(tick("MSFT", 1))
    hub.unsubscribe(s, ["MSFT"])
    hub.ingest(tick("MSFT", 2))
    frames = _frames(s)
    assert _seqs(frames, "MSFT") == []
    assert frames[-1] == {"type": "unsubscribed", "symbols": ["MSFT"]}
    assert hub.subscribers_by_symbol() == {"AAPL": 1}
    assert hub.connections_by_transport() == {"websocket": 1, "sse": 0, "longpoll": 0}
    hub.detach(s)
    hub.detach(s)
    assert hub.subscribers_by_symbol() == {}
    assert hub.sessions() == []


def test_a_slow_client_is_conflated_while_a_fast_one_gets_everything():
    hub = _hub()
    slow, fast = _session(limit=8), _session(limit=8)
    hub.subscribe(slow, ["AAPL", "MSFT"], {})
    hub.subscribe(fast, ["AAPL", "MSFT"], {})
    got: list[int] = []
    for seq in range(1, 201):
        hub.ingest(tick("AAPL", seq))
        hub.ingest(tick("MSFT", seq))
        got += _seqs(_frames(fast))
    assert got == list(range(1, 201))
    frames = _frames(slow)
    aapl, msft = _seqs(frames), _seqs(frames, "MSFT")
    assert len(aapl) + len(msft) <= 8  # bounded: never more than the outbox limit
    assert aapl[-1] == msft[-1] == 200  # the latest price always arrives
    assert aapl == sorted(set(aapl))  # still in order, no duplicates
    assert slow.outbox.conflated == 400 - len(aapl) - len(msft)


def test_end_queues_a_reconnect_frame_once():
    s = _session()
    s.end(1012, "server draining")
    s.end(1000, "again")
    assert s.close_code == 1012
    assert _frames(s) == [{"type": "reconnect", "reason": "server draining"}]


def test_resuming_on_an_instance_that_has_not_seen_the_symbol_yet_waits_for_proof():
    """The instance lags the one that issued the cursor: no false resync, no regression."""
    hub = _hub()
    s = _session()
    assert hub.subscribe(s, ["AAPL"], {"AAPL": 10}) is True
    for seq in (9, 10, 11, 12):  # the lagging instance catches up
        hub.ingest(tick(seq=seq))
    frames = _frames(s)
    assert [f["type"] for f in frames] == ["subscribed", "ticks"]
    assert _seqs(frames) == [11, 12]


def test_the_first_newer_tick_reveals_a_gap_on_a_fresh_instance():
    hub = _hub()
    s = _session()
    hub.subscribe(s, ["AAPL"], {"AAPL": 10})
    hub.ingest(tick(seq=14))  # 11..13 were published before this instance subscribed
    hub.ingest(tick(seq=15))
    frames = _frames(s)
    assert frames[1] == {"type": "resync", "symbols": ["AAPL"]}
    assert _seqs(frames) == [14, 15]
    assert s.resynced == {"AAPL"}


def test_symbol_cap_evicts_the_least_recently_updated_unsubscribed_symbol():
    hub = Hub(RecentTicks(64, 300.0, FakeClock()), max_symbols=3)
    s = _session()
    hub.subscribe(s, ["OLD"], {})
    for name in ("OLD", "A", "B"):
        hub.ingest(tick(name, 1))
    hub.ingest(tick("A", 2))  # A is now more recent than B
    hub.ingest(tick("C", 1))  # full: B goes (OLD is subscribed, so it stays)
    assert hub.book.symbols() == ["A", "C", "OLD"]
    assert not hub.history.knows("B")
    assert hub.counters.evicted == 1
    hub.ingest(tick("B", 7))  # B starts afresh: no gap, no stale
    latest = hub.book.latest("B")
    assert latest is not None
    assert latest.seq == 7
    assert hub.tracked_symbols() == 3
    assert "OLD" in hub.book.symbols()


def test_a_rebase_below_a_poisoned_seq_resets_the_clients_seq_gate():
    clock = FakeClock()
    from ticker.core.reorder import Sequencer

    hub = Hub(RecentTicks(64, 300.0, clock), Sequencer(0.0, clock, rebase_after=1.0))
    s = _session()
    hub.subscribe(s, ["AAPL"], {})
    hub.ingest(tick(seq=10))
    hub.ingest(tick(seq=2**63 - 1))
    for seq in range(11, 20):
        clock.advance(0.25)
        hub.ingest(tick(seq=seq))
    frames = _frames(s)
    assert any(f["type"] == "resync" for f in frames)
    assert _seqs(frames)[-1] == 19


def test_a_rebase_keeps_the_clients_max_rate():
    clock = FakeClock()
    from ticker.core.reorder import Sequencer

    hub = Hub(RecentTicks(64, 300.0, clock), Sequencer(0.0, clock, rebase_after=1.0))
    s = Session("websocket", "peer", outbox_limit=64, clock=clock)
    hub.subscribe(s, ["AAPL"], {}, max_rate=2.0)
    hub.ingest(tick(seq=10))
    hub.ingest(tick(seq=2**63 - 1))
    for seq in range(11, 20):
        clock.advance(0.25)
        hub.ingest(tick(seq=seq))
    assert any(f["type"] == "resync" for f in _frames(s))
    assert s.outbox.rate("AAPL") == 2.0  # the re-base restarted the seq gate, not the pacing

"""`Session.sent` and the direct write in `offer`: one record of what went out, one rule."""

from __future__ import annotations

import asyncio
import time

from ticker.core.latency import LatencyWindow
from ticker.stream.session import TRANSPORTS, Session, Transport


def _session(latency: LatencyWindow | None = None) -> Session:
    return Session("websocket", "peer", outbox_limit=8, latency=latency)


def test_sent_counts_frames_and_ticks_and_records_latency_once_per_tick_frame() -> None:
    latency = LatencyWindow()
    session = _session(latency)
    before = time.monotonic()
    session.sent(2, 3, int(time.time() * 1000) - 40)  # a control frame and a ticks frame
    assert (session.frames_sent, session.ticks_sent, session.direct_sent) == (2, 3, 0)
    assert latency.count == 1
    assert 40 <= (latency.percentile(50) or 0) < 40 + 5000
    assert session.last_frame_at >= before
    session.sent(1)  # a heartbeat: a frame, no ticks, no latency sample
    assert (session.frames_sent, session.ticks_sent, latency.count) == (3, 3, 1)


def test_without_a_latency_record_only_the_counts_move() -> None:
    session = _session()
    session.sent(1, 1, 0)
    assert (session.frames_sent, session.ticks_sent) == (1, 1)


async def test_a_direct_write_counts_as_one_frame_of_one_tick_and_apart() -> None:
    latency = LatencyWindow()
    session = _session(latency)
    written: list[str] = []

    def direct(encoded: str) -> float:
        written.append(encoded)
        return 123.0

    session.direct = direct
    waiting = asyncio.create_task(session.wait_wake())
    await asyncio.sleep(0)  # the writer now waits, idle: the tick goes straight out
    session.offer("AAPL", 1, "t1", int(time.time() * 1000))
    assert written == ["t1"]
    assert not session.has_pending()
    assert (session.frames_sent, session.ticks_sent, session.direct_sent) == (1, 1, 1)
    assert (latency.count, session.last_frame_at) == (1, 123.0)
    waiting.cancel()


async def test_a_refused_direct_write_queues_the_tick_and_counts_nothing() -> None:
    session = _session(LatencyWindow())
    session.direct = lambda encoded: 0.0
    waiting = asyncio.create_task(session.wait_wake())
    await asyncio.sleep(0)
    session.offer("AAPL", 1, "t1", 0)
    assert session.has_pending()
    assert (session.frames_sent, session.ticks_sent, session.direct_sent) == (0, 0, 0)
    await waiting  # woken for the queued tick


def test_the_transport_names_have_one_source() -> None:
    names: tuple[Transport, ...] = ("websocket", "sse", "longpoll")
    assert names == TRANSPORTS

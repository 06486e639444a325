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


def test_take_ticks_takes_only_when_ticks_are_all_there_is_to_send() -> None:
    session = _session()
    assert session.take_ticks() is None  # nothing pending
    session.offer("AAPL", 1, '{"seq":1}', 1_000)
    session.offer("AAPL", 2, '{"seq":2}', 1_005)
    session.push_control('{"type":"heartbeat"}')
    assert session.take_ticks() is None  # a control frame: the writer's, and in front
    assert session.has_pending()
    session.take_now()
    session.offer("AAPL", 3, '{"seq":3}', 1_010)
    session.offer("AAPL", 4, '{"seq":4}', 1_020)
    assert session.take_ticks() == (['{"seq":3}', '{"seq":4}'], 1_010)  # oldest ts: the worst
    assert not session.has_pending()
    session.offer("AAPL", 5, '{"seq":5}', 1_030)
    session.close_code = 1012  # a close asked: the writer sends the rest, then closes
    assert session.take_ticks() is None


async def test_a_control_frame_for_an_idle_writer_goes_out_at_once_without_waking_it() -> None:
    session = _session()
    written: list[str] = []
    socket_ready = True

    def direct_text(text: str) -> bool:
        if socket_ready:
            written.append(text)
        return socket_ready

    session.direct_text = direct_text
    writer = asyncio.create_task(session.wait_wake())
    await asyncio.sleep(0)
    session.push_control('{"type":"pong"}')
    assert written == ['{"type":"pong"}']
    assert session.frames_sent == 1
    assert session.last_frame_at == 0.0  # not a frame for the pacing: a snapshot may follow
    assert not session.has_pending()
    await asyncio.sleep(0)
    assert not writer.done()  # not woken for it
    socket_ready = False  # backed up: queued for the writer, which is woken
    session.push_control('{"type":"heartbeat"}')
    assert written == ['{"type":"pong"}']
    assert session.take_now().control == ['{"type":"heartbeat"}']
    await asyncio.wait_for(writer, 1.0)


async def test_a_control_frame_never_overtakes_what_is_pending_nor_a_close() -> None:
    session = _session()
    written: list[str] = []

    def direct_text(text: str) -> bool:
        written.append(text)
        return True

    session.direct_text = direct_text
    writer = asyncio.create_task(session.wait_wake())
    await asyncio.sleep(0)
    session.outbox.offer("AAPL", 1, '{"seq":1}', 0)  # a tick waits for the writer
    session.push_control('{"type":"pong"}')
    assert written == []
    await asyncio.wait_for(writer, 1.0)
    batch = session.take_now()
    assert (batch.control, batch.ticks) == (['{"type":"pong"}'], ['{"seq":1}'])
    writer = asyncio.create_task(session.wait_wake())
    await asyncio.sleep(0)
    session.end(1012, "drain")  # the writer sends the reconnect frame, then closes
    assert written == []
    await asyncio.wait_for(writer, 1.0)

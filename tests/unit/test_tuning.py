from __future__ import annotations

import asyncio
import gc
import sys
import time

import pytest

from tests.support.timing import timeout
from ticker.core.codec import tick_to_bytes
from ticker.core.flush import AdaptiveFlush
from ticker.core.ticks import make_tick
from ticker.server.runtime import Runtime
from ticker.server.settings import Settings
from ticker.stream.tuning import WAIT, WROTE, FlushClock, ProcessTuning, loop_demand


async def test_resting_writers_share_one_instant():
    clock = FlushClock(AdaptiveFlush(floor=0.01, ceiling=0.01))
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(timeout(1.0)):
        await asyncio.gather(*(clock.rest() for _ in range(50)))
    assert loop.time() - start < timeout(0.5)
    assert clock._timer is None


async def test_a_cancelled_writer_does_not_wake_or_break_the_others():
    clock = FlushClock(AdaptiveFlush(floor=0.01, ceiling=0.01))
    doomed = asyncio.create_task(clock.rest())
    other = asyncio.create_task(clock.rest())
    await asyncio.sleep(0)
    doomed.cancel()
    async with asyncio.timeout(timeout(1.0)):
        await other
    assert doomed.cancelled()


async def test_a_sweep_that_writes_keeps_its_writer_asleep_until_it_cannot():
    clock = FlushClock(AdaptiveFlush(floor=0.01, ceiling=0.01))
    answers = [True, True, False]  # two instants written for the writer, then nothing pending
    calls: list[bool] = []

    def sweep() -> bool:
        calls.append(answers[len(calls)])
        return calls[-1]

    async with asyncio.timeout(timeout(1.0)):
        await clock.rest(sweep)
    assert calls == [True, True, False]  # woken at the third instant, not before
    assert clock.swept == 2
    assert clock._timer is None  # nobody rests: no timer left behind


async def test_a_failing_sweep_raises_in_its_writer_and_spares_the_others():
    clock = FlushClock(AdaptiveFlush(floor=0.01, ceiling=0.01))

    def broken() -> bool:
        raise ConnectionResetError("peer gone")

    failing = asyncio.create_task(clock.rest(broken))
    other = asyncio.create_task(clock.rest(lambda: False))
    async with asyncio.timeout(timeout(1.0)):
        results = await asyncio.gather(failing, other, return_exceptions=True)
    assert isinstance(results[0], ConnectionResetError)
    assert results[1] is None


async def test_at_interval_zero_no_sweep_runs_and_every_writer_wakes():
    clock = FlushClock(AdaptiveFlush(floor=0.0, ceiling=0.0))
    calls: list[int] = []

    def sweep() -> bool:
        calls.append(1)
        return True

    async with asyncio.timeout(timeout(1.0)):
        await clock.rest(sweep)
    assert calls == []


async def settle() -> None:
    """Let the callbacks scheduled so far run (the kick runs one loop iteration later)."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_an_ingest_batch_holds_the_due_instant_at_once_and_a_later_one_waits():
    clock = FlushClock(AdaptiveFlush(floor=10.0, ceiling=10.0))  # the timer would take 10 s
    calls: list[float] = []

    def sweep() -> int:
        calls.append(time.monotonic())
        return WROTE

    writer = asyncio.create_task(clock.rest(sweep))
    await settle()
    clock.ingested()  # no instant yet: one is due, and comes right after this batch
    await settle()
    assert len(calls) == 1
    clock.ingested()  # an instant just went out: the next is 10 s away, batch or not
    await settle()
    assert len(calls) == 1
    assert not writer.done()  # written for, kept asleep
    writer.cancel()


async def test_an_instant_with_nothing_to_send_does_not_hold_back_the_next_batch():
    clock = FlushClock(AdaptiveFlush(floor=0.05, ceiling=0.05))
    answers = [WAIT, WROTE]  # the timer's instant finds nothing pending; the batch brings ticks
    calls: list[int] = []
    swept = asyncio.Event()

    def sweep() -> int:
        calls.append(answers[min(len(calls), 1)])
        swept.set()
        return calls[-1]

    writer = asyncio.create_task(clock.rest(sweep))
    async with asyncio.timeout(timeout(1.0)):
        await swept.wait()
    assert calls == [WAIT]
    assert not writer.done()  # busy, nothing pending: rests on
    clock.ingested()  # well within an interval of the timer's (empty) instant
    await settle()
    assert calls == [WAIT, WROTE]
    assert clock.swept == 1  # only the instant that wrote counts
    writer.cancel()


def test_a_writer_is_busy_for_a_few_intervals_after_its_last_frame():
    clock = FlushClock(AdaptiveFlush(floor=0.04, ceiling=0.04))
    assert clock.still_busy(last_frame_at=100.0, now=100.1)
    assert not clock.still_busy(last_frame_at=100.0, now=100.2)  # quiet: it goes idle


async def test_tuning_sets_the_gc_threshold_while_serving_and_restores_it():
    before = gc.get_threshold()
    tuning = ProcessTuning(AdaptiveFlush(ceiling=0.04), gc_threshold=12_345)
    await tuning.start()
    try:
        assert gc.get_threshold()[0] == 12_345
    finally:
        await tuning.close()
    assert gc.get_threshold() == before


async def test_tuning_sets_the_gil_switch_interval_while_serving_and_restores_it():
    before = sys.getswitchinterval()
    tuning = ProcessTuning(AdaptiveFlush(ceiling=0.04), gc_threshold=0, switch_interval=0.002)
    await tuning.start()
    try:
        assert sys.getswitchinterval() == pytest.approx(0.002)
    finally:
        await tuning.close()
    assert sys.getswitchinterval() == before


async def test_the_sampler_feeds_the_flush_interval():
    flush = AdaptiveFlush(ceiling=0.04)
    tuning = ProcessTuning(flush, gc_threshold=0)
    await tuning.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout(2.0)
        while flush.busy == 0.0 and asyncio.get_running_loop().time() < deadline:
            sum(range(20_000))  # keep the process busy between samples
            await asyncio.sleep(0.01)
    finally:
        await tuning.close()
    assert flush.busy > 0.0


def test_loop_demand_counts_this_threads_run_time():
    before = loop_demand()
    if before is None:  # not Linux: the sampler uses CPU time alone
        return
    started = time.thread_time()
    sum(range(2_000_000))
    used = time.thread_time() - started
    after = loop_demand()
    assert after is not None
    assert after - before >= used * 0.9  # run time (plus any wait for a CPU)


async def test_every_broker_message_brings_the_due_instant_forward():
    runtime = Runtime.build(Settings(sim_rate=0, flush_interval=10.0, flush_max_interval=10.0))
    calls: list[int] = []

    def sweep() -> int:
        calls.append(WROTE)
        return WROTE

    writer = asyncio.create_task(runtime.flush.rest(sweep))
    await settle()
    runtime.on_message(tick_to_bytes(make_tick("AAPL", 190.0, 1, int(time.time() * 1000))), {})
    await settle()
    assert calls == [WROTE]  # not 10 s later: right after the message
    writer.cancel()

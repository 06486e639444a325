from __future__ import annotations

import asyncio
import gc
import time

from tests.support.timing import timeout
from ticker.core.flush import AdaptiveFlush
from ticker.stream.tuning import FlushClock, ProcessTuning, loop_demand


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


async def test_tuning_sets_the_gc_threshold_while_serving_and_restores_it():
    before = gc.get_threshold()
    tuning = ProcessTuning(AdaptiveFlush(ceiling=0.04), gc_threshold=12_345)
    await tuning.start()
    try:
        assert gc.get_threshold()[0] == 12_345
    finally:
        await tuning.close()
    assert gc.get_threshold() == before


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

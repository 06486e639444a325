"""Process tuning while serving: the writers' shared flush clock, its load sampler, and the GC.

Rules:
- `FlushClock` paces every writer of the process with one timer: after a frame, a writer rests
  until the clock's next instant (at most `interval` away; no wait at all while the interval is
  0), then sends everything that gathered meanwhile as one frame. A shared instant instead of a
  timer per writer, and a writer that wakes to ticks already pending instead of waking twice.
- `ProcessTuning` is a `Service` of the runtime (`start()` when serving begins, `close()` at
  shutdown). Its sampler reads every `SAMPLE_PERIOD` the process's CPU time (all threads) and the
  loop thread's demand (time run + time waiting for a CPU, `loop_demand()`), and feeds the larger
  as the busy fraction to the clock's `AdaptiveFlush`; it never touches sessions.
- GC: with a thousand connections the process holds ~300 GC-tracked objects per connection. With
  Python's default first threshold (700) the young generation was collected ~25 times a second at
  30 k deliveries/s, and each full collection paused the loop ~0.3 s (1,000 clients), the worst
  of the p99. A higher first threshold keeps collections rare and short; `gc.freeze()` takes the
  start-up objects out of every later scan. Cycles are still collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

from ticker.core.flush import AdaptiveFlush

SAMPLE_PERIOD = 0.1  # seconds


class FlushClock:
    """The current flush interval and one shared timer that all resting writers wait for."""

    def __init__(self, flush: AdaptiveFlush) -> None:
        self.flush = flush
        self._waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def interval(self) -> float:
        """Seconds a writer rests after a frame (0: it does not rest)."""
        return self.flush.interval

    async def rest(self) -> None:
        """Wait for the clock's next instant (at most `interval` from now)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if self._timer is None:
            self._timer = loop.call_later(self.flush.interval, self._fire)
        await waiter  # a cancelled writer cancels only its own waiter

    def _fire(self) -> None:
        self._timer = None
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class ProcessTuning:
    """Samples CPU busyness into `flush`; sets the GC's first threshold (0: Python's default)."""

    def __init__(self, flush: AdaptiveFlush, gc_threshold: int) -> None:
        self.flush = flush
        self.gc_threshold = gc_threshold
        self._saved_thresholds = gc.get_threshold()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Tune the GC and start sampling."""
        if self.gc_threshold:
            gc.freeze()
            _, second, third = self._saved_thresholds
            gc.set_threshold(self.gc_threshold, second, third)
        if self.flush.ceiling > self.flush.floor:
            self._task = asyncio.create_task(self._sample(), name="flush-sampler")

    async def close(self) -> None:
        """Stop sampling and give the GC its previous thresholds back."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.gc_threshold:
            gc.set_threshold(*self._saved_thresholds)
            gc.unfreeze()

    async def _sample(self) -> None:
        cpu, wall, demand = time.process_time(), time.monotonic(), loop_demand()
        while True:
            await asyncio.sleep(SAMPLE_PERIOD)
            now_cpu, now_wall, now_demand = time.process_time(), time.monotonic(), loop_demand()
            if now_wall > wall:
                busy = now_cpu - cpu
                if demand is not None and now_demand is not None:
                    busy = max(busy, now_demand - demand)
                self.flush.update(busy / (now_wall - wall))
            cpu, wall, demand = now_cpu, now_wall, now_demand


def loop_demand() -> float | None:
    """Seconds this thread (the event loop's) has run or waited to run, or None off Linux.

    From /proc/thread-self/schedstat: time on the CPU plus time runnable in the run queue.
    Busyness from CPU time alone reads low when the loop waits for a CPU that other processes
    hold: on a shared 2-core machine (bench C: emulator, publisher and load beside the server)
    the interval then fell to 0 exactly when the loop lagged, and every tick became a frame of
    its own, which made the lag worse. Counting the wait keeps frames batched then.
    """
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            run_ns, wait_ns = stat.read().split()[:2]
    except (OSError, ValueError):
        return None
    return (int(run_ns) + int(wait_ns)) / 1e9

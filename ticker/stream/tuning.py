"""Process tuning while serving: the writers' shared flush clock, its load sampler, and the GC.

Rules:
- `FlushClock` paces every writer of the process with one timer: after a frame, a writer rests
  until the clock's next instant (at most `interval` away; no wait at all while the interval is
  0), then sends everything that gathered meanwhile as one frame. A shared instant instead of a
  timer per writer, and a writer that wakes to ticks already pending instead of waking twice.
- A resting writer may leave a `Sweep` with the clock: at each instant the clock calls it first,
  and while it writes the pending ticks itself (synchronously, returning True) the writer stays
  asleep and rests on to the next instant. Only when it cannot (nothing pending: the writer goes
  idle; a control frame, a close, a backed-up socket: the writer's own path) is the writer woken.
  Why: a busy client costs one frame per instant, and waking its task for it (a future, a task
  step, the writer's coroutine chain) cost about as much as the frame's write itself.
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
from collections.abc import Callable

from ticker.core.flush import AdaptiveFlush

SAMPLE_PERIOD = 0.1  # seconds
Sweep = Callable[[], bool]  # writes what a resting writer has pending; False: wake the writer


class FlushClock:
    """The current flush interval and one shared timer that all resting writers wait for."""

    def __init__(self, flush: AdaptiveFlush) -> None:
        self.flush = flush
        self._waiters: list[tuple[asyncio.Future[None], Sweep | None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.swept = 0  # frames written by sweeps (writers not woken for them)

    @property
    def interval(self) -> float:
        """Seconds a writer rests after a frame (0: it does not rest)."""
        return self.flush.interval

    def too_soon(self, last_frame_at: float, now: float) -> bool:
        """Whether a client whose last frame went out at `last_frame_at` (time.monotonic) must
        wait for the next instant: the one rule behind the direct write and the woken writer."""
        return now - last_frame_at < self.flush.interval

    async def rest(self, sweep: Sweep | None = None) -> None:
        """Wait for an instant at which `sweep` (if any) could not write for the writer.

        Without a sweep: the clock's next instant (at most `interval` from now).
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append((waiter, sweep))
        if self._timer is None:
            self._timer = loop.call_later(self.flush.interval, self._fire)
        await waiter  # a cancelled writer cancels only its own waiter

    def _fire(self) -> None:
        self._timer = None
        entries, self._waiters = self._waiters, []
        resting = self.flush.interval > 0  # at 0 no writer rests: wake them all
        kept = 0
        for entry in entries:
            waiter, sweep = entry
            if waiter.done():
                continue
            try:
                if resting and sweep is not None and sweep():
                    self._waiters.append(entry)
                    kept += 1
                    continue
            except Exception as exc:  # the writer's to handle: it awaits this waiter
                waiter.set_exception(exc)
                continue
            waiter.set_result(None)
        self.swept += kept
        if self._waiters and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.flush.interval, self._fire)


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

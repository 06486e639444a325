"""Process tuning while serving: the writers' shared flush clock, its load sampler, and the GC.

Rules:
- `FlushClock` paces every writer of the process with one timer: after a frame, a writer rests
  until the clock's next instant (at most `interval` away; no wait at all while the interval is
  0), then sends everything that gathered meanwhile as one frame. A shared instant instead of a
  timer per writer, and a writer that wakes to ticks already pending instead of waking twice.
- A resting writer may leave a `Sweep` with the clock: at each instant the clock calls it first,
  and while it writes the pending ticks itself (synchronously: `WROTE`) the writer stays asleep
  and rests on to the next instant. A busy writer with nothing pending this time (`WAIT`) stays
  asleep too. Only when the sweep cannot write (a control frame, a close, a backed-up socket: the
  writer's own path) or its client has gone quiet (the writer goes idle, for direct writes) is
  the writer woken (`WAKE`). Why: a busy client costs one frame per instant, and waking its task
  for it (a future, a task step, the writer's coroutine chain) cost about as much as the frame's
  write itself.
- Instants follow ingest: `ingested()` (the runtime calls it for every broker message) holds the
  next instant right after the current batch of messages, as soon as `interval` has passed since
  the last instant that sent or woke anything; the timer is the fallback for writers resting
  while no message comes. Why: Pub/Sub hands ticks over in bursts (4-5 packed messages every
  ~55 ms at 20,000 ticks/s), and a timer of its own made every tick wait for an instant out of
  phase with them: 0-80 ms at 20,000 ticks/s, the largest part of what the server added. A timer
  instant that finds nothing to send does not count as one, so the next batch is not held back.
- `ProcessTuning` is a `Service` of the runtime (`start()` when serving begins, `close()` at
  shutdown). Its sampler reads every `SAMPLE_PERIOD` the process's CPU time (all threads) and the
  loop thread's demand (time run + time waiting for a CPU, `loop_demand()`), and feeds the larger
  as the busy fraction to the clock's `AdaptiveFlush`; it never touches sessions.
- GIL: the Pub/Sub client hands each message through several of its threads (the stream's
  consumer, the dispatcher, a callback worker), and each needs the GIL, which the busy loop
  yields only every switch interval (Python's default: 5 ms). At 1 ms the messages reach the
  loop sooner: in bench C (`--repeat 3`, paired, twice) 20,000 ticks/s x 1,000 clients added
  55 / 57 ms p99 instead of 94 / 93, and 5,000 ticks/s 3.5 / 2.5 instead of 8.5 / 8.8, at the
  same CPU; 0.5 ms was worse again (101). `switch_interval` 0 leaves Python's own.
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
import math
import sys
import time
from collections.abc import Callable
from typing import Literal

from ticker.core.flush import AdaptiveFlush

SAMPLE_PERIOD = 0.1  # seconds
BUSY_INTERVALS = 4  # a resting writer whose last frame is younger than this many intervals is busy
# What a sweep did for its resting writer (see the module's rules): 0 is falsy, so a sweep may
# also answer a plain bool (True: wrote, False: wake).
WAKE: Literal[0] = 0
WROTE: Literal[1] = 1
WAIT: Literal[2] = 2
Sweep = Callable[[], int]  # writes what a resting writer has pending; WAKE, WROTE or WAIT


class FlushClock:
    """The current flush interval and the shared instants that all resting writers wait for."""

    def __init__(self, flush: AdaptiveFlush) -> None:
        self.flush = flush
        self._waiters: list[tuple[asyncio.Future[None], Sweep | None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._last = -math.inf  # loop time of the last instant that sent or woke anything
        self._kick_pending = False
        self.swept = 0  # frames written by sweeps (writers not woken for them)

    @property
    def interval(self) -> float:
        """Seconds a writer rests after a frame (0: it does not rest)."""
        return self.flush.interval

    def too_soon(self, last_frame_at: float, now: float) -> bool:
        """Whether a client whose last frame went out at `last_frame_at` (time.monotonic) must
        wait for the next instant: the one rule behind the direct write and the woken writer."""
        return now - last_frame_at < self.flush.interval

    def still_busy(self, last_frame_at: float, now: float) -> bool:
        """Whether a resting writer with nothing pending should rest on (`WAIT`) rather than go
        idle: its client's last frame is a few intervals old at most, so more ticks are likely
        on their way, and a writer woken for nothing costs a task round."""
        return now - last_frame_at < BUSY_INTERVALS * self.flush.interval

    async def rest(self, sweep: Sweep | None = None) -> None:
        """Wait for an instant at which `sweep` (if any) could not write for the writer.

        Without a sweep: the clock's next instant (at most `interval` from now).
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append((waiter, sweep))
        if self._timer is None:
            now = loop.time()
            due = self._last + self.flush.interval
            self._timer = loop.call_at(due if due > now else now + self.flush.interval, self._fire)
        await waiter  # a cancelled writer cancels only its own waiter

    def ingested(self) -> None:
        """Ticks went into outboxes: hold the next instant right after this batch, once due."""
        if self._waiters and not self._kick_pending:
            self._kick_pending = True
            asyncio.get_running_loop().call_soon(self._kick)

    def _kick(self) -> None:
        self._kick_pending = False
        if self._waiters:
            loop = asyncio.get_running_loop()
            if loop.time() >= self._last + self.flush.interval:
                self._fire()

    def _fire(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        entries, self._waiters = self._waiters, []
        resting = self.flush.interval > 0  # at 0 no writer rests: wake them all
        wrote = woke = 0
        for entry in entries:
            waiter, sweep = entry
            if waiter.done():
                continue
            try:
                if resting and sweep is not None:
                    outcome = sweep()
                    if outcome:
                        self._waiters.append(entry)
                        if outcome == WROTE:
                            wrote += 1
                        continue
            except Exception as exc:  # the writer's to handle: it awaits this waiter
                waiter.set_exception(exc)
                woke += 1
                continue
            waiter.set_result(None)
            woke += 1
        self.swept += wrote
        if wrote or woke:
            self._last = now
        if self._waiters:
            self._timer = loop.call_at(now + self.flush.interval, self._fire)


class ProcessTuning:
    """Samples CPU busyness into `flush`; sets the GC's first threshold and the GIL's switch
    interval (seconds) while serving (0: Python's own for either)."""

    def __init__(
        self, flush: AdaptiveFlush, gc_threshold: int, switch_interval: float = 0.0
    ) -> None:
        self.flush = flush
        self.gc_threshold = gc_threshold
        self.switch_interval = switch_interval
        self._saved_thresholds = gc.get_threshold()
        self._saved_switch = sys.getswitchinterval()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Tune the GC and the GIL, and start sampling."""
        if self.switch_interval:
            sys.setswitchinterval(self.switch_interval)
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
        if self.switch_interval:
            sys.setswitchinterval(self._saved_switch)

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

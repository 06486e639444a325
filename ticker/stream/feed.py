"""The in-process simulated feed of the `memory` broker: `python -m publisher` without Pub/Sub.

Rule: it goes through the broker like any producer (encoded bytes, `symbol` attribute), so the
memory default exercises the same decode/dedupe/fan-out path as Pub/Sub. Due ticks are published
in batches per wake-up, so high rates cost one timer per batch, not one per tick.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Sequence

from publisher.feed import SeqCounter, random_walk, seq_base, start_prices
from publisher.pacing import Pacer
from ticker.broker.base import Broker, BrokerUnavailable
from ticker.core.codec import tick_to_bytes
from ticker.core.ticks import Tick

log = logging.getLogger(__name__)
MIN_SLEEP = 0.002
MAX_BATCH = 5000  # ticks per wake-up, so an impossible rate cannot starve the loop


async def paced_random_walk(symbols: Sequence[str], rate: float) -> AsyncIterator[list[Tick]]:
    """Yield, at each wake-up, the random-walk ticks now due for `rate` ticks/s in total.

    Shared with the benchmark baselines, so every stack gets the same ticks at the same pace.
    """
    if rate <= 0 or not symbols:
        return
    rng = random.Random()
    ticks = random_walk(
        start_prices(symbols, rng),
        rng,
        SeqCounter(seq_base(time.time())),
        lambda: time.time_ns() // 1_000_000,
    )
    pacer = Pacer(rate, time.monotonic)
    while True:
        await asyncio.sleep(max(pacer.wait_time(), MIN_SLEEP))
        count = min(pacer.due(), MAX_BATCH)  # after a stall > 1 s: restarts, no burst
        due = [next(ticks) for _ in range(count)]
        pacer.sent(count)
        yield due


async def run_simulated_feed(broker: Broker, symbols: Sequence[str], rate: float) -> None:
    """Publish a random walk over `symbols` at `rate` ticks/s in total until cancelled."""
    async for due in paced_random_walk(symbols, rate):
        for tick in due:
            try:
                await broker.publish(tick_to_bytes(tick), {"symbol": tick.symbol}, tick.symbol)
            except BrokerUnavailable as exc:
                log.warning("simulated feed could not publish: %s", exc)

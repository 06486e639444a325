"""The baselines' tick source: the same random walk and pacing as the ticker's simulated feed.

Rule: same generator (`publisher.feed.random_walk`), same absolute-deadline pacer, same batching per
wake-up (2 ms minimum sleep), so every stack gets the same ticks at the same rate. The ticker's feed
also encodes/decodes through its broker; the baselines skip that, which only flatters them.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable

from publisher.feed import SeqCounter, random_walk, seq_base, start_prices
from publisher.pacing import Pacer

MIN_SLEEP = 0.002
MAX_BATCH = 5000

TickHandler = Callable[[dict[str, object]], None]


def feed_config() -> tuple[list[str], float]:
    """The symbols and total rate, read from the same variables the ticker uses."""
    symbols = [s for s in os.environ.get("TICKER_SIM_SYMBOLS", "AAPL").split(",") if s]
    return symbols, float(os.environ.get("TICKER_SIM_RATE", "20"))


async def run_feed(symbols: list[str], rate: float, on_tick: TickHandler) -> None:
    """Call `on_tick(tick_dict)` for `rate` ticks/s in total, round-robin over `symbols`."""
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
        for _ in range(MAX_BATCH):
            if pacer.wait_time() > 0:
                break
            on_tick(next(ticks).as_dict())
            pacer.sent()

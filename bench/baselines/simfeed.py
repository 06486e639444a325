"""The baselines' tick source: the same random walk and pacing as the ticker's simulated feed.

Rule: the very same paced generator (`ticker.stream.feed.paced_random_walk`: random walk,
absolute-deadline pacer, batching per wake-up with a 2 ms minimum sleep), so every stack gets the
same ticks at the same rate. The ticker's feed also encodes/decodes through its broker; the
baselines skip that, which only flatters them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ticker.stream.feed import paced_random_walk

TickHandler = Callable[[dict[str, object]], None]


def feed_config() -> tuple[list[str], float]:
    """The symbols and total rate, read from the same variables the ticker uses."""
    symbols = [s for s in os.environ.get("TICKER_SIM_SYMBOLS", "AAPL").split(",") if s]
    return symbols, float(os.environ.get("TICKER_SIM_RATE", "20"))


async def run_feed(symbols: list[str], rate: float, on_tick: TickHandler) -> None:
    """Call `on_tick(tick_dict)` for `rate` ticks/s in total, round-robin over `symbols`."""
    async for due in paced_random_walk(symbols, rate):
        for tick in due:
            on_tick(tick.as_dict())

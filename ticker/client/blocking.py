"""`ticks()` for plain scripts: the async client driven by a private event loop, one tick at a time.

Rules: call it where no event loop runs (a script, a notebook cell without await); async code
uses `connect()` instead. The loop lives as long as the iteration: breaking out of the `for`
(or closing the generator) closes the connection and the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

from ticker.client.connection import DEFAULT_URL, connect
from ticker.core.ticks import Tick


def ticks(
    symbols: Iterable[str], url: str = DEFAULT_URL, *, max_rate: float | None = None
) -> Iterator[Tick]:
    """Yield ticks of `symbols` from the server at `url` (reconnecting, resuming) for ever."""
    loop = asyncio.new_event_loop()
    client = connect(url, max_rate=max_rate)
    stream = client.ticks(list(symbols))
    try:
        loop.run_until_complete(client.__aenter__())
        while True:
            yield loop.run_until_complete(anext(stream))
    finally:
        loop.run_until_complete(stream.aclose())
        loop.run_until_complete(client.close())
        loop.close()

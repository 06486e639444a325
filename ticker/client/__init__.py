"""`ticker.client`: stream ticks from a ticker server in a script, and `python -m ticker.client`.

    from ticker.client import ticks
    for tick in ticks(["AAPL", "MSFT"], "ws://127.0.0.1:8080/ws"):
        print(tick.symbol, tick.price)

In async code:

    import asyncio
    from ticker.client import connect

    async def main() -> None:
        async with connect("ws://127.0.0.1:8080/ws") as c:
            async for tick in c.ticks(["AAPL", "MSFT"]):
                print(tick.symbol, tick.price)

    asyncio.run(main())

The client reconnects by itself (backoff with jitter), resumes from its own cursor, answers
heartbeats and honours `reconnect` frames; `events()` also yields `Subscribed`, `Resync` and
`Reconnecting`. It sends no Origin header: a native client (see the README's "Clients").
"""

from __future__ import annotations

from ticker.client.blocking import ticks
from ticker.client.connection import Client, connect
from ticker.client.events import (
    Backoff,
    ConnectFailed,
    ConnectionRefused,
    Event,
    Reconnecting,
    Resync,
    ServerError,
    Subscribed,
    TickerClientError,
)
from ticker.core.ticks import Tick

__all__ = [
    "Backoff",
    "Client",
    "ConnectFailed",
    "ConnectionRefused",
    "Event",
    "Reconnecting",
    "Resync",
    "ServerError",
    "Subscribed",
    "Tick",
    "TickerClientError",
    "connect",
    "ticks",
]

"""/ws heartbeats under a real Hypercorn (in process): the protocol ping only where it is needed.

A client that answered the last heartbeat (the page answers each with `{"op":"ping"}`) has
proved itself alive, so it gets no protocol ping; one that sends nothing gets one with every
heartbeat, which its library answers with a pong by itself.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from tests.service.streams import hypercorn_serving
from tests.support.timing import timeout
from ticker.server.transports.protocol_guard import GuardedWSStream

BEAT = 0.2


async def _answer_heartbeats(ws: Any, beats: int) -> int:
    """Like the page: `{"op":"ping"}` for every heartbeat, until `beats` have come; returns
    how many `pong`s came meanwhile."""
    seen = pongs = 0
    async with asyncio.timeout(timeout(beats * BEAT + 3.0)):
        while seen < beats:
            frame = orjson.loads(await ws.recv())
            if frame["type"] == "heartbeat":
                seen += 1
                await ws.send('{"op":"ping"}')
            pongs += frame["type"] == "pong"
    return pongs


async def test_a_client_that_answers_heartbeats_gets_no_protocol_pings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pings: Counter[int] = Counter()  # per stream
    real_ping = GuardedWSStream.ping

    async def counted(self: GuardedWSStream) -> None:
        pings[id(self)] += 1
        await real_ping(self)

    monkeypatch.setattr(GuardedWSStream, "ping", counted)
    async with hypercorn_serving(TICKER_HEARTBEAT_INTERVAL=str(BEAT)) as (host, runtime):
        origin = Origin(f"http://{host}")
        async with (
            connect(f"ws://{host}/ws", origin=origin) as answering,
            connect(f"ws://{host}/ws", origin=origin) as silent,
        ):
            # each pong written at once by `Session.push_control`, the writer idle
            assert await _answer_heartbeats(answering, beats=8) >= 7
            assert len(runtime.hub.sessions()) == 2
            assert silent.state.name == "OPEN"
    counts = sorted(pings.values())
    assert len(counts) == 2
    # the answering client: at most the first beat's (nothing heard from it before it); the
    # silent one: one per heartbeat (before: both got one per heartbeat)
    assert counts[0] <= 1
    assert counts[1] >= 6

"""L4: session affinity lost. A long-polling client alternates between two real instances on one
topic; each poll carries the cursor the *other* instance issued. No silent gap, no duplicate."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.integration.stack import run_publisher, start_pubsub_server
from tests.support.timing import timeout

pytestmark = pytest.mark.integration


def _poll(base: str, cursor: str | None) -> dict[str, Any]:
    query = {"symbols": "AAPL,MSFT"} | ({"cursor": cursor} if cursor else {})
    url = f"{base}/poll?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=timeout(30)) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


async def test_polls_alternating_between_instances_see_every_tick_once(
    emulator, unique_name, start_server
):
    topic = unique_name("prices")
    servers = [
        start_pubsub_server(start_server, emulator, topic, TICKER_POLL_TIMEOUT="2")
        for _ in range(2)
    ]
    publishing = asyncio.create_task(
        asyncio.to_thread(run_publisher, emulator, topic, "AAPL,MSFT", 40, 4)
    )
    seqs: dict[str, list[int]] = {"AAPL": [], "MSFT": []}
    cursor, polls = None, 0
    deadline = time.monotonic() + timeout(30)
    while True:
        assert time.monotonic() < deadline, "polling never caught up"
        body = await asyncio.to_thread(_poll, servers[polls % 2].url, cursor)
        polls += 1
        cursor = body["cursor"]
        assert not body.get("resync"), "both instances hold the history: no resync is due"
        for tick in body["ticks"]:
            seqs[tick["symbol"]].append(tick["seq"])
        if publishing.done() and not body["ticks"]:
            break
    sent = await publishing
    for symbol, got in seqs.items():
        # a symbol's first tick arrives as a snapshot; from then on every tick, once, in order
        assert got == list(range(got[0], got[0] + len(got))), f"{symbol}: gap or duplicate"
    assert sum(len(s) for s in seqs.values()) >= sent - 4
    assert polls > 4  # the client really went back and forth

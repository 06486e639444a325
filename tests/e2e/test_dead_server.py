"""L2 from the page's side: a server that goes silent without closing is detected and left.

SIGSTOP freezes the server process with its sockets open, which is what a killed instance behind a
load balancer or a half-open TCP connection looks like to a browser: no close event ever comes.
The page must notice the missing heartbeats by itself, reconnect, and resume without a gap.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
PRICE = re.compile(r"^\d+\.\d{2,}$")


def test_a_silent_server_is_detected_by_missing_heartbeats_and_the_page_resumes(
    start_server: Any, page: Any, page_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    # heartbeats every 0.5 s => the page gives up on a silent socket after 2 x 0.5 + 5 = 6 s
    server = start_server(TICKER_HEARTBEAT_INTERVAL="0.5", TICKER_SIM_RATE="20")
    page.goto(f"{server.url}/?symbols=AAPL,MSFT")
    expect(page.locator('[data-symbol="AAPL"] .price')).to_have_text(PRICE)
    page.wait_for_function("window.tickerClient.ticksReceived > 5")
    page.wait_for_function("window.tickerClient.silenceLimitMs === 6000")  # a heartbeat arrived
    os.killpg(server.proc.pid, signal.SIGSTOP)
    try:
        page.wait_for_function("window.tickerClient.state === 'reconnecting'", timeout=15_000)
    finally:
        os.killpg(server.proc.pid, signal.SIGCONT)
    page.wait_for_function("window.tickerClient.connects >= 2", timeout=30_000)
    before = page.evaluate("window.tickerClient.ticksReceived")
    page.wait_for_function(f"window.tickerClient.ticksReceived > {before} + 10")
    state = page.evaluate(
        "({t: window.tickerClient.transport, gaps: window.tickerClient.gaps,"
        " dups: window.tickerClient.duplicatesDropped, rec: window.tickerClient.recovered})"
    )
    assert state["t"] == "websocket"
    assert state["gaps"] == 0  # the resume replayed what the frozen period missed
    assert state["rec"] is True
    assert page_errors == []

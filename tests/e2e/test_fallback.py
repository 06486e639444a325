"""The live page without WebSocket (and without EventSource) keeps showing live prices.

Contract: Fallbacks. The page's client picks SSE, then long polling, by itself; these tests add
what the transports guarantee across reconnects: rotation at max age resumes from the cursor
with no gap, on SSE and on long polling.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
PRICE = re.compile(r"^\d+\.\d{2,}$")


def _state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(
        """() => { const c = window.tickerClient; return {
            transport: c.transport, connects: c.connects, gaps: c.gaps,
            duplicates: c.duplicatesDropped, ticks: c.ticksReceived, cursor: c.cursor }; }"""
    )
    return state


@pytest.mark.parametrize(
    ("init_script", "transport"),
    [
        pytest.param("delete window.WebSocket;", "sse", id="no-websocket"),
        pytest.param(
            "delete window.WebSocket; delete window.EventSource;", "longpoll", id="neither"
        ),
    ],
)
def test_live_prices_keep_coming_through_rotations_without_gaps(
    start_server: Any, page: Any, page_errors: list[str], init_script: str, transport: str
) -> None:
    from playwright.sync_api import expect

    server = start_server(
        TICKER_SIM_SYMBOLS="AAPL,MSFT", TICKER_SIM_RATE="40", TICKER_MAX_CONNECTION_AGE="1.5"
    )
    page.add_init_script(init_script)
    page.goto(f"{server.url}/?symbols=AAPL,MSFT")
    price = page.locator('[data-symbol="AAPL"] .price')
    expect(price).to_have_text(PRICE)
    expect(page.locator("#conn-transport")).to_have_text(transport)
    first = price.inner_text()
    expect(price).not_to_have_text(first)  # live, not a one-off snapshot
    # SSE streams are rotated by max age (reconnect event); long polls reconnect every answer.
    page.wait_for_function("window.tickerClient.ticksReceived > 120")
    state = _state(page)
    assert state["transport"] == transport
    assert state["cursor"]  # the opaque resume cursor travels with the client
    if transport == "sse":
        assert state["connects"] >= 2  # rotated at least once, resumed from Last-Event-ID
    assert state["gaps"] == 0  # nothing lost across reconnects
    assert page_errors == []


def test_the_page_answers_heartbeats_so_its_websocket_stays_open(
    start_server: Any, page: Any, page_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    server = start_server(TICKER_HEARTBEAT_INTERVAL="0.3")  # silent peers close after 5.6 s
    page.goto(f"{server.url}/?symbols=AAPL")
    expect(page.locator('[data-symbol="AAPL"] .price')).to_have_text(PRICE)
    page.wait_for_timeout(7000)  # longer than the silence limit: time must pass here
    state = _state(page)
    assert state["transport"] == "websocket"
    assert state["connects"] == 1  # never closed for silence
    assert page_errors == []

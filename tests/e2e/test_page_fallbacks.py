"""Fallbacks by capability (`typeof`, not `in`) and by evidence (a transport that brings nothing).

Contract: Pages ("works over WebSocket and falls back by itself", `data-transport`), Fallbacks.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.buffering_proxy import buffering_proxy

pytestmark = pytest.mark.e2e
PRICE = re.compile(r"^\d+\.\d{2,}$")


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def streams(page: Any, transport: str) -> None:
    """The page shows moving prices over `transport` and says so."""
    price = page.locator('[data-symbol="AAPL"] .price')
    expect(price).to_have_text(PRICE)
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-transport", transport)
    expect(conn).to_have_attribute("data-connection-state", "live")
    first = price.inner_text()
    expect(price).not_to_have_text(first)


@pytest.mark.parametrize(
    ("init_script", "transport"),
    [
        pytest.param("window.WebSocket = undefined;", "sse", id="websocket-undefined"),
        pytest.param(
            "window.WebSocket = undefined; window.EventSource = undefined;",
            "longpoll",
            id="both-undefined",
        ),
    ],
)
def test_apis_set_to_undefined_are_skipped(
    server: Any, page: Any, page_errors: list[str], init_script: str, transport: str
) -> None:
    page.add_init_script(init_script)
    page.goto(f"{server.url}/?symbols=AAPL,MSFT")
    streams(page, transport)
    assert page.evaluate("window.tickerClient.fallbacks") == []  # chosen, not fallen back to
    assert page_errors == []


def test_an_event_stream_that_brings_nothing_is_abandoned_for_long_polling(
    server: Any, page: Any, page_errors: list[str]
) -> None:
    with buffering_proxy(server.url) as proxied:
        page.add_init_script("window.WebSocket = undefined;")
        page.goto(f"{proxied}/?symbols=AAPL,MSFT")
        expect(page.locator("#conn")).to_have_attribute("data-transport", "sse")
        streams(page, "longpoll")  # within a few seconds, by itself
        [fallback] = page.evaluate("window.tickerClient.fallbacks")
        assert (fallback["from"], fallback["to"]) == ("sse", "longpoll")
        assert "no frame" in fallback["why"]
    assert page_errors == []


def test_a_websocket_that_opens_but_brings_nothing_is_abandoned(
    server: Any, page: Any, page_errors: list[str]
) -> None:
    """A middlebox that completes the upgrade and then swallows frames: the page moves on."""
    page.add_init_script(
        """(() => {
          const Native = window.WebSocket;
          window.WebSocket = class extends Native {
            constructor(...args) {
              super(...args);
              this.addEventListener("message", (ev) => ev.stopImmediatePropagation(), true);
            }
            set onmessage(fn) {} get onmessage() { return null; }
          };
        })();"""
    )
    page.goto(f"{server.url}/?symbols=AAPL,MSFT")
    streams(page, "sse")
    [fallback] = page.evaluate("window.tickerClient.fallbacks")
    assert (fallback["from"], fallback["why"]) == ("websocket", "no frame within 4 s")
    assert page_errors == []

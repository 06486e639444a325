"""The page says how current its prices are, and never shows old prices as live.

Contract: Pages (`data-connection-state`: live, behind, connecting, reconnecting, offline). A
SIGSTOPped server looks to the browser like a dead instance behind a load balancer (sockets open,
nothing arrives); a SIGKILLed one refuses connections until it is restarted on the same port.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Any

import pytest

from tests.support.timing import UNIT_S

pytestmark = pytest.mark.e2e
PRICE = re.compile(r"^\d+\.\d{2,}$")
CLOCK = re.compile(r"^\d\d:\d\d:\d\d$")
ENV = {
    "TICKER_HEARTBEAT_INTERVAL": "0.5",
    "TICKER_SIM_SYMBOLS": "AAPL,MSFT",
    "TICKER_SIM_RATE": "40",
}


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def state_of(page: Any) -> Any:
    return page.locator("#conn")


def rows_opacity(page: Any) -> float:
    return float(page.evaluate("getComputedStyle(document.querySelector('#board tbody')).opacity"))


def open_live(page: Any, url: str) -> None:
    page.goto(f"{url}/?symbols=AAPL,MSFT")
    expect(page.locator('[data-symbol="AAPL"] .price')).to_have_text(PRICE)
    expect(state_of(page)).to_have_attribute("data-connection-state", "live")
    expect(state_of(page)).to_have_attribute("data-transport", "websocket")
    # A heartbeat has told the page the interval: a silent socket is given up after 6 s.
    page.wait_for_function("window.tickerClient.silenceLimitMs === 6000")


def test_a_frozen_server_turns_the_page_behind_then_reconnecting_then_live_again(
    start_server: Any, page: Any, page_errors: list[str]
) -> None:
    server = start_server(**ENV)
    open_live(page, server.url)
    expect(page.locator('[data-symbol="AAPL"] .updated')).to_have_text(CLOCK)  # when it updated
    assert rows_opacity(page) == 1.0
    os.killpg(server.proc.pid, signal.SIGSTOP)
    try:
        # Ticks stop: not live any more, long before the socket is declared dead (6 s).
        expect(state_of(page)).to_have_attribute("data-connection-state", "behind")
        first = page.locator("#conn-latency").inner_text()
        expect(page.locator("#conn-latency")).not_to_have_text(first)  # the lag keeps growing
        expect(state_of(page)).to_have_attribute(
            "data-connection-state", re.compile("reconnecting|offline"), timeout=UNIT_S * 1500
        )
        expect(page.locator("#board")).to_have_attribute("data-stale", "true")
        assert rows_opacity(page) < 0.6  # the rows look old
        expect(page.locator("#conn-latency")).to_contain_text("last tick")
        # Connection attempts hang (the frozen process never answers): after two, `offline`.
        expect(state_of(page)).to_have_attribute(
            "data-connection-state", "offline", timeout=UNIT_S * 3000
        )
    finally:
        os.killpg(server.proc.pid, signal.SIGCONT)
    expect(state_of(page)).to_have_attribute("data-connection-state", "live", timeout=UNIT_S * 3000)
    expect(page.locator("#board")).to_have_attribute("data-stale", "false")
    assert page.evaluate("window.tickerClient.gaps") == 0  # resumed from the cursor
    assert page_errors == []


def test_a_killed_server_shows_offline_and_a_restart_brings_live_prices_back(
    start_server: Any, page: Any, page_errors: list[str]
) -> None:
    server = start_server(**ENV)
    open_live(page, server.url)
    port = int(server.url.rsplit(":", 1)[1])
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    expect(state_of(page)).to_have_attribute(
        "data-connection-state", re.compile("reconnecting|offline")
    )
    expect(state_of(page)).to_have_attribute(
        "data-connection-state", "offline", timeout=UNIT_S * 3000
    )
    expect(page.locator("#board")).to_have_attribute("data-stale", "true")
    start_server(port=port, **ENV)
    expect(state_of(page)).to_have_attribute("data-connection-state", "live", timeout=UNIT_S * 3000)
    shown = page.locator('[data-symbol="AAPL"] .price').inner_text()
    expect(page.locator('[data-symbol="AAPL"] .price')).not_to_have_text(shown)  # prices move again
    # Connection errors of the dead server are console noise, not page errors.
    assert [e for e in page_errors if e.startswith("pageerror")] == []


def test_ticks_that_arrive_late_make_the_page_say_behind_with_the_lag(
    server: Any, page: Any, page_errors: list[str]
) -> None:
    """A feed whose ticks are 5 s old when they arrive (a backlog, a slow path) is `behind`."""
    page.add_init_script(
        """(() => {  // every tick arrives stamped 5 s in the past, as from a lagging feed
          const Native = window.WebSocket;
          window.WebSocket = class extends Native {
            constructor(...args) {
              super(...args);
              this.addEventListener("message", (ev) => {
                const frame = JSON.parse(ev.data);
                if (frame.type !== "ticks") return;
                for (const t of frame.ticks) t.ts = Date.now() - 5000;
                ev.stopImmediatePropagation();
                this.onmessage?.(new MessageEvent("message", {data: JSON.stringify(frame)}));
              });
            }
            set onmessage(fn) { this._on = fn; } get onmessage() { return this._on; }
          };
        })();"""
    )
    page.goto(f"{server.url}/?symbols=AAPL,MSFT")
    expect(page.locator('[data-symbol="AAPL"] .price')).to_have_text(PRICE)
    expect(state_of(page)).to_have_attribute("data-connection-state", "behind")
    expect(page.locator("#conn-latency")).to_have_text(re.compile(r"^5\.\d s$"))
    assert page_errors == []

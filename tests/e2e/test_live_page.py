"""The live price page in headless Chromium against a real server.

Contract sections: Pages, WebSocket /ws, Fallbacks.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

# Fixtures come from conftest.py; its names are not imported, since several test folders have a
# module called conftest. `Server` below means conftest.Server.
Server = Any
PRICE = re.compile(r"^\d+\.\d{2,}$")

# Records what the page sends and keeps its sockets reachable, without changing behaviour.
SPY_WEBSOCKET = """
(() => {
  const Native = window.WebSocket;
  window.__sent = [];
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
    send(data) { window.__sent.push(JSON.parse(data)); super.send(data); }
  };
})();
"""


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def price_of(page: Any, symbol: str) -> Any:
    return page.locator(f'[data-symbol="{symbol}"] .price')


def wait_for_price(page: Any, symbol: str) -> str:
    """Wait until the row of `symbol` shows a price; return it, checking the contract hook too."""
    expect(price_of(page, symbol)).to_have_text(PRICE)
    # Read both in one go: the price may change between two separate reads.
    price, row = page.locator(f'[data-symbol="{symbol}"]').evaluate(
        "row => [row.querySelector('.price').textContent, row.textContent]"
    )
    assert price in row
    return str(price)


def client_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(
        """() => { const c = window.tickerClient; return {
             transport: c.transport, state: c.state, lastSeq: c.lastSeq, symbols: [...c.symbols],
             ticksReceived: c.ticksReceived, duplicatesDropped: c.duplicatesDropped,
             gaps: c.gaps, recovered: c.recovered, connects: c.connects }; }"""
    )
    return state


def require(server: Server, path: str) -> None:
    """Skip while `path` answers 404. Only the status line is read: /sse never ends."""
    try:
        with urllib.request.urlopen(f"{server.url}{path}?symbols=AAPL", timeout=10):
            pass
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            pytest.skip(f"{path} is not served yet (the SSE and long-poll transports arrive later)")


def test_prices_tick_over_websocket(server: Server, page: Any, page_errors: list[str]) -> None:
    page.goto(f"{server.url}/?symbols=AAPL,MSFT")

    first = wait_for_price(page, "AAPL")
    wait_for_price(page, "MSFT")
    expect(price_of(page, "AAPL")).not_to_have_text(first)  # prices move
    expect(page.locator("#conn-transport")).to_have_text("websocket")
    expect(page.locator("#conn")).to_have_attribute("data-connection-state", "live")
    expect(page.locator("#conn")).to_have_attribute("data-transport", "websocket")
    expect(page.locator("#conn-latency")).to_have_text(re.compile(r"^-?\d+ ms$"))
    expect(page.locator("[data-symbol]")).to_have_count(2)

    state = client_state(page)
    assert state["transport"] == "websocket"
    assert set(state["lastSeq"]) == {"AAPL", "MSFT"}
    assert state["ticksReceived"] >= 3
    assert page_errors == []


def test_default_symbols_when_none_are_given(server: Server, page: Any) -> None:
    page.goto(server.url)

    expect(page.locator("[data-symbol]")).to_have_count(5)
    for symbol in ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA"):
        wait_for_price(page, symbol)


def test_query_symbols_are_normalised_and_bad_ones_shown_as_text(
    server: Server, page: Any, page_errors: list[str]
) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(f"{server.url}/?symbols=aapl,<img src=x onerror=alert(1)>,AAPL,,way-too-long-symbol")

    wait_for_price(page, "AAPL")
    expect(page.locator("[data-symbol]")).to_have_count(1)
    expect(page.locator("#notice")).to_contain_text("<img src=x onerror=")
    assert page.locator("#notice img").count() == 0
    assert dialogs == []
    assert page_errors == []


def test_adding_a_symbol_with_enter_and_with_the_button(
    server: Server, page: Any, page_errors: list[str]
) -> None:
    page.goto(f"{server.url}/?symbols=AAPL")
    wait_for_price(page, "AAPL")

    page.fill("#picker-input", "nvda")
    page.press("#picker-input", "Enter")
    wait_for_price(page, "NVDA")
    page.fill("#picker-input", "goog")
    page.click("#picker-add")
    wait_for_price(page, "GOOG")

    expect(page.locator("#picker-input")).to_have_value("")
    assert page.url.endswith("?symbols=AAPL%2CNVDA%2CGOOG")
    assert set(client_state(page)["symbols"]) == {"AAPL", "NVDA", "GOOG"}
    assert page_errors == []


def test_adding_an_invalid_or_shown_symbol_explains_why(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/?symbols=AAPL")
    wait_for_price(page, "AAPL")

    page.fill("#picker-input", "no spaces")
    page.press("#picker-input", "Enter")
    expect(page.locator("#notice")).to_contain_text("characters of A")
    page.fill("#picker-input", "aapl")
    page.press("#picker-input", "Enter")
    expect(page.locator("#notice")).to_contain_text("AAPL is already shown")
    expect(page.locator("[data-symbol]")).to_have_count(1)


def test_removing_a_row_unsubscribes(server: Server, page: Any, page_errors: list[str]) -> None:
    page.add_init_script(SPY_WEBSOCKET)
    page.goto(f"{server.url}/?symbols=AAPL,MSFT")
    wait_for_price(page, "MSFT")

    page.click('[data-symbol="MSFT"] button.remove')

    expect(page.locator('[data-symbol="MSFT"]')).to_have_count(0)
    sent = page.evaluate("window.__sent")
    assert {"op": "unsubscribe", "symbols": ["MSFT"]} in sent
    state = client_state(page)
    assert state["symbols"] == ["AAPL"]
    assert "MSFT" not in state["lastSeq"]
    # Ticks of MSFT still in flight are ignored: the row never comes back.
    old = state["ticksReceived"]
    page.wait_for_function(f"window.tickerClient.ticksReceived > {old + 4}")
    expect(page.locator('[data-symbol="MSFT"]')).to_have_count(0)
    assert page_errors == []


def test_duplicates_are_dropped_and_reconnect_frame_resumes_with_since(
    server: Server, page: Any, page_errors: list[str]
) -> None:
    page.add_init_script(SPY_WEBSOCKET)
    page.goto(f"{server.url}/?symbols=AAPL,MSFT")
    wait_for_price(page, "AAPL")

    # Replay the last AAPL tick as the server would on an overlapping resume.
    dropped = page.evaluate(
        """() => {
          const c = window.tickerClient, before = c.duplicatesDropped;
          const tick = {symbol: "AAPL", price: 1, seq: c.lastSeq.AAPL, ts: Date.now()};
          window.__sockets.at(-1).dispatchEvent(
            new MessageEvent("message", {data: JSON.stringify({type: "ticks", ticks: [tick]})}));
          return c.duplicatesDropped - before;
        }"""
    )
    assert dropped == 1
    assert price_of(page, "AAPL").inner_text() != "1.00"

    # A `reconnect` frame makes the client reconnect at once, resuming from its last seqs.
    since = page.evaluate(
        """() => {
          const c = window.tickerClient, since = {...c.lastSeq};
          window.__sockets.at(-1).dispatchEvent(
            new MessageEvent("message", {data: '{"type": "reconnect", "reason": "test"}'}));
          return since;
        }"""
    )
    page.wait_for_function(
        "window.tickerClient.connects === 2 && window.tickerClient.state === 'live'"
    )
    resume = page.evaluate("window.__sent.at(-1)")
    assert resume["op"] == "subscribe"
    assert sorted(resume["symbols"]) == ["AAPL", "MSFT"]
    assert resume["since"] == since
    page.wait_for_function("window.tickerClient.recovered !== null")
    old = client_state(page)["ticksReceived"]
    page.wait_for_function(f"window.tickerClient.ticksReceived > {old + 4}")
    state = client_state(page)
    assert state["recovered"] is True
    assert state["gaps"] == 0
    assert page_errors == []


@pytest.mark.parametrize(
    ("init_script", "transport", "needs"),
    [
        pytest.param("delete window.WebSocket;", "sse", "/sse", id="sse"),
        pytest.param(
            "delete window.WebSocket; delete window.EventSource;",
            "longpoll",
            "/poll",
            id="longpoll",
        ),
    ],
)
def test_falls_back_without_websocket(
    server: Server,
    page: Any,
    page_errors: list[str],
    init_script: str,
    transport: str,
    needs: str,
) -> None:
    require(server, needs)
    page.add_init_script(init_script)
    page.goto(f"{server.url}/?symbols=AAPL,MSFT")

    first = wait_for_price(page, "AAPL")
    expect(page.locator("#conn-transport")).to_have_text(transport)
    expect(price_of(page, "AAPL")).not_to_have_text(first)

    # A symbol change reopens the stream with the new set, keeping the cursor.
    page.fill("#picker-input", "NVDA")
    page.press("#picker-input", "Enter")
    wait_for_price(page, "NVDA")
    page.click('[data-symbol="MSFT"] button.remove')
    expect(page.locator('[data-symbol="MSFT"]')).to_have_count(0)
    nvda = price_of(page, "NVDA").inner_text()
    expect(price_of(page, "NVDA")).not_to_have_text(nvda)
    assert client_state(page)["transport"] == transport
    assert page_errors == []


def test_unknown_frames_and_server_errors_are_harmless(
    server: Server, page: Any, page_errors: list[str]
) -> None:
    page.add_init_script(SPY_WEBSOCKET)
    page.goto(f"{server.url}/?symbols=AAPL")
    wait_for_price(page, "AAPL")

    page.evaluate(
        """() => {
          const ws = window.__sockets.at(-1);
          const send = (frame) => ws.dispatchEvent(new MessageEvent("message", {data: frame}));
          send(JSON.stringify({type: "heartbeat", ts: Date.now()}));
          send(JSON.stringify({type: "something-new"}));
          send("not json");
          ws.send(JSON.stringify({op: "subscribe", symbols: ["NOT VALID!"]}));
        }"""
    )

    expect(page.locator("#notice")).to_contain_text("Server:")
    assert page.locator("#notice *").count() == 0
    first = price_of(page, "AAPL").inner_text()
    expect(price_of(page, "AAPL")).not_to_have_text(first)
    assert client_state(page)["state"] == "live"
    assert page_errors == [], json.dumps(page_errors)


def test_the_snapshot_after_a_resync_is_shown_even_below_the_last_seq(
    server: Server, page: Any, page_errors: list[str]
) -> None:
    # A foreign producer poisoned a symbol's seq (2**63-1); the server re-bases onto the real,
    # lower lineage and says `resync` first. The page must show that snapshot, not stay frozen.
    page.goto(f"{server.url}/?symbols=AAPL,ZZZZ")  # ZZZZ: no feed, only the frames below
    wait_for_price(page, "AAPL")
    page.evaluate(
        """() => {
          const c = window.tickerClient;
          const tick = (seq, price) => ({symbol: "ZZZZ", price, seq, ts: Date.now()});
          c._handleFrame({type: "ticks", ticks: [tick(1000, 100.5)]});
          c._handleFrame({type: "ticks", ticks: [tick(2 ** 63 - 1, 666.25)]});
          c._handleFrame({type: "resync", symbols: ["ZZZZ"]});
          c._handleFrame({type: "ticks", ticks: [tick(1005, 101.75)]});
          c._handleFrame({type: "ticks", ticks: [tick(1005, 999.0)]});  // a duplicate again
          // a long-poll answer with "resync": true carries the snapshot the same way
          c._handleFrame({ticks: [tick(7, 102.5)], cursor: "c", resync: true});
        }"""
    )
    expect(price_of(page, "ZZZZ")).to_have_text("102.50")
    state = client_state(page)
    assert state["lastSeq"]["ZZZZ"] == 7
    assert state["duplicatesDropped"] >= 1
    assert page_errors == []

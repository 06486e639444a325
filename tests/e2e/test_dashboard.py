"""The admin dashboard in headless Chromium: log in, then watch the cluster total follow clients.

Contract: Health and admin (`/admin`, the login form, `data-stat="cluster-connections"`).
WebSocket clients from the test stand in for browsers on the live page.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support.servers import BASE_ENV, Server
from tests.support.timing import UNIT_S, timeout
from tests.support.wsclient import page_sockets

pytestmark = pytest.mark.e2e

TOKEN = BASE_ENV["TICKER_ADMIN_TOKEN"]


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def clients(server: Server, count: int) -> contextlib.AbstractContextManager[list[Any]]:
    """`count` page stand-ins subscribed to AAPL, closed on exit."""
    return page_sockets(server.url, [["AAPL"]] * count)


def log_in(page: Any, server: Server, token: str = TOKEN) -> None:
    page.goto(f"{server.url}/admin")
    expect(page).to_have_url(f"{server.url}/admin/login")
    page.fill("#token", token)
    page.click("button[type=submit]")


def test_login_then_the_total_follows_clients_live(
    page: Any, server: Server, page_errors: list[str]
) -> None:
    log_in(page, server)
    expect(page).to_have_url(f"{server.url}/admin")
    total = page.locator('[data-stat="cluster-connections"]')
    expect(page.locator("#status")).to_have_text("live")
    expect(total).to_have_text("0")
    expect(page.locator("#instances tbody tr")).to_have_count(1)

    with clients(server, 3) as sockets:
        expect(total).to_have_text("3")  # pushed over the admin stream, no reload
        expect(page.locator('#symbols tr[data-symbol="AAPL"] td.n')).to_have_text("3")
        sockets[0].close()
        sockets[1].close()
        expect(total).to_have_text("1")
    expect(total).to_have_text("0")
    expect(page.locator(".chart canvas")).to_have_count(3)
    assert page_errors == []


def test_wrong_token_stays_on_the_login_form(page: Any, server: Server) -> None:
    log_in(page, server, token="not-the-token")
    expect(page.locator(".error")).to_have_text("wrong token")
    response = page.request.get(f"{server.url}/admin/api/stats")
    assert response.status == 401


def test_the_cookie_is_http_only_and_strict(page: Any, server: Server) -> None:
    log_in(page, server)
    expect(page).to_have_url(f"{server.url}/admin")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "ticker_admin"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""
    assert TOKEN not in cookie["value"]


def test_api_refuses_without_token(server: Server) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{server.url}/admin/api/stats", timeout=5)
    assert refused.value.code == 401
    refused.value.close()


def test_a_long_poll_client_counts_steadily_between_polls_with_its_symbols(
    page: Any, server: Server, page_errors: list[str]
) -> None:
    log_in(page, server)
    total = page.locator('[data-stat="cluster-connections"]')
    expect(total).to_have_text("0")
    stop = threading.Event()

    def poll_forever() -> None:  # a long-poll client as the page runs it: poll again at once
        cursor = None
        while not stop.is_set():
            query = "symbols=NVDA" + (f"&cursor={cursor}" if cursor else "")
            with urllib.request.urlopen(f"{server.url}/poll?{query}", timeout=30) as resp:
                cursor = json.loads(resp.read())["cursor"]

    poller = threading.Thread(target=poll_forever, daemon=True)
    poller.start()
    try:
        expect(total).to_have_text("1")
        expect(page.locator('#symbols tr[data-symbol="NVDA"] td.n')).to_have_text("1")
        seen = set()
        for _ in range(30):  # three seconds of dashboard updates: never a flicker to 0
            seen.add(total.inner_text())
            page.wait_for_timeout(100)
        assert seen == {"1"}
    finally:
        stop.set()
        poller.join(30)
    expect(total).to_have_text("0", timeout=UNIT_S * 2000)  # gone after the short grace
    assert page_errors == []


def test_a_sigtermed_instance_shows_draining_then_leaves_cleanly(
    page: Any, start_server: Any
) -> None:
    server = start_server.serve()
    log_in(page, server)
    row_state = page.locator("#instances tbody td.state")
    expect(row_state).to_have_text("live")
    with clients(server, 2):  # clients to say goodbye to: the drain takes a second or so
        server.proc.send_signal(signal.SIGTERM)
        expect(row_state).to_have_text("draining", timeout=timeout(2000))
        assert server.proc.wait(UNIT_S * 2) == 0  # left cleanly
    expect(page.locator("#status")).to_have_text("reconnecting…")


def test_instance_rows_sort_by_any_column(page: Any, server: Server) -> None:
    log_in(page, server)
    expect(page.locator("#instances tbody tr")).to_have_count(1)
    # The first row is rendered by the server: wait for the script (it says "live" once
    # connected, after wiring the headers), or a click may land before its handler exists.
    expect(page.locator("#status")).to_have_text("live")
    header = page.locator("#instances thead th").nth(2)
    header.locator("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    header.locator("button").click()
    expect(header).to_have_attribute("aria-sort", "descending")


def test_a_phone_shows_the_dashboard_without_horizontal_overflow(page: Any, server: Server) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, server)
    expect(page.locator("#instances tbody tr")).to_have_count(1)
    expect(page.locator(".chart canvas")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

"""Screenshots of the page and the dashboard for the README: desktop 1366x768 and phone 390x844,
light and dark, written to docs/. Run with TICKER_UPDATE_SCREENSHOT=1 (skipped otherwise: it
takes a couple of minutes; the phone layout's width is checked by test_watchlist/test_dashboard).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import BASE_ENV
from tests.support.wsclient import page_sockets

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("TICKER_UPDATE_SCREENSHOT") != "1",
        reason="refreshes docs/*.png only when TICKER_UPDATE_SCREENSHOT=1",
    ),
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
PRICE = re.compile(r"^\d+\.\d{2,}$")
SIZES = {"desktop": (1366, 768), "phone": (390, 844)}
SYMBOLS = "AAPL,MSFT,GOOG,AMZN,NVDA,TSLA,META,NFLX,AMD,INTC,ORCL,IBM"


@pytest.fixture(scope="module")
def shot_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.support.servers import ServerFactory

    factory = ServerFactory(tmp_path_factory.mktemp("shots"))
    yield factory(TICKER_SIM_SYMBOLS=SYMBOLS, TICKER_SIM_RATE="60")
    factory.stop_all()


def save(page: Any, tmp_path: Path, name: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{name}: {width} px wide"
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    DOCS.mkdir(exist_ok=True)
    shutil.copyfile(shot, DOCS / name)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_page_and_dashboard_screenshots(
    browser: Any, shot_server: Any, tmp_path: Path, size: str, scheme: str
) -> None:
    from playwright.sync_api import expect

    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{shot_server.url}/?symbols={SYMBOLS},ZZZZ")
    expect(page.locator('[data-symbol="IBM"] .price')).to_have_text(PRICE)
    page.wait_for_function("window.tickerClient.ticksReceived > 150")
    if size == "desktop":
        page.click('[data-symbol="MSFT"] .sym-btn')  # one chart open
        page.wait_for_timeout(1500)  # a few more points on it
    save(page, tmp_path, f"page-{size}-{scheme}.png")

    page.goto(f"{shot_server.url}/admin")
    page.fill("#token", BASE_ENV["TICKER_ADMIN_TOKEN"])
    page.click("button[type=submit]")
    expect(page.locator("#status")).to_have_text("live")
    # Subscribers for the tables: a few pages' worth of WebSocket clients.
    with page_sockets(shot_server.url, [["AAPL", "MSFT"], ["AAPL"], ["NVDA", "TSLA", "AAPL"]]):
        expect(page.locator('[data-stat="cluster-connections"]')).to_have_text("3")
        page.wait_for_timeout(2500)  # a few chart points
        save(page, tmp_path, f"dashboard-{size}-{scheme}.png")
    context.close()

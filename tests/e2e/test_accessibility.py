"""axe-core finds no violations on `/` and `/admin`, in both themes, and the page does not flood
screen readers (its live region says state changes, not prices).

axe-core comes from the npm package, vendored under tests/e2e/vendor/axe-core (see VERSION), and
is injected into the page under test: no CDN.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import BASE_ENV

pytestmark = pytest.mark.e2e
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
PRICE = re.compile(r"^\d+\.\d{2,}$")


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(
             (v) => ({id: v.id, impact: v.impact,
                      nodes: v.nodes.map((n) => n.target.join(" "))}))"""
    )
    return found


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_live_page_has_no_axe_violations(server: Any, page: Any, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{server.url}/?symbols=AAPL,MSFT,NOPE")
    expect(page.locator('[data-symbol="AAPL"] .price')).to_have_text(PRICE)
    page.click('[data-symbol="MSFT"] .sym-btn')  # a chart open, too
    expect(page.locator("#chart-MSFT canvas")).to_have_count(1)
    page.click("th.col-price button")  # and a sorted column
    found = violations(page)
    assert found == [], json.dumps(found, indent=1)


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_dashboard_has_no_axe_violations(server: Any, browser: Any, scheme: str) -> None:
    # The dashboard's Content-Security-Policy refuses inline scripts: axe is injected as one.
    context = browser.new_context(bypass_csp=True, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{server.url}/admin")
    page.fill("#token", BASE_ENV["TICKER_ADMIN_TOKEN"])
    page.click("button[type=submit]")
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator("#instances tbody td.state")).to_have_text("live")
    found = violations(page)
    context.close()
    assert found == [], json.dumps(found, indent=1)


def test_the_live_region_announces_state_changes_not_prices(server: Any, page: Any) -> None:
    page.add_init_script(
        """window.__announced = [];
        new MutationObserver((records) => {
          const region = document.getElementById("announcer");
          if (region && records.some((r) => region.contains(r.target)) && region.textContent) {
            window.__announced.push(region.textContent);
          }
        }).observe(document, {subtree: true, childList: true, characterData: true});"""
    )
    page.goto(f"{server.url}/?symbols=AAPL,MSFT")
    expect(page.locator("#conn")).to_have_attribute("data-connection-state", "live")
    ticks = page.evaluate("window.tickerClient.ticksReceived")
    page.wait_for_function(f"window.tickerClient.ticksReceived > {ticks} + 40")
    announced = page.evaluate("window.__announced")
    assert announced[-1] == "Connection: Live over websocket."
    assert len(announced) <= 3  # connecting, live: not one message per tick
    # The indicator itself is not a live region (it changes four times a second).
    assert page.locator("#conn").get_attribute("aria-live") is None
    assert page.locator("[aria-live]").count() == 1
    # Prices are read on request.
    page.click("#read-prices")
    expect(page.locator("#announcer")).to_contain_text("AAPL ")
    expect(page.locator("#announcer")).to_contain_text("percent")

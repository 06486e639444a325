"""The watchlist: what every watchlist has, kept in the browser, usable from the keyboard.

Contract: Pages (`data-symbol` rows whose text includes the latest price).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
PRICE = re.compile(r"^\d+\.\d{2,}$")
SIGNED = re.compile(r"^[+\u2212±]\d+\.\d{2}%?$")  # U+2212: a real minus sign


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def test_each_row_has_change_against_the_open_bid_ask_volume_and_time(
    server: Any, page: Any, page_errors: list[str]
) -> None:
    page.goto(f"{server.url}/?symbols=AAPL")
    row = page.locator('[data-symbol="AAPL"]')
    expect(row.locator(".price")).to_have_text(PRICE)
    for cell in (".change", ".pct"):
        expect(row.locator(cell)).to_have_text(SIGNED)
    for cell in (".bid", ".ask"):
        expect(row.locator(cell)).to_have_text(PRICE)
    expect(row.locator(".volume")).to_have_text(re.compile(r"^[\d,]+$"))
    expect(row.locator(".updated")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    # The base is the feed's day open, so a reload shows the same change, not ±0.00.
    base = page.evaluate("window.tickerBoard.rows.get('AAPL')")["open"]
    page.reload()
    expect(row.locator(".price")).to_have_text(PRICE)
    assert page.evaluate("window.tickerBoard.rows.get('AAPL')")["open"] == base
    assert page_errors == []


def test_the_list_is_kept_in_local_storage_and_the_url_still_wins(server: Any, page: Any) -> None:
    page.goto(f"{server.url}/?symbols=AAPL")
    page.fill("#picker-input", "msft")
    page.press("#picker-input", "Enter")
    expect(page.locator("[data-symbol]")).to_have_count(2)
    page.goto(server.url)  # no ?symbols=: the stored list
    expect(page.locator("[data-symbol]")).to_have_count(2)
    assert page.locator("[data-symbol]").evaluate_all(
        "rows => rows.map(r => r.dataset.symbol)"
    ) == [
        "AAPL",
        "MSFT",
    ]
    page.goto(f"{server.url}/?symbols=NVDA")  # a shared link wins
    expect(page.locator("[data-symbol]")).to_have_count(1)
    expect(page.locator('[data-symbol="NVDA"]')).to_have_count(1)


def test_notices_say_no_data_yet_and_the_limit_without_calling_valid_symbols_invalid(
    server: Any, page: Any
) -> None:
    names = [f"X{n:03d}" for n in range(105)]
    page.goto(f"{server.url}/?symbols={','.join(['AAPL', *names, 'BAD SYMBOL!'])}")
    notice = page.locator("#notice")
    expect(notice).to_contain_text("at most 100 symbols")
    expect(notice).to_contain_text("X099, X100, X101, X102, X103")
    expect(notice).to_contain_text("Ignored invalid symbol: BAD SYMBOL!")
    assert "X100" not in notice.inner_text().split("invalid symbol:")[1].split(".")[0]
    expect(page.locator("[data-symbol]")).to_have_count(100)
    expect(page.locator('[data-symbol="X000"] .updated')).to_have_text("no data yet")
    page.fill("#picker-input", "MSFT")
    page.press("#picker-input", "Enter")
    expect(notice).to_contain_text("The watchlist is full: at most 100 symbols")


def test_sorting_a_chart_on_demand_and_the_keyboard(server: Any, page: Any) -> None:
    page.goto(f"{server.url}/?symbols=MSFT,AAPL,NVDA")
    for symbol in ("MSFT", "AAPL", "NVDA"):
        expect(page.locator(f'[data-symbol="{symbol}"] .price')).to_have_text(PRICE)
    order = "rows => rows.map(r => r.dataset.symbol)"
    page.click("th.col-symbol button")
    expect(page.locator("th.col-symbol")).to_have_attribute("aria-sort", "ascending")
    assert page.locator("tr.row").evaluate_all(order) == ["AAPL", "MSFT", "NVDA"]
    page.click("th.col-symbol button")
    assert page.locator("tr.row").evaluate_all(order) == ["NVDA", "MSFT", "AAPL"]
    page.click("th.col-price button")  # NVDA ~120 < AAPL ~190 < MSFT ~420 in the simulated feed
    page.click("th.col-price button")
    expect(page.locator("th.col-price")).to_have_attribute("aria-sort", "ascending")
    assert page.locator("tr.row").evaluate_all(order) == ["NVDA", "AAPL", "MSFT"]

    # Keyboard: focus a row's symbol, Enter opens its chart (time on the x axis), arrows move.
    page.focus('[data-symbol="AAPL"] .sym-btn')
    page.keyboard.press("Enter")
    chart = page.locator("#chart-AAPL")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(page.locator('[data-symbol="AAPL"] .sym-btn')).to_have_attribute("aria-expanded", "true")
    x = page.evaluate(
        "(({time, min, max}) => ({time, min, max}))"
        "(window.tickerBoard.rows.get('AAPL').chart.scales.x)"
    )
    assert x["time"] is True  # a time axis, in seconds since the epoch
    assert abs(x["max"] - page.evaluate("Date.now() / 1000")) < 60
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.closest('tr').dataset.symbol") == "MSFT"
    page.keyboard.press("Delete")
    expect(page.locator('[data-symbol="MSFT"]')).to_have_count(0)
    page.click('[data-symbol="AAPL"] .price')  # a click anywhere on the row closes it again
    expect(chart).to_have_count(0)


def test_a_phone_shows_the_watchlist_without_horizontal_overflow(server: Any, page: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/?symbols=AAPL,MSFT,BRK.B,ABCDEFGHIJKLMNO")
    expect(page.locator('[data-symbol="AAPL"] .price')).to_have_text(PRICE)
    page.click('[data-symbol="AAPL"] .sym-btn')
    expect(page.locator("#chart-AAPL canvas")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

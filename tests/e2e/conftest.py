"""End-to-end fixtures: a real Hypercorn server process and headless Chromium through Playwright.

Rules: every server runs in its own process group and is always stopped (SIGTERM, then SIGKILL
after 10 s); tests never sleep to synchronise, they wait with Playwright's `expect`, whose
timeout is `tests.support.timing.UNIT_S` (one scaled unit). Missing chromium or playwright skips
the tests locally with the reason, and fails them when CI=true.

Fixtures:
- `start_server(**env)` (from tests/conftest.py) -> `Server`: a fresh server process.
- `server`: one shared server per module with the default environment; its `.url` is the base URL.
- `browser` (per module: the sync Playwright API runs an event loop that would clash with the
  pytest-asyncio tests of other modules), `page` (a fresh context per test) and `page_errors`
  (page errors and console errors seen by `page`; most tests assert it stays empty).
- `release_raw_sockets`: closes every raw WebSocket a test opened with `tests.support.wsclient`
  (modules that use them ask for it in `pytestmark`).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.servers import Server, ServerFactory, missing
from tests.support.timing import UNIT_S
from tests.support.wsclient import drop_all


@pytest.fixture
async def release_raw_sockets() -> AsyncIterator[None]:
    yield
    await drop_all()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory.mktemp("server"))
    yield factory()
    factory.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install playwright)")
    executable = shutil.which("chromium")
    if executable is None:
        missing("chromium is not on PATH (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=executable,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
        except Error as exc:
            missing(f"chromium at {executable} does not start under playwright: {exc}")
        yield browser
        browser.close()


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Any, page_errors: list[str]) -> Iterator[Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=UNIT_S * 1000)
    context = browser.new_context(viewport={"width": 1100, "height": 640})
    context.set_default_timeout(UNIT_S * 1000)
    page = context.new_page()

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            page_errors.append(f"console: {msg.text} {msg.location}")

    page.on("pageerror", lambda exc: page_errors.append(f"pageerror: {exc}"))
    page.on("console", on_console)
    yield page
    context.close()

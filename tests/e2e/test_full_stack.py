"""The product as `make dev` runs it: publisher -> Pub/Sub emulator -> server -> Chromium page.

This is the issue's "Done when" as a test: real emulator, real publisher job, the production
entrypoint (`python -m ticker.serve`) and a real browser, with prices that change on the page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.support.servers import REPO, free_port, launch, missing
from ticker.ops import procs
from ticker.ops.emulator import emulator_available, running_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
PRICE = re.compile(r"^\d+\.\d{2,}$")


def test_the_page_shows_live_prices_from_the_publisher_through_pubsub(page: Any, page_errors):
    if not emulator_available():
        missing("the Pub/Sub emulator is not installed (google-cloud-cli-pubsub-emulator)")
    from playwright.sync_api import expect

    with running_emulator() as emulator:
        port = free_port()
        env = {
            **os.environ,
            "PUBSUB_EMULATOR_HOST": emulator.host,
            "GOOGLE_CLOUD_PROJECT": "ticker-test",
            "TICKER_BROKER": "pubsub",
            "TICKER_TOPIC": f"prices-{port}",
            "TICKER_ADMIN_TOKEN": "t",
        }
        server = launch(env, port=port)
        publisher = None
        try:
            url = server.url
            server.wait_ready(30)  # three units
            publisher = procs.start(
                [sys.executable, "-m", "publisher", "--symbols", "AAPL,MSFT", "--rate", "20",
                 "--topic", env["TICKER_TOPIC"], "--project", "ticker-test"],
                env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            page.goto(url + "/?symbols=AAPL,MSFT")
            aapl = page.locator('[data-symbol="AAPL"] .price')
            expect(aapl).to_have_text(PRICE)
            seq = page.evaluate("() => window.tickerClient.lastSeq.AAPL")
            page.wait_for_function(f"() => window.tickerClient.lastSeq.AAPL >= {seq} + 5")
            assert page.evaluate("() => window.tickerClient.transport") == "websocket"
            assert page.evaluate("() => window.tickerClient.duplicatesDropped") == 0
            expect(page.locator('[data-symbol="MSFT"] .price')).to_have_text(PRICE)
            assert page_errors == []
        finally:
            if publisher is not None:
                procs.stop(publisher, 20)
            server.stop(20)

"""`GET /` never offers a watchlist longer than one connection may follow (TICKER_MAX_SYMBOLS)."""

from __future__ import annotations

import json
import re

from tests.service.streams import serving


def _config(html: str) -> dict[str, object]:
    island = re.search(r'<script id="ticker-config" type="application/json">(.*?)</script>', html)
    assert island is not None
    config: dict[str, object] = json.loads(island.group(1))
    return config


async def test_the_page_limit_follows_a_lower_per_connection_limit():
    async with serving(TICKER_MAX_SYMBOLS="3") as (client, _):
        html = await (await client.get("/?symbols=AAA,BBB,CCC,DDD,EEE")).get_data(as_text=True)
        config = _config(html)
        assert config["maxSymbols"] == 3  # before: 100, and the server refused the 4th symbol
        assert config["symbols"] == ["AAA", "BBB", "CCC"]
        assert "at most 3 symbols: not shown DDD, EEE" in html
        defaults = _config(await (await client.get("/")).get_data(as_text=True))
        assert defaults["symbols"] == ["AAPL", "MSFT", "GOOG"]  # the defaults are cut too


async def test_the_page_keeps_its_own_limit_below_a_higher_one():
    async with serving(TICKER_MAX_SYMBOLS="500") as (client, _):
        names = ",".join(f"X{i:03d}" for i in range(120))
        config = _config(await (await client.get(f"/?symbols={names}")).get_data(as_text=True))
        assert config["maxSymbols"] == 100
        assert len(config["symbols"]) == 100  # type: ignore[arg-type]

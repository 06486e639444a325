"""The live price page, `GET /` (contract: Pages).

Rule: the page only renders markup and the preselected symbols; every price arrives later over
/ws (or the /sse and /poll fallbacks) through ticker/static/app.js. Nothing from the query
string reaches the page unescaped: symbols are validated, and the rest goes through Jinja's
autoescaping or a JSON island read with `textContent`.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, current_app, render_template, request

from ticker.core.errors import InvalidTick
from ticker.core.ticks import normalise_symbol
from ticker.server.transports import runtime_of

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA")
# A watchlist of up to 100 rows, or fewer where the server's per-connection limit
# (TICKER_MAX_SYMBOLS) is lower: the page never asks for more than one connection may follow.
MAX_PAGE_SYMBOLS = 100

# static_url_path differs from the app's own /static so the two routes never shadow each other;
# templates sit under pages/ so names like base.html cannot clash with another blueprint's. The
# page's templates and assets are the package's (ticker/templates, ticker/static), not this edge's.
bp = Blueprint(
    "pages",
    __name__,
    root_path=str(Path(__file__).resolve().parents[1]),
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)


def parse_symbols(
    raw: str | None, limit: int = MAX_PAGE_SYMBOLS
) -> tuple[list[str], list[str], list[str]]:
    """Split a `?symbols=` value into (valid upper-case symbols, invalid inputs, over the limit).

    Keeps the first occurrence of each symbol and at most `limit`; valid symbols past
    the limit are returned apart (they are not invalid, and the notice must not say so). Invalid
    inputs are returned shortened, for a notice only.
    """
    symbols: list[str] = []
    rejected: list[str] = []
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        try:
            symbol = normalise_symbol(part)
        except InvalidTick:
            shown = part.strip()
            rejected.append(shown if len(shown) <= 20 else shown[:19] + "…")
            continue
        if symbol not in symbols:
            symbols.append(symbol)
    return symbols[:limit], rejected, symbols[limit:]


@bp.get("/")
async def index() -> str:
    """Render the live page with the preselected symbols (defaults when none are valid).

    `from_query` tells the page the URL named valid symbols: they win over its localStorage list.
    """
    limit = min(MAX_PAGE_SYMBOLS, runtime_of(current_app).settings.max_symbols_per_client)
    symbols, rejected, over = parse_symbols(request.args.get("symbols"), limit)
    return await render_template(
        "pages/index.html",
        symbols=symbols or list(DEFAULT_SYMBOLS[:limit]),
        rejected=rejected,
        over=over,
        from_query=bool(symbols),
        max_symbols=limit,
    )


@bp.get("/favicon.ico")
async def favicon() -> Response:
    """Serve the page's SVG icon: browsers ask for /favicon.ico even when the page names one."""
    return await bp.send_static_file("favicon.svg")

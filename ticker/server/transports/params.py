"""Query parameters and answers shared by the HTTP fallbacks (`/sse`, `/poll`).

Rules: bad input raises `ClientError` with the contract's code; the HTTP answer is a 400 whose body
is the same `{"type": "error", ...}` object the WebSocket sends. Nothing the client sent is echoed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from quart import Response

from ticker.core.client_ops import clamp_rate, max_rate_value
from ticker.core.codec import error_frame
from ticker.core.cursor import decode_cursor, encode_cursor
from ticker.core.errors import ClientError, InvalidTick
from ticker.core.ticks import normalise_symbol
from ticker.server.settings import Settings

MAX_SYMBOL_CHARS = 16  # 15 characters and a comma


@dataclass(frozen=True, slots=True)
class StreamParams:
    """What a fallback request asks for: the symbols, where to resume, the pace."""

    symbols: tuple[str, ...]
    since: dict[str, int]
    max_rate: float | None


def stream_params(args: Mapping[str, str], cursor: str | None, settings: Settings) -> StreamParams:
    """`?symbols=..&max_rate=..` and the resume cursor (raises `ClientError` when bad)."""
    limit = settings.max_symbols_per_client
    symbols = symbols_param(args.get("symbols"), limit)
    since = since_param(cursor, settings.cursor_key, limit, symbols)
    return StreamParams(symbols, since, max_rate_param(args.get("max_rate"), settings.max_rate))


def symbols_param(raw: str | None, max_symbols: int) -> tuple[str, ...]:
    """`?symbols=AAPL,msft` -> ("AAPL", "MSFT"); at least one, at most `max_symbols`."""
    if not raw or not raw.strip(", "):
        raise ClientError("bad_symbol", "give the symbols to follow: ?symbols=AAPL,MSFT")
    if len(raw) > max_symbols * MAX_SYMBOL_CHARS:
        raise ClientError("too_many_symbols", f"at most {max_symbols} symbols per request")
    parts = [p for p in raw.split(",") if p.strip()]
    if len(parts) > max_symbols:
        raise ClientError("too_many_symbols", f"at most {max_symbols} symbols per request")
    try:
        return tuple(dict.fromkeys(normalise_symbol(p) for p in parts))
    except InvalidTick as exc:
        raise ClientError("bad_symbol", str(exc)) from None


def max_rate_param(raw: str | None, ceiling: float) -> float | None:
    """`&max_rate=2` -> 2.0 ticks/s per symbol, lowered to the ceiling; None when absent."""
    if raw is None or raw == "":
        return None
    try:
        value = float(raw) if len(raw) <= 32 else math.nan
    except ValueError:
        value = math.nan  # reported as not a number below
    if not math.isfinite(value):
        raise ClientError("bad_max_rate", "max_rate must be a number of ticks per second")
    return clamp_rate(max_rate_value(value), ceiling)


def since_param(
    cursor: str | None, key: bytes, max_symbols: int, symbols: Iterable[str]
) -> dict[str, int]:
    """The resume positions of a cursor, kept only for `symbols`; {} without a cursor."""
    if cursor is None:
        return {}
    positions = decode_cursor(cursor, key, max_symbols)
    wanted = set(symbols)
    return {s: seq for s, seq in positions.items() if s in wanted}


def next_cursor(
    since: Mapping[str, int], last_seq: Mapping[str, int], symbols: Iterable[str], key: bytes
) -> str:
    """The cursor after what was sent: newest seq per followed symbol, carrying the old ones."""
    merged = {**since, **last_seq}
    return encode_cursor({s: merged[s] for s in symbols if s in merged}, key)


def bad_request(exc: ClientError) -> Response:
    """The 400 answer for bad input."""
    return Response(error_frame(exc.code, exc.message), 400, content_type="application/json")

"""Parse what a client sends over `/ws` into typed operations.

Rule: every bad input raises `ClientError` with the contract's code and a message that says what
to send instead; nothing a client sends is echoed back unescaped or at unbounded length.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ticker.core.errors import ClientError, InvalidTick
from ticker.core.ticks import MAX_SEQ, normalise_symbol

MIN_RATE = 0.01  # ticks/s: one per 100 s; below that a client wants a snapshot, not a stream
MAX_RATE = 1_000_000.0  # past this no value means anything: refused, not clamped


@dataclass(frozen=True, slots=True)
class Subscribe:
    """`{"op": "subscribe", "symbols": [...], "since": {SYM: seq}, "max_rate": N}`."""

    symbols: tuple[str, ...]
    since: dict[str, int]
    max_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """`{"op": "unsubscribe", "symbols": [...]}`."""

    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ping:
    """`{"op": "ping"}`: an application heartbeat; the server answers `pong` (an addition)."""

    nonce: str | int | None


ClientOp = Subscribe | Unsubscribe | Ping


def _symbols(raw: object, max_symbols: int) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise ClientError("bad_frame", '"symbols" must be a non-empty list of strings')
    if len(raw) > max_symbols:
        raise ClientError(
            "too_many_symbols", f"at most {max_symbols} symbols per request, got {len(raw)}"
        )
    try:
        return tuple(dict.fromkeys(normalise_symbol(s) for s in raw))
    except InvalidTick as exc:
        raise ClientError("bad_symbol", str(exc)) from None


def _since(raw: object, symbols: tuple[str, ...]) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ClientError("bad_since", '"since" must be an object {"SYMBOL": seq}')
    out: dict[str, int] = {}
    for key, seq in raw.items():
        try:
            symbol = normalise_symbol(key)
        except InvalidTick as exc:
            raise ClientError("bad_symbol", f"in since: {exc}") from None
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
            raise ClientError("bad_since", f"since[{symbol}] must be a non-negative integer")
        if symbol in symbols:
            out[symbol] = seq
    return out


def max_rate_value(raw: object) -> float | None:
    """A client's `max_rate` (ticks per second per symbol) as a float; None when not given.

    Raise `ClientError("bad_max_rate")` for anything but a finite number in
    [MIN_RATE, MAX_RATE]. The server's own ceiling is applied later (`clamp_rate`).
    """
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ClientError("bad_max_rate", '"max_rate" must be a number of ticks per second')
    if not MIN_RATE <= raw <= MAX_RATE:  # NaN fails both comparisons
        raise ClientError(
            "bad_max_rate", f'"max_rate" must be between {MIN_RATE:g} and {MAX_RATE:g} ticks/s'
        )
    return float(raw)


def clamp_rate(requested: float | None, ceiling: float) -> float | None:
    """The rate in force: the request, lowered to the server's ceiling (TICKER_MAX_RATE)."""
    return None if requested is None else min(requested, ceiling)


def parse_client_frame(text: str | bytes | None, max_symbols: int) -> ClientOp:
    """Decode one frame; raise `ClientError` for anything that is not a valid operation."""
    if text is None or text in ("", b""):
        raise ClientError("bad_frame", "empty frame: send a JSON object")
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ClientError("bad_json", "frame is not valid UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise ClientError("bad_frame", 'frame must be a JSON object with an "op" field')
    op = obj.get("op")
    if op == "subscribe":
        symbols = _symbols(obj.get("symbols"), max_symbols)
        rate = max_rate_value(obj.get("max_rate"))
        return Subscribe(symbols, _since(obj.get("since"), symbols), rate)
    if op == "unsubscribe":
        return Unsubscribe(_symbols(obj.get("symbols"), max_symbols))
    if op == "ping":
        nonce = obj.get("nonce")
        return Ping(nonce if isinstance(nonce, str | int) and not isinstance(nonce, bool) else None)
    shown = op[:32] if isinstance(op, str) else type(op).__name__
    raise ClientError("unknown_op", f"unknown op {shown!r}: use subscribe or unsubscribe")

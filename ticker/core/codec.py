"""Bytes <-> ticks, and the frames the server sends.

Rule: encode each tick once (`encode_tick`), then build frames by joining the encoded pieces;
nothing here formats a tick per client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import orjson

from ticker.core.errors import InvalidTick
from ticker.core.ticks import Tick, make_tick

MAX_MESSAGE_BYTES = 4096


def decode_tick(data: bytes) -> Tick:
    """Parse one Pub/Sub message body; raise `InvalidTick` with a reason a human can act on."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidTick(f"message too large: {len(data)} bytes")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidTick(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidTick(f"expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in ("symbol", "price", "seq", "ts") if k not in obj]
    if missing:
        raise InvalidTick(f"missing field(s): {', '.join(missing)}")
    return make_tick(
        obj["symbol"],
        obj["price"],
        obj["seq"],
        obj["ts"],
        **{k: v for k, v in obj.items() if k not in ("symbol", "price", "seq", "ts")},
    )


def encode_tick(tick: Tick) -> str:
    """Return the tick's canonical JSON text, to be computed once per tick and shared."""
    return orjson.dumps(tick.as_dict()).decode()


def tick_to_bytes(tick: Tick) -> bytes:
    """Return the Pub/Sub message body for a tick."""
    return orjson.dumps(tick.as_dict())


def ticks_frame(encoded: Iterable[str]) -> str:
    """Assemble a `ticks` frame from already-encoded ticks."""
    return '{"type":"ticks","ticks":[' + ",".join(encoded) + "]}"


def subscribed_frame(symbols: Iterable[str], recovered: bool, max_rate: float | None = None) -> str:
    """The reply to every subscribe; `max_rate` only when a rate is in force (the clamped one)."""
    reply: dict[str, object] = {"type": "subscribed", "symbols": list(symbols)}
    reply["recovered"] = recovered
    if max_rate is not None:
        reply["max_rate"] = max_rate
    return orjson.dumps(reply).decode()


def unsubscribed_frame(symbols: Iterable[str]) -> str:
    """The reply to every unsubscribe (an addition to the contract)."""
    return orjson.dumps({"type": "unsubscribed", "symbols": list(symbols)}).decode()


def error_frame(code: str, message: str) -> str:
    """An error frame; the message is data, never markup: JSON-escaped, `<>&` as \\u escapes.

    Messages may quote a bounded piece of client input; the escapes keep it inert even if a
    careless reader pastes the raw frame into HTML.
    """
    text = orjson.dumps({"type": "error", "code": code, "message": message}).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def reconnect_frame(reason: str) -> str:
    """Sent before the server closes a connection on purpose."""
    return orjson.dumps({"type": "reconnect", "reason": reason}).decode()


def resync_frame(symbols: Iterable[str]) -> str:
    """Some ticks of `symbols` will never arrive: what follows for them is a fresh snapshot.

    Sent on a seq gap at ingest and on a resume that history no longer covers (an addition).
    """
    return orjson.dumps({"type": "resync", "symbols": list(symbols)}).decode()


def frame(kind: str, payload: Mapping[str, object]) -> str:
    """Any other server frame, e.g. heartbeats: `{"type": kind, **payload}`."""
    return orjson.dumps({"type": kind, **payload}).decode()

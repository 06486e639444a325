"""Opaque, self-contained resume cursors for `/sse` (event ids) and `/poll`.

A cursor is `base64url(compact JSON {"SYMBOL": seq, ...}) "." base64url(HMAC-SHA256 tag[:12])`.
It carries everything a resume needs, so any instance of the deployment can serve it.

Rules:
- The tag protects integrity against corruption and casual tampering, not secrecy: the payload is
  readable by anyone, and the default key is derived from public deployment names. Every instance
  of one deployment must use the same key (`Settings.cursor_key`).
- Anything malformed, tampered, oversized, negative, non-integer or out of range raises
  `ClientError("bad_cursor")`; nothing here echoes the client's cursor back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

import orjson

from ticker.core.errors import ClientError, InvalidTick
from ticker.core.ticks import MAX_SEQ, normalise_symbol

TAG_BYTES = 12
MAX_CURSOR_CHARS = 16 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:TAG_BYTES]


def encode_cursor(positions: Mapping[str, int], key: bytes) -> str:
    """Return the cursor for `positions` (symbol -> last seq the client has)."""
    payload = orjson.dumps(dict(sorted(positions.items())))
    return f"{_b64(payload)}.{_b64(_tag(key, payload))}"


def decode_cursor(cursor: str, key: bytes, max_symbols: int) -> dict[str, int]:
    """Return the positions in `cursor`; raise `ClientError("bad_cursor")` unless it is intact."""
    if not cursor or len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
        raise ClientError("bad_cursor", "cursor is empty, too long or not ASCII")
    body, dot, tag = cursor.partition(".")
    try:
        payload, given = _unb64(body), _unb64(tag)
    except (binascii.Error, ValueError):
        raise ClientError("bad_cursor", "cursor is not base64url") from None
    if not dot or not hmac.compare_digest(given, _tag(key, payload)):
        raise ClientError("bad_cursor", "cursor was altered or comes from another deployment")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ClientError("bad_cursor", "cursor payload is not JSON") from None
    return _positions(obj, max_symbols)


def _positions(obj: object, max_symbols: int) -> dict[str, int]:
    if not isinstance(obj, dict):
        raise ClientError("bad_cursor", "cursor payload must be an object")
    if len(obj) > max_symbols:
        raise ClientError("bad_cursor", f"cursor holds more than {max_symbols} symbols")
    out: dict[str, int] = {}
    for raw, seq in obj.items():
        try:
            symbol = normalise_symbol(raw)
        except InvalidTick:
            raise ClientError("bad_cursor", "cursor holds an invalid symbol") from None
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
            raise ClientError("bad_cursor", "cursor seqs must be integers in 0..2^63-1")
        out[symbol] = seq
    return out

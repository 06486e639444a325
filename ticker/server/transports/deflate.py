"""Bounded permessage-deflate for Hypercorn's WebSockets: compression bombs cannot inflate memory.

Hypercorn 0.18 always offers wsproto's `PerMessageDeflate`, whose inbound path inflates every
received chunk without an output bound: one 64 KiB read can become ~64 MiB before Hypercorn's own
`websocket_max_message_size` check runs. There is no setting for this, so `install()` swaps the
class Hypercorn instantiates (`hypercorn.protocol.ws_stream.PerMessageDeflate`) for a subclass that
inflates at most `max_message_bytes + 1` bytes per message and drops the rest of an oversized
message. The app then sees a message one byte over the limit and closes it with 1009.

Rules:
- Process-wide (Hypercorn runs one app per worker process); the last `install()` sets the bound.
- Off unless configured (`TICKER_WS_DEFLATE=1`): browsers always offer permessage-deflate and
  Hypercorn would accept it, at about +45 % CPU per frame and ~150 KB per connection (issue 5's
  profile: deflating outbound frames was half the server's time). Declined, frames go out plain.
- When on, outbound compression is unchanged: browsers that offer deflate get compressed frames.
- Relies on wsproto 1.x private attributes (`_decompressor`, `_inbound_*`) and on Hypercorn
  offering `ws_stream.PerMessageDeflate`, listed by name in `EXPECTED`; the S9 test pins the
  behaviour. When one changed shape, `install()` declines deflate even if enabled (plain frames
  are always correct), `ticker.server.fastpaths` logs why at start, and
  `tests/service/test_fast_paths.py` fails naming the internal.
"""

from __future__ import annotations

import zlib

import hypercorn.protocol.ws_stream as ws_stream
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol

from ticker.server.transports.internals import Expect, params, problems, source

SYNC_TAIL = b"\x00\x00\xff\xff"
EXPECTED = (
    Expect(
        "hypercorn.protocol.ws_stream.PerMessageDeflate (the extension Hypercorn offers)",
        lambda: "[PerMessageDeflate()]" in source(ws_stream),
    ),
    Expect(
        "wsproto.extensions.PerMessageDeflate._decompressor, ._inbound_compressed, "
        "._inbound_is_compressible",
        lambda: all(
            hasattr(PerMessageDeflate(), name)
            for name in ("_decompressor", "_inbound_compressed", "_inbound_is_compressible")
        ),
    ),
    Expect(
        "wsproto.extensions.PerMessageDeflate.accept, .frame_inbound_payload_data, "
        ".frame_inbound_complete",
        lambda: (
            params(PerMessageDeflate.accept) == ["self", "offer"]
            and params(PerMessageDeflate.frame_inbound_payload_data) == ["self", "proto", "data"]
            and params(PerMessageDeflate.frame_inbound_complete) == ["self", "proto", "fin"]
        ),
    ),
)


class BoundedPerMessageDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate with a per-message bound on inflated bytes."""

    max_message_bytes = 16 * 1024

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._inflated = 0
        self._overflow = False

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        if self._overflow:
            return b""
        assert self._decompressor is not None
        room = self.max_message_bytes + 1 - self._inflated
        try:
            out = self._decompressor.decompress(data, room)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._decompressor.unconsumed_tail or self._inflated > self.max_message_bytes:
            self._overflow = True  # the message is too big: the rest is dropped unread
        return out

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        return self._inflate(bytes(data))

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not fin:
            return None
        if not self._inbound_is_compressible or not self._inbound_compressed:
            self._inbound_compressed = None
            return None
        out = self._inflate(SYNC_TAIL)
        if isinstance(out, bytes) and not self._overflow:
            assert self._decompressor is not None
            out += self._decompressor.flush()
        takeover_off = (
            self.server_no_context_takeover if proto.client else self.client_no_context_takeover
        )
        if takeover_off or self._overflow:
            self._decompressor = None  # after an overflow the shared context is unusable
        self._inbound_compressed = None
        self._inflated, self._overflow = 0, False
        return out


class DeclinedPerMessageDeflate(BoundedPerMessageDeflate):
    """Answers every permessage-deflate offer with "no": the extension is never enabled."""

    def accept(self, offer: str) -> None:
        return None


def shape_problems() -> list[str]:
    """The internals in `EXPECTED` whose shape is not the one the bounded extension expects."""
    return problems(EXPECTED)


def install(max_message_bytes: int, *, enabled: bool = False) -> None:
    """Make Hypercorn decline deflate, or (`enabled`) negotiate the bounded extension.

    Enabled, it inflates at most `max_message_bytes` + 1 bytes per message; with unexpected
    internals it declines instead.
    """
    BoundedPerMessageDeflate.max_message_bytes = max_message_bytes
    bounded = enabled and not shape_problems()
    chosen = BoundedPerMessageDeflate if bounded else DeclinedPerMessageDeflate
    ws_stream.PerMessageDeflate = chosen  # type: ignore[attr-defined]


def mode() -> str:
    """What Hypercorn negotiates now: `bounded`, `declined`, or `unbounded` (not installed)."""
    current = ws_stream.PerMessageDeflate  # type: ignore[attr-defined]
    if current is BoundedPerMessageDeflate:
        return "bounded"
    return "declined" if current is DeclinedPerMessageDeflate else "unbounded"

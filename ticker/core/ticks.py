"""The tick: one price event, as published on Pub/Sub and sent to clients.

Rule: a `Tick` is always valid; build one through `make_tick` (or the codec) to get the checks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated

import msgspec

from ticker.core.errors import InvalidTick

SYMBOL_RE = re.compile(r"[A-Z0-9.\-]{1,15}")
_SYMBOL_MATCH = SYMBOL_RE.fullmatch
OPTIONAL_FIELDS = ("volume", "bid", "ask", "open")
MAX_SEQ = 2**63 - 1
# A plausible `ts` (epoch ms): from 2000-01-01 to 2100-01-01 UTC. 0, negative or far-future
# values (2**62) are producer bugs or hostile; they are refused, never forwarded to clients.
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 4_102_444_800_000


Symbol = Annotated[str, msgspec.Meta(pattern=rf"^{SYMBOL_RE.pattern}\Z")]  # the same rule
Price = Annotated[float, msgspec.Meta(gt=0.0)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
Stamp = Annotated[int, msgspec.Meta(ge=MIN_TS_MS, le=MAX_TS_MS)]
# int64: a larger integer takes the general path, where orjson reads it as it always did (an
# int up to 2**64 - 1, a float beyond) instead of keeping an arbitrary-size int.
Whole = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class Tick(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """A validated price event. `seq` grows by exactly 1 per symbol; `ts` is epoch milliseconds.

    A msgspec `Struct`: immutable, built in C, untracked by the GC (only atoms inside), and the
    codec's fast path decodes a packed message straight into these, checking the constraints
    above (the same rules as `build_tick`, which stays the path that names a problem); the
    optional fields are None when absent and left out of the encoding. Constructing one does
    not validate: go through `make_tick` or the codec.
    """

    symbol: Symbol
    price: Price
    seq: Seq
    ts: Stamp
    volume: Whole | float | None = None  # any number: an integer stays an integer
    bid: Whole | float | None = None
    ask: Whole | float | None = None
    open: Whole | float | None = None

    @property
    def extra(self) -> dict[str, float]:
        """The optional fields present (volume, bid, ask, open)."""
        return {key: value for key in OPTIONAL_FIELDS if (value := getattr(self, key)) is not None}

    def as_dict(self) -> dict[str, object]:
        """Return the contract's JSON object for this tick."""
        return {
            "symbol": self.symbol,
            "price": self.price,
            "seq": self.seq,
            "ts": self.ts,
            **self.extra,
        }


def normalise_symbol(raw: object) -> str:
    """Return the upper-case symbol, or raise `InvalidTick` naming what is wrong with it.

    Clients may send lower case; the contract allows 1-15 characters of A-Z 0-9 . -
    """
    if not isinstance(raw, str):
        raise InvalidTick(f"symbol must be a string, got {type(raw).__name__}")
    symbol = raw.strip().upper()
    if not SYMBOL_RE.fullmatch(symbol):
        shown = symbol[:20] + ("..." if len(symbol) > 20 else "")
        raise InvalidTick(f"invalid symbol {shown!r}: use 1-15 characters of A-Z 0-9 . -")
    return symbol


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTick(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidTick(f"{name} must be finite")
    return number


def _keep(name: str, value: object) -> float:
    """An optional numeric field, validated; integers (e.g. volume) stay integers."""
    kind = type(value)
    if (kind is float and -math.inf < value < math.inf) or kind is int:  # type: ignore[operator]
        return value  # type: ignore[return-value]
    number = _number(name, value)
    return value if isinstance(value, int) else number


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTick(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= value <= MAX_SEQ:
        raise InvalidTick(f"{name} out of range: {value}")
    return value


def _timestamp(value: object) -> int:
    ts = _integer("ts", value)
    if not MIN_TS_MS <= ts <= MAX_TS_MS:
        raise InvalidTick(f"ts out of range: {ts} (epoch ms between 2000 and 2100 expected)")
    return ts


def make_tick(symbol: object, price: object, seq: object, ts: object, **extra: object) -> Tick:
    """Validate the fields of a price event and return a `Tick`.

    Unknown extra fields are dropped; the optional numeric ones (volume, bid, ask, open) are kept.
    """
    return build_tick(symbol, price, seq, ts, extra)


def build_tick(
    symbol: object, price: object, seq: object, ts: object, extra: Mapping[str, object]
) -> Tick:
    """`make_tick` with the extra fields as a mapping (the decoder's path: no kwargs to build).

    Every tick of the feed passes here, so the common case (what orjson hands over: an already
    upper-case str, a float price, int seq/ts) is checked inline; anything else takes the slow
    path, which applies the same rules and names the problem.
    """
    if type(symbol) is not str or not _SYMBOL_MATCH(symbol):
        symbol = normalise_symbol(symbol)
    if type(price) is not float or not 0.0 < price < math.inf:
        price = _number("price", price)
        if price <= 0:
            raise InvalidTick(f"price must be positive, got {price}")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        seq = _integer("seq", seq)
    if type(ts) is not int or not MIN_TS_MS <= ts <= MAX_TS_MS:
        ts = _timestamp(ts)
    get = extra.get
    volume, bid, ask, opened = get("volume"), get("bid"), get("ask"), get("open")
    return Tick(
        symbol,
        price,
        seq,
        ts,
        None if volume is None else _keep("volume", volume),
        None if bid is None else _keep("bid", bid),
        None if ask is None else _keep("ask", ask),
        None if opened is None else _keep("open", opened),
    )

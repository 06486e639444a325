from __future__ import annotations

import orjson
import pytest

from ticker.core.codec import (
    decode_tick,
    encode_tick,
    error_frame,
    frame,
    subscribed_frame,
    tick_to_bytes,
    ticks_frame,
)
from ticker.core.errors import InvalidTick
from ticker.core.ticks import make_tick, normalise_symbol


def test_symbols_are_normalised_to_upper_case():
    assert normalise_symbol(" brk.b ") == "BRK.B"
    assert normalise_symbol("rds-a") == "RDS-A"


@pytest.mark.parametrize("bad", ["", "A" * 16, "AA PL", "../etc", "ÄPL", "<script>", 5, None])
def test_invalid_symbols_are_rejected_with_a_reason(bad):
    with pytest.raises(InvalidTick, match="symbol"):
        normalise_symbol(bad)


def test_a_tick_round_trips_through_the_wire_format():
    tick = make_tick("aapl", 189.23, 1042, 1764089400123, volume=300, bid=189.2, junk="x")
    data = tick_to_bytes(tick)
    assert orjson.loads(data) == {
        "symbol": "AAPL",
        "price": 189.23,
        "seq": 1042,
        "ts": 1764089400123,
        "volume": 300,
        "bid": 189.2,
    }
    assert decode_tick(data) == tick


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"symbol": "AAPL", "price": 1}', "missing field"),
        (b'{"symbol": "AAPL", "price": "1", "seq": 1, "ts": 1}', "price must be a number"),
        (b'{"symbol": "AAPL", "price": -1, "seq": 1, "ts": 1}', "positive"),
        (b'{"symbol": "AAPL", "price": 1, "seq": 1.5, "ts": 1}', "seq must be an integer"),
        (b'{"symbol": "AAPL", "price": 1, "seq": true, "ts": 1}', "seq must be an integer"),
        (b'{"symbol": "AAPL", "price": 1, "seq": -3, "ts": 1}', "out of range"),
        (b'{"symbol": "AAPL", "price": 1, "seq": 1, "ts": 1, "bid": "x"}', "bid"),
        (b'{"symbol": "A A", "price": 1, "seq": 1, "ts": 1}', "invalid symbol"),
        (b"\xff\xfe", "not JSON"),
        (b"{" + b" " * 5000 + b"}", "too large"),
    ],
)
def test_malformed_messages_raise_invalid_tick_with_a_reason(data, reason):
    with pytest.raises(InvalidTick, match=reason):
        decode_tick(data)


def test_non_finite_prices_are_rejected():
    with pytest.raises(InvalidTick, match="finite"):
        make_tick("AAPL", float("nan"), 1, 1)


def test_frames_are_assembled_from_encoded_ticks():
    a = encode_tick(make_tick("AAPL", 1.5, 1, 10))
    b = encode_tick(make_tick("MSFT", 2.5, 7, 11))
    frame = orjson.loads(ticks_frame([a, b]))
    assert frame["type"] == "ticks"
    assert [t["symbol"] for t in frame["ticks"]] == ["AAPL", "MSFT"]
    assert orjson.loads(subscribed_frame(["AAPL"], True)) == {
        "type": "subscribed",
        "symbols": ["AAPL"],
        "recovered": True,
    }
    assert orjson.loads(subscribed_frame(["AAPL"], False, 2.0))["max_rate"] == 2.0


def test_other_frames_carry_their_type_and_payload():
    assert orjson.loads(frame("heartbeat", {"ts": 5})) == {"type": "heartbeat", "ts": 5}


def test_error_frames_escape_client_text():
    text = error_frame("bad_symbol", 'invalid symbol "<script>"')
    assert "<script>" in orjson.loads(text)["message"]
    assert orjson.loads(text)["code"] == "bad_symbol"

from __future__ import annotations

import orjson
import pytest

from ticker.core.codec import (
    MAX_PACKED_BYTES,
    decode_message,
    decode_tick,
    encode_tick,
    error_frame,
    frame,
    packed_to_bytes,
    subscribed_frame,
    tick_to_bytes,
    ticks_frame,
)
from ticker.core.errors import InvalidTick
from ticker.core.ticks import MAX_TS_MS, MIN_TS_MS, make_tick, normalise_symbol

TS = 1_764_089_400_123


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
        (
            b'{"symbol": "AAPL", "price": "1", "seq": 1, "ts": 1764089400123}',
            "price must be a number",
        ),
        (b'{"symbol": "AAPL", "price": -1, "seq": 1, "ts": 1764089400123}', "positive"),
        (
            b'{"symbol": "AAPL", "price": 1, "seq": 1.5, "ts": 1764089400123}',
            "seq must be an integer",
        ),
        (
            b'{"symbol": "AAPL", "price": 1, "seq": true, "ts": 1764089400123}',
            "seq must be an integer",
        ),
        (b'{"symbol": "AAPL", "price": 1, "seq": -3, "ts": 1764089400123}', "out of range"),
        (b'{"symbol": "AAPL", "price": 1, "seq": 1, "ts": 1764089400123, "bid": "x"}', "bid"),
        (b'{"symbol": "A A", "price": 1, "seq": 1, "ts": 1764089400123}', "invalid symbol"),
        (b"\xff\xfe", "not JSON"),
        (b"{" + b" " * 5000 + b"}", "too large"),
    ],
)
def test_malformed_messages_raise_invalid_tick_with_a_reason(data, reason):
    with pytest.raises(InvalidTick, match=reason):
        decode_tick(data)


@pytest.mark.parametrize("ts", [0, -1, 2**62, MIN_TS_MS - 1, MAX_TS_MS + 1])
def test_implausible_timestamps_are_refused(ts):
    with pytest.raises(InvalidTick, match="ts out of range"):
        make_tick("AAPL", 1.0, 1, ts)


def test_plausible_timestamp_bounds_are_accepted():
    assert make_tick("AAPL", 1.0, 1, MIN_TS_MS).ts == MIN_TS_MS
    assert make_tick("AAPL", 1.0, 1, MAX_TS_MS).ts == MAX_TS_MS


def _t(symbol="AAPL", seq=1, **kw):
    return {"symbol": symbol, "price": 1.5, "seq": seq, "ts": TS, **kw}


def test_a_packed_message_is_validated_tick_by_tick():
    data = orjson.dumps(
        {"ticks": [_t(seq=1), _t(seq=2, price="x"), "junk", _t("msft", 3), {"symbol": "A"}]}
    )
    decoded = decode_message(data)
    assert decoded.packed
    assert not decoded.whole
    assert [(t.symbol, t.seq) for t in decoded.ticks] == [("AAPL", 1), ("MSFT", 3)]
    assert [p.split(":")[0] for p in decoded.problems] == ["ticks[1]", "ticks[2]", "ticks[4]"]
    assert "price must be a number" in decoded.problems[0]
    assert "missing field(s): price, seq, ts" in decoded.problems[2]


def test_a_single_tick_message_decodes_to_one_tick():
    decoded = decode_message(orjson.dumps(_t(volume=300)))
    assert not decoded.packed
    assert decoded.problems == []
    assert decoded.ticks[0].extra == {"volume": 300}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"ticks": 5}', "must be a list"),
        (b"[]", "JSON object"),
        (b"{" + b" " * MAX_PACKED_BYTES + b"}", "too large"),
        (b'{"symbol": "A", "price": 1}', "missing"),
    ],
)
def test_unusable_messages_are_refused_as_a_whole(data, reason):
    decoded = decode_message(data)
    assert decoded.whole
    assert decoded.ticks == []
    assert reason in decoded.problems[0]


def test_decode_tick_refuses_a_packed_message():
    with pytest.raises(InvalidTick, match="packed"):
        decode_tick(orjson.dumps({"ticks": [_t()]}))


def test_packed_bytes_round_trip():
    ticks = [make_tick("AAPL", 1.5, 1, TS), make_tick("MSFT", 2.5, 7, TS, bid=2.4)]
    assert decode_message(packed_to_bytes(ticks)).ticks == ticks


def test_non_finite_prices_are_rejected():
    with pytest.raises(InvalidTick, match="finite"):
        make_tick("AAPL", float("nan"), 1, TS)


def test_frames_are_assembled_from_encoded_ticks():
    a = encode_tick(make_tick("AAPL", 1.5, 1, TS))
    b = encode_tick(make_tick("MSFT", 2.5, 7, TS))
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


def test_number_subclasses_take_the_general_path_and_pass():
    class Count(int):
        pass

    tick = make_tick("AAPL", 1.0, Count(5), Count(MIN_TS_MS), volume=Count(300), bid=0.5)
    assert (tick.seq, tick.ts, tick.extra) == (5, MIN_TS_MS, {"volume": 300, "bid": 0.5})


def test_as_dict_is_the_wire_object_and_the_fast_path_decodes_the_same_tick():
    tick = make_tick("MSFT", 420.5, 7, TS, volume=300, bid=420.4, ask=420.6, open=400)
    assert tick.as_dict() == orjson.loads(tick_to_bytes(tick))
    assert list(tick.as_dict()) == ["symbol", "price", "seq", "ts", "volume", "bid", "ask", "open"]
    packed = decode_message(packed_to_bytes([tick, tick]))  # msgspec's path: all valid
    assert packed.ticks == [tick, tick]
    assert packed.ticks[0].extra == {"volume": 300, "bid": 420.4, "ask": 420.6, "open": 400}
    assert isinstance(packed.ticks[0].volume, int)  # an integer stays an integer


def test_both_decode_paths_read_a_huge_integer_the_same_way():
    """Beyond 64 bits orjson reads an integer as a float; msgspec's path must not keep it int."""
    body = (
        b'{"ticks":[{"symbol":"AAPL","price":1.5,"seq":1,"ts":%d,"volume":%d},'
        b'{"symbol":"AAPL","price":1.5,"seq":2,"ts":%d,"volume":300}]}' % (TS, 10**29, TS)
    )
    decoded = decode_message(body)
    assert [t.volume for t in decoded.ticks] == [1e29, 300]
    assert isinstance(decoded.ticks[0].volume, float)
    assert encode_tick(decoded.ticks[0]) == encode_tick(make_tick("AAPL", 1.5, 1, TS, volume=1e29))

from __future__ import annotations

import pytest

from ticker.core.client_ops import (
    MAX_RATE,
    MIN_RATE,
    Ping,
    Subscribe,
    Unsubscribe,
    clamp_rate,
    max_rate_value,
    parse_client_frame,
)
from ticker.core.errors import ClientError


def test_subscribe_normalises_symbols_and_keeps_since_for_them():
    op = parse_client_frame(
        '{"op": "subscribe", "symbols": ["aapl", "MSFT", "aapl"], "since": {"aapl": 7, "X": 1}}',
        max_symbols=10,
    )
    assert op == Subscribe(("AAPL", "MSFT"), {"AAPL": 7})


def test_subscribe_without_since_starts_from_the_snapshot():
    op = parse_client_frame('{"op": "subscribe", "symbols": ["nvda"]}', max_symbols=10)
    assert op == Subscribe(("NVDA",), {})
    assert parse_client_frame(b'{"op":"subscribe","symbols":["A"],"since":null}', 10) == Subscribe(
        ("A",), {}
    )


def test_unsubscribe_and_ping_parse():
    assert parse_client_frame('{"op":"unsubscribe","symbols":["msft"]}', 10) == Unsubscribe(
        ("MSFT",)
    )
    assert parse_client_frame('{"op":"ping","nonce":3}', 10) == Ping(3)
    assert parse_client_frame('{"op":"ping","nonce":true}', 10) == Ping(None)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, "bad_frame"),
        ("", "bad_frame"),
        (b"", "bad_frame"),
        ("{not json", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        ("[1]", "bad_frame"),
        ('"subscribe"', "bad_frame"),
        ('{"op": "dance"}', "unknown_op"),
        ('{"op": 5}', "unknown_op"),
        ('{"symbols": ["A"]}', "unknown_op"),
        ('{"op": "subscribe"}', "bad_frame"),
        ('{"op": "subscribe", "symbols": []}', "bad_frame"),
        ('{"op": "subscribe", "symbols": "AAPL"}', "bad_frame"),
        ('{"op": "subscribe", "symbols": ["../x"]}', "bad_symbol"),
        ('{"op": "subscribe", "symbols": [1]}', "bad_symbol"),
        ('{"op": "subscribe", "symbols": ["A","B","C","D"]}', "too_many_symbols"),
        ('{"op": "subscribe", "symbols": ["A"], "since": [1]}', "bad_since"),
        ('{"op": "subscribe", "symbols": ["A"], "since": {"A": -1}}', "bad_since"),
        ('{"op": "subscribe", "symbols": ["A"], "since": {"A": "1"}}', "bad_since"),
        ('{"op": "subscribe", "symbols": ["A"], "since": {"<b>": 1}}', "bad_symbol"),
    ],
)
def test_bad_frames_raise_client_errors_with_the_contract_code(text, code):
    with pytest.raises(ClientError) as info:
        parse_client_frame(text, max_symbols=3)
    assert info.value.code == code
    assert info.value.message


def test_unknown_op_names_are_truncated_in_the_message():
    with pytest.raises(ClientError) as info:
        parse_client_frame('{"op": "' + "x" * 500 + '"}', 3)
    assert len(info.value.message) < 100


def test_subscribe_carries_a_max_rate_when_given():
    op = parse_client_frame('{"op":"subscribe","symbols":["AAPL"],"max_rate":2}', 10)
    assert isinstance(op, Subscribe)
    assert op.max_rate == 2.0
    op = parse_client_frame('{"op":"subscribe","symbols":["AAPL"],"max_rate":null}', 10)
    assert isinstance(op, Subscribe)
    assert op.max_rate is None


@pytest.mark.parametrize("value", ["0", "-1", '"2"', "true", "[1]", "{}", "0.001", "1e7"])
def test_a_bad_max_rate_is_refused_with_its_own_code(value):
    with pytest.raises(ClientError) as err:
        parse_client_frame(f'{{"op":"subscribe","symbols":["AAPL"],"max_rate":{value}}}', 10)
    assert err.value.code == "bad_max_rate"
    assert "max_rate" in err.value.message


def test_a_rate_above_the_ceiling_is_clamped_to_it():
    assert clamp_rate(500.0, 50.0) == 50.0
    assert clamp_rate(2.0, 50.0) == 2.0
    assert clamp_rate(None, 50.0) is None
    assert max_rate_value(MIN_RATE) == MIN_RATE
    assert max_rate_value(MAX_RATE) == MAX_RATE

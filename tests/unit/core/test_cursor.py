from __future__ import annotations

import base64

import orjson
import pytest

from ticker.core.cursor import MAX_CURSOR_CHARS, _tag, decode_cursor, encode_cursor
from ticker.core.errors import ClientError

KEY = b"test-key"


def _forge(payload: object, key: bytes = KEY) -> str:
    """A correctly tagged cursor around any payload (what a key holder could build)."""
    raw = orjson.dumps(payload)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    return f"{b64(raw)}.{b64(_tag(key, raw))}"


def test_cursor_round_trips_and_is_url_safe():
    cursor = encode_cursor({"MSFT": 7, "AAPL": 2**63 - 1}, KEY)
    assert decode_cursor(cursor, KEY, max_symbols=10) == {"AAPL": 2**63 - 1, "MSFT": 7}
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_cursor_of_nothing_is_valid():
    assert decode_cursor(encode_cursor({}, KEY), KEY, 10) == {}


def test_cursor_from_another_deployment_is_refused():
    with pytest.raises(ClientError) as err:
        decode_cursor(encode_cursor({"AAPL": 1}, b"other"), KEY, 10)
    assert err.value.code == "bad_cursor"


def _flip(cursor: str, index: int) -> str:
    c = cursor[index]
    return cursor[:index] + ("A" if c != "A" else "B") + cursor[index + 1 :]


@pytest.mark.parametrize("index", [0, 3, -1, -4])
def test_tampered_cursor_is_refused(index):
    cursor = encode_cursor({"AAPL": 41}, KEY)
    with pytest.raises(ClientError) as err:
        decode_cursor(_flip(cursor, index), KEY, 10)
    assert err.value.code == "bad_cursor"


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "nodot",
        ".",
        "!!!.???",
        "a.b",
        "é.é",
        "x" * (MAX_CURSOR_CHARS + 1),
        encode_cursor({"AAPL": 1}, KEY) + ".extra",
    ],
)
def test_malformed_cursor_is_refused(cursor):
    with pytest.raises(ClientError) as err:
        decode_cursor(cursor, KEY, 10)
    assert err.value.code == "bad_cursor"


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        "AAPL",
        {"AAPL": -1},
        {"AAPL": 2**63},
        {"AAPL": 1.5},
        {"AAPL": "7"},
        {"AAPL": True},
        {"AAPL": None},
        {"../etc": 1},
        {"A" * 16: 1},
        {f"S{i}": i for i in range(11)},
    ],
)
def test_correctly_tagged_but_invalid_payload_is_refused(payload):
    with pytest.raises(ClientError) as err:
        decode_cursor(_forge(payload), KEY, max_symbols=10)
    assert err.value.code == "bad_cursor"


def test_non_json_payload_with_valid_tag_is_refused():
    raw = b"{not json"
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    with pytest.raises(ClientError):
        decode_cursor(f"{b64(raw)}.{b64(_tag(KEY, raw))}", KEY, 10)


def test_lower_case_symbols_in_a_cursor_are_normalised():
    assert decode_cursor(_forge({"aapl": 3}), KEY, 10) == {"AAPL": 3}

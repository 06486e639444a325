from __future__ import annotations

import pytest

from ticker.core.admission import (
    AddressSlots,
    client_address,
    origin_allowed,
    parse_allowlist,
    parse_networks,
    parse_origin,
    serving_origin,
)
from ticker.core.errors import ConfigError

SERVING = serving_origin("ws", "app.example.com:8080")


def test_serving_origin_maps_websocket_schemes():
    assert serving_origin("wss", "App.Example.com") == ("https", "app.example.com", 443)
    assert serving_origin("http", "127.0.0.1:8080") == ("http", "127.0.0.1", 8080)
    assert serving_origin("ws", "bad host") is None


@pytest.mark.parametrize(
    "origin",
    [
        "http://app.example.com:8080",
        "HTTP://APP.EXAMPLE.COM:8080",
    ],
)
def test_the_serving_host_is_allowed_by_default(origin):
    assert origin_allowed(origin, frozenset(), SERVING)


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "null",
        "",
        "https://evil.example",
        "http://app.example.com",  # other port
        "https://app.example.com:8080",  # other scheme
        "http://app.example.com:8081",
        "http://app.example.com.evil.com:8080",  # suffix trick
        "http://evil.com/app.example.com:8080",
        "http://user@app.example.com:8080",
        "http://app.example.com:8080/",
        "http://app.example.com:8080 http://x",
        "file://app.example.com",
        "http://app.example.com:99999",
    ],
)
def test_anything_else_is_refused(origin):
    assert not origin_allowed(origin, frozenset(), SERVING)


def test_an_allowlist_replaces_the_default_and_matches_exactly():
    allowed = parse_allowlist(["https://ticker.example", "http://localhost:3000"])
    assert origin_allowed("https://ticker.example:443", allowed, SERVING)
    assert origin_allowed("http://localhost:3000", allowed, SERVING)
    assert not origin_allowed("http://app.example.com:8080", allowed, SERVING)
    assert not origin_allowed("https://sub.ticker.example", allowed, SERVING)


def test_a_bad_allowlist_entry_is_a_config_error():
    with pytest.raises(ConfigError, match="TICKER_ALLOWED_ORIGINS"):
        parse_allowlist(["*.example.com"])


def test_parse_origin_drops_default_ports():
    assert parse_origin("http://a.b:80") == parse_origin("http://a.b")
    assert parse_origin("https://[::1]:8443") == ("https", "[::1]", 8443)


PROXIES = parse_networks(["169.254.0.0/16", "10.0.0.0/8", "fd00::/8"], "TICKER_TRUSTED_PROXIES")


def test_forwarded_for_is_ignored_unless_configured():
    assert client_address("10.0.0.1", "6.6.6.6", 0, PROXIES) == "10.0.0.1"
    assert client_address("10.0.0.1", None, 2, PROXIES) == "10.0.0.1"


def test_forwarded_for_takes_the_entry_the_trusted_proxy_added():
    # the client spoofs a first entry; App Engine's front end appends "<client>, <lb>"
    forwarded = "1.1.1.1, 203.0.113.9, 130.211.0.1"
    assert client_address("169.254.1.1", forwarded, 2, PROXIES) == "203.0.113.9"
    assert client_address("169.254.1.1", "203.0.113.9", 2, PROXIES) == "169.254.1.1"
    assert client_address("fd00::7", forwarded, 2, PROXIES) == "203.0.113.9"


def test_forwarded_for_from_a_peer_outside_the_trusted_proxies_is_ignored():
    # a client that reaches the server directly cannot choose its own address
    assert client_address("198.51.100.4", "6.6.6.6, 7.7.7.7", 2, PROXIES) == "198.51.100.4"
    assert client_address("127.0.0.1", "6.6.6.6, 7.7.7.7", 2, PROXIES) == "127.0.0.1"
    assert client_address("?", "6.6.6.6, 7.7.7.7", 2, PROXIES) == "?"
    assert client_address("10.0.0.1", "6.6.6.6, 7.7.7.7", 2, ()) == "10.0.0.1"


def test_trusted_proxy_networks_parse_or_name_the_variable():
    assert [str(n) for n in parse_networks(["10.1.2.3/8", " 127.0.0.1 "], "V")] == [
        "10.0.0.0/8",
        "127.0.0.1/32",
    ]
    with pytest.raises(ConfigError, match="TICKER_TRUSTED_PROXIES: 'nope'"):
        parse_networks(["nope"], "TICKER_TRUSTED_PROXIES")


def test_address_slots_cap_and_release():
    slots = AddressSlots(limit=2)
    assert slots.acquire("a")
    assert slots.acquire("a")
    assert not slots.acquire("a")
    assert slots.acquire("b")
    slots.release("a")
    assert slots.held("a") == 1
    assert slots.acquire("a")
    slots.release("a")
    slots.release("a")
    assert slots.held("a") == 0

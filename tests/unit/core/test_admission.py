from __future__ import annotations

import pytest

from ticker.core.admission import (
    SWEEP_EVERY,
    AddressPolicy,
    Arrival,
    OriginPolicy,
    ProxyTrust,
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


def _from(origin: str | None, **facts: str) -> Arrival:
    return Arrival(
        **{"peer": "127.0.0.1", "scheme": "ws", "host": "app.example.com:8080", **facts},
        origin=origin,
    )


def test_no_origin_is_a_native_client_unless_origins_are_required():
    policy = OriginPolicy()
    assert policy.classify(_from(None), require=False) == "native"
    assert policy.classify(_from(None), require=True) is None
    own = "http://app.example.com:8080"
    assert policy.classify(_from(own), require=True) == "browser"
    assert policy.classify(_from("https://evil.example"), require=False) is None
    assert policy.classify(_from("null"), require=False) is None


def test_the_policy_reads_the_allowlist_and_names_a_bad_entry():
    policy = OriginPolicy.configure(["https://ticker.example"])
    assert policy.allows(_from("https://ticker.example"))
    assert not policy.allows(_from("http://app.example.com:8080"))  # replaced, not added to
    assert not policy.allows(_from(None))
    with pytest.raises(ConfigError, match="TICKER_ALLOWED_ORIGINS"):
        OriginPolicy.configure(["ticker.example"])


@pytest.mark.parametrize(
    ("peer", "hops", "proto", "scheme"),
    [
        ("10.0.0.1", 2, "https", "https"),  # the trusted front end says the client used TLS
        ("10.0.0.1", 2, "http", "http"),
        ("10.0.0.1", 2, "gopher", "ws"),  # nonsense is ignored
        ("10.0.0.1", 2, None, "ws"),
        ("198.51.100.4", 2, "https", "ws"),  # a client reaching us directly cannot choose
        ("10.0.0.1", 0, "https", "ws"),  # no proxy configured: nobody's word counts
    ],
)
def test_forwarded_proto_counts_only_from_a_trusted_proxy(peer, hops, proto, scheme):
    trust = ProxyTrust(hops, PROXIES)
    arrival = Arrival(peer, "ws", "app.example.com", "https://app.example.com", None, proto)
    assert trust.scheme(arrival) == scheme
    policy = OriginPolicy(frozenset(), trust)
    assert policy.allows(arrival) is (scheme == "https")  # the page's origin needs its scheme


def test_the_policy_reads_the_client_address_like_client_address():
    trust = ProxyTrust(2, PROXIES)
    arrival = Arrival("169.254.1.1", "http", "h", None, "1.1.1.1, 203.0.113.9, 130.211.0.1")
    assert trust.address(arrival) == "203.0.113.9"
    assert ProxyTrust().address(arrival) == "169.254.1.1"


def test_the_ceiling_caps_open_streams_per_address_and_release_gives_them_back(clock):
    policy = AddressPolicy(ceiling=2, rate=1.0, burst=100, clock=clock)
    assert policy.acquire("a") is None
    assert policy.acquire("a") is None
    refused = policy.acquire("a")
    assert refused is not None
    assert refused.code == "too_many_connections"
    assert policy.acquire("b") is None
    policy.release("a")
    assert policy.held("a") == 1
    assert policy.acquire("a") is None
    for _ in range(3):
        policy.release("a")  # an extra release never goes below zero
    assert policy.held("a") == 0
    policy.release("never-seen")
    assert policy.held("never-seen") == 0


def test_new_streams_spend_a_token_and_refill_at_the_rate(clock):
    policy = AddressPolicy(ceiling=1000, rate=2.0, burst=3, clock=clock)
    assert [policy.acquire("office") for _ in range(3)] == [None, None, None]
    refused = policy.acquire("office")
    assert refused is not None
    assert refused.code == "connecting_too_fast"
    assert refused.retry_after == pytest.approx(0.5)
    assert policy.acquire("office", charge=False) is None  # a continuation costs no token
    assert policy.acquire("other") is None  # buckets are per address
    clock.advance(0.5)
    assert policy.acquire("office") is None
    assert policy.acquire("office") is not None
    clock.advance(100)  # the bucket refills up to the burst, no further
    assert [policy.acquire("office") for _ in range(4)][-1] is not None


def test_an_office_of_hundreds_behind_one_address_gets_in_with_the_defaults(clock):
    from ticker.server.settings import Settings

    s = Settings()
    policy = AddressPolicy(s.max_connections_per_address, s.connect_rate, s.connect_burst, clock)
    assert all(policy.acquire("nat") is None for _ in range(300))  # everyone at 9:00
    assert policy.acquire("nat") is not None  # a flood beyond the burst is slowed down
    clock.advance(10)
    assert all(policy.acquire("nat") is None for _ in range(200))  # 20/s sustained
    assert policy.held("nat") == 500


def test_idle_addresses_with_a_full_bucket_are_forgotten(clock):
    policy = AddressPolicy(ceiling=10, rate=1.0, burst=2, clock=clock)
    policy.acquire("kept")  # still open: remembered
    for i in range(SWEEP_EVERY - 2):
        policy.acquire(f"visitor-{i}")
        policy.release(f"visitor-{i}")
    assert policy.tracked() == SWEEP_EVERY - 1
    clock.advance(5)
    policy.acquire("late")  # the sweep runs on this acquire
    assert policy.tracked() == 2
    assert policy.held("kept") == 1

"""Who may open a stream: the Origin allowlist, the client address, connections per address.

Rules: pure (no Quart, no I/O). Origins compare exactly after normalisation (lower-case scheme and
host, default ports dropped): no wildcard, substring or suffix matching, and `null` or anything
that is not `http(s)://host[:port]` never matches. X-Forwarded-For is read only when the operator
says how many proxies append to it *and* the socket peer is one of the trusted proxies: a client
that reaches the server directly could otherwise pick its own address (and with it slip past the
per-address caps and the login throttle, or lock another address out).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable

from ticker.core.errors import ConfigError

_ORIGIN = re.compile(r"(https?)://([a-z0-9.\-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?")
_DEFAULT_PORT = {"http": 80, "https": 443}
Origin = tuple[str, str, int]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_origin(raw: str) -> Origin | None:
    """`(scheme, host, port)` of a serialised origin, or None for `null` and anything malformed."""
    match = _ORIGIN.fullmatch(raw.strip().lower())
    if match is None:
        return None
    scheme, host, port = match.groups()
    number = int(port) if port else _DEFAULT_PORT[scheme]
    return (scheme, host, number) if 0 < number < 65536 else None


def parse_allowlist(entries: Iterable[str]) -> frozenset[Origin]:
    """Parse configured origins; raise `ConfigError` naming a bad entry."""
    out: set[Origin] = set()
    for entry in entries:
        origin = parse_origin(entry)
        if origin is None:
            raise ConfigError(f"TICKER_ALLOWED_ORIGINS: {entry!r} is not scheme://host[:port]")
        out.add(origin)
    return frozenset(out)


def serving_origin(scheme: str, host_header: str) -> Origin | None:
    """The origin of the page this server serves, from the request's scheme and Host header."""
    web_scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return parse_origin(f"{web_scheme}://{host_header}")


def origin_allowed(origin: str | None, allowed: frozenset[Origin], serving: Origin | None) -> bool:
    """Whether a request with `origin` may proceed; `allowed` empty means the serving host only.

    A missing Origin is refused here; callers decide whether missing is acceptable (plain HTTP
    GETs from same-origin pages and non-browser clients carry none; browsers' WebSockets always do).
    """
    if origin is None:
        return False
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    return parsed in allowed if allowed else parsed == serving


def parse_networks(entries: Iterable[str], variable: str) -> tuple[Network, ...]:
    """Parse `a.b.c.d/n` (or a bare address) entries; raise `ConfigError` naming `variable`."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{variable}: {entry!r} is not an IP network (a.b.c.d/n)") from None
    return tuple(out)


def trusted_peer(peer: str, trusted: tuple[Network, ...]) -> bool:
    """Whether the socket peer is one of the proxies whose forwarded headers we believe."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def client_address(
    peer: str, forwarded_for: str | None, proxy_hops: int, trusted: tuple[Network, ...]
) -> str:
    """The client's address: the peer, or (from a trusted proxy) the entry `proxy_hops` from the
    right of X-Forwarded-For."""
    if proxy_hops <= 0 or not forwarded_for or not trusted_peer(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    if len(hops) < proxy_hops:
        return peer
    return hops[-proxy_hops][:64]


class AddressSlots:
    """Open streams per client address, capped; release exactly once per granted acquire."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def acquire(self, address: str) -> bool:
        """Take a slot for `address`; False when it already holds `limit`."""
        if self._open[address] >= self.limit:
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        """Give a slot back."""
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]

    def held(self, address: str) -> int:
        """Slots `address` holds now."""
        return self._open.get(address, 0)

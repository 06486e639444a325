"""Who may come in: the one Origin policy, the client address, the per-address policy.

Rules: pure (no Quart, no I/O).
- One Origin rule for every browser-facing entry, the streams (`/ws`, `/sse`, `/poll`) and the
  admin area alike (`OriginPolicy`): a browser Origin must be on the exact allowlist
  (`TICKER_ALLOWED_ORIGINS`) or, when none is configured, be the serving origin. A configured
  list *replaces* the serving host instead of adding to it: the operator who names the origins
  gets exactly those, and a DNS-rebinding name that points at the server (its Host header then
  matches its Origin) gets nothing. What callers do without an Origin is theirs to say (streams:
  a native client; the admin stream: only with the Bearer token).
- Origins compare exactly after normalisation (lower-case scheme and host, default ports
  dropped): no wildcard, substring or suffix matching, and `null` or anything that is not
  `http(s)://host[:port]` never matches. The scheme counts: `http://host` is not `https://host`
  (a page injected over plain HTTP must not ride the HTTPS origin).
- Forwarded headers (`ProxyTrust`) are believed only when the operator says a proxy is in front
  (`TICKER_PROXY_HOPS` > 0) *and* the socket peer is one of `TICKER_TRUSTED_PROXIES`: a client
  that reaches the server directly could otherwise pick its own address (and with it slip past
  the per-address caps and the login throttle, or lock another address out) or its own scheme.
  `X-Forwarded-Proto` from such a proxy gives the serving scheme (TLS ends at the front end).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

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


ClientKind = Literal["browser", "native"]
RefusalCode = Literal["too_many_connections", "connecting_too_fast"]
SWEEP_EVERY = 1024  # acquires between two sweeps of idle addresses


@dataclass(frozen=True, slots=True)
class Arrival:
    """What a request says about where it comes from (headers as sent, `None` when absent)."""

    peer: str  # the socket peer's address
    scheme: str  # http, https, ws or wss, as the server saw the connection
    host: str  # the Host header
    origin: str | None = None
    forwarded_for: str | None = None
    forwarded_proto: str | None = None


@dataclass(frozen=True, slots=True)
class ProxyTrust:
    """Which forwarded headers to believe: a trusted proxy's, and only when one is in front."""

    proxy_hops: int = 0
    trusted: tuple[Network, ...] = ()

    def from_proxy(self, arrival: Arrival) -> bool:
        """Whether `arrival` came through a proxy whose forwarded headers count."""
        return self.proxy_hops > 0 and trusted_peer(arrival.peer, self.trusted)

    def address(self, arrival: Arrival) -> str:
        """The client's address (see `client_address`)."""
        return client_address(arrival.peer, arrival.forwarded_for, self.proxy_hops, self.trusted)

    def scheme(self, arrival: Arrival) -> str:
        """The client's scheme: a trusted proxy's `X-Forwarded-Proto`, else the socket's."""
        proto = arrival.forwarded_proto
        if proto in ("http", "https") and self.from_proxy(arrival):
            return proto
        return arrival.scheme


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """The Origin rule of every browser-facing entry: the streams and the admin area."""

    allowed: frozenset[Origin] = frozenset()  # empty: the serving origin only
    proxy: ProxyTrust = ProxyTrust()

    @classmethod
    def configure(
        cls, origins: Iterable[str], proxy_hops: int = 0, trusted: tuple[Network, ...] = ()
    ) -> OriginPolicy:
        """From the settings; raise `ConfigError` naming a bad `TICKER_ALLOWED_ORIGINS` entry."""
        return cls(parse_allowlist(origins), ProxyTrust(proxy_hops, trusted))

    def serving(self, arrival: Arrival) -> Origin | None:
        """The origin of the page this server serves to the client of `arrival`."""
        return serving_origin(self.proxy.scheme(arrival), arrival.host)

    def allows(self, arrival: Arrival) -> bool:
        """Whether `arrival` carries a browser Origin that may come in (a missing one: False)."""
        return origin_allowed(arrival.origin, self.allowed, self.serving(arrival))

    def classify(self, arrival: Arrival, *, require: bool) -> ClientKind | None:
        """`browser` (an allowed Origin), `native` (no Origin), or None: refuse (403).

        Why a missing Origin is accepted: browsers always send one on a WebSocket handshake and
        on cross-origin requests, so the allowlist alone stops cross-site hijacking; a client
        without one is not a browser and could forge any Origin anyway. `require`
        (TICKER_REQUIRE_ORIGIN) refuses it for deployments that want only browsers.
        """
        if arrival.origin is None:
            return None if require else "native"
        return "browser" if self.allows(arrival) else None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a new stream from an address is refused (429), and when trying again makes sense."""

    code: RefusalCode
    retry_after: float  # seconds


@dataclass(slots=True)
class _Address:
    open: int
    tokens: float
    last: float


class AddressPolicy:
    """Streams per client address: a ceiling on open ones, a token bucket on new ones.

    Rules: `acquire` grants or returns a `Refusal`; every grant is paired with exactly one
    `release`. A new stream costs a token (`charge=False` for a continuation, e.g. a long poll
    that carries a cursor); tokens refill at `rate` per second up to `burst`. Why this shape:
    one NAT address can be a whole office (hundreds of users, each maybe two tabs), so the
    concurrent ceiling must be high; what hurts a server is a flood of handshakes, so the rate
    of new streams is what is limited, with a burst that lets an office reconnect at once
    after a drain. Idle addresses with a full bucket are forgotten (bounded memory).
    """

    def __init__(self, ceiling: int, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.ceiling = ceiling
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._addresses: dict[str, _Address] = {}
        self._acquires = 0

    def acquire(self, address: str, *, charge: bool = True) -> Refusal | None:
        """Take a stream for `address`, or say why not (None: granted)."""
        now = self._clock()
        self._acquires += 1
        if self._acquires % SWEEP_EVERY == 0:
            self._sweep(now)
        state = self._addresses.get(address)
        if state is None:
            state = self._addresses[address] = _Address(0, self.burst, now)
        self._refill(state, now)
        if state.open >= self.ceiling:
            return Refusal("too_many_connections", 1.0)
        if charge:
            if state.tokens < 1.0:
                return Refusal("connecting_too_fast", (1.0 - state.tokens) / self.rate)
            state.tokens -= 1.0
        state.open += 1
        return None

    def release(self, address: str) -> None:
        """Give a stream back."""
        state = self._addresses.get(address)
        if state is not None and state.open > 0:
            state.open -= 1

    def held(self, address: str) -> int:
        """Streams `address` holds now."""
        state = self._addresses.get(address)
        return 0 if state is None else state.open

    def tracked(self) -> int:
        """Addresses remembered now (for tests and the bound on memory)."""
        return len(self._addresses)

    def _refill(self, state: _Address, now: float) -> None:
        elapsed = max(0.0, now - state.last)
        state.last = now
        state.tokens = min(self.burst, state.tokens + elapsed * self.rate)

    def _sweep(self, now: float) -> None:
        for address, state in list(self._addresses.items()):
            self._refill(state, now)
            if state.open == 0 and state.tokens >= self.burst:
                del self._addresses[address]

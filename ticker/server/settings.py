"""Configuration from the environment, read once by `create_app` and passed down.

Rule: nothing reads `os.environ` at import time; `Settings.from_env` takes the mapping it reads,
so tests pass plain dicts. Every bad value raises `ConfigError` naming the variable.
"""

from __future__ import annotations

import secrets
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from ticker.core.admission import Network, parse_networks
from ticker.core.client_ops import MAX_RATE, MIN_RATE
from ticker.core.errors import ConfigError, InvalidTick
from ticker.core.ticks import normalise_symbol

BrokerKind = Literal["pubsub", "memory"]
DEFAULT_SIM_SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "JPM", "V", "XOM")
# Peers whose X-Forwarded-For is believed by default: loopback, private and link-local networks,
# where a front end's proxy lives (on App Engine flex the in-VM proxy); never a public address.
DEFAULT_TRUSTED_PROXIES = (
    "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,fc00::/7,fe80::/10"
)


N = TypeVar("N", int, float)


def _bounded(env: Mapping[str, str], name: str, default: N, low: N, high: N) -> N:
    """`env[name]` parsed as the type of `default` and checked against [low, high]."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    kind = type(default)
    try:
        value = kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _symbols(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return tuple(dict.fromkeys(normalise_symbol(s) for s in raw.split(",") if s.strip()))
    except InvalidTick as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _cursor_key(env: Mapping[str, str]) -> bytes:
    """Every instance of one deployment must agree: an explicit key, else project + topic.

    The cursor tag is integrity against corruption and casual tampering, not secrecy: the default
    key is derivable by anyone who knows the project and topic names.
    """
    explicit = env.get("TICKER_CURSOR_KEY", "")
    if explicit:
        return explicit.encode()
    project = env.get("GOOGLE_CLOUD_PROJECT") or "ticker-local"
    return f"ticker-cursor:{project}:{env.get('TICKER_TOPIC') or 'prices'}".encode()


def _broker(env: Mapping[str, str]) -> BrokerKind:
    raw = env.get("TICKER_BROKER", "").strip().lower()
    if raw in ("pubsub", "memory"):
        return raw  # type: ignore[return-value]
    if raw:
        raise ConfigError(f"TICKER_BROKER must be 'pubsub' or 'memory', got {raw!r}")
    configured = env.get("PUBSUB_EMULATOR_HOST") or env.get("GOOGLE_CLOUD_PROJECT")
    return "pubsub" if configured else "memory"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service can be told from outside. Defaults suit a laptop."""

    project: str = "ticker-local"
    topic: str = "prices"
    broker: BrokerKind = "memory"
    instance_id: str = field(default_factory=lambda: socket.gethostname()[:40])
    boot_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    admin_token: str = ""
    admin_token_generated: bool = False
    max_connection_age: float = 3300.0  # App Engine cuts WebSockets at 1 h; rotate before that
    max_connection_age_jitter: float = 120.0
    sim_symbols: tuple[str, ...] = DEFAULT_SIM_SYMBOLS
    sim_rate: float = 20.0
    max_symbols_per_client: int = 200
    max_frame_bytes: int = 16 * 1024
    outbox_limit: int = 512
    history_size: int = 2048
    history_max_age: float = 300.0
    flush_interval: float = 0.0  # least time between two frames to one client (batching floor)
    flush_max_interval: float = 0.04  # the most the adaptive interval grows to under load
    gc_threshold: int = 20_000  # GC's first threshold while serving (0: Python's default, 700)
    switch_interval_ms: float = 1.0  # the GIL's switch interval while serving (0: Python's, 5 ms)
    allowed_origins: tuple[str, ...] = ()  # empty: the serving host only
    ws_deflate: bool = False  # permessage-deflate costs ~45 % CPU per frame: off unless asked
    # Transport hardening and fallbacks (issue 4).
    cursor_key: bytes = b""  # HMAC key of SSE/poll cursors; derived from project+topic when unset
    heartbeat_interval: float = 15.0  # server heartbeat; a silent peer is closed after 2x + 5 s
    poll_timeout: float = 25.0  # how long /poll holds a request with nothing new
    sse_retry_ms: int = 1000  # the `retry:` hint of /sse
    rate_per_minute: float = 100.0  # client frames per connection, sustained
    rate_burst: int = 20  # client frames allowed at once above the sustained rate
    # Per client address (issue 9: one NAT address can be a whole trading floor): a high ceiling
    # on open streams, and a token bucket on new ones that stops a flood of handshakes.
    max_connections_per_address: int = 1000
    connect_rate: float = 20.0  # new streams per second per address, sustained
    connect_burst: int = 300  # new streams per address at once (an office reconnecting)
    require_origin: bool = False  # 1: refuse /ws handshakes without Origin (browsers only)
    max_rate: float = 50.0  # ceiling of a client's max_rate (ticks/s per symbol); above: clamped
    # Proxies in front of us that append to X-Forwarded-For (0: ignore the header). App Engine's
    # front end appends "<client-ip>, <lb-ip>", so the client is the 2nd entry from the right.
    proxy_hops: int = 0
    # ...and only when the socket peer is in one of these networks (a direct client cannot
    # choose its own address).
    trusted_proxies: tuple[Network, ...] = ()
    header_timeout: float = 10.0  # seconds for a request's headers to arrive complete
    presence_interval: float = 2.0  # seconds between this instance's stats heartbeats
    # Ingest (issue 8, issue 13): reorder window, symbol and history caps, readiness from lag.
    reorder_ms: float = 40.0  # how long a tick ahead of a missing seq waits for the hole
    max_tracked_symbols: int = 20_000  # symbols held (book, history, order state) at most
    history_max_ticks: int = 1_000_000  # ticks in history over all symbols at most
    max_ingest_lag: float = 5.0  # readiness 503 while messages arrive later than this (s)
    presence_misses: int = 3  # heartbeats a peer may miss before it leaves the cluster view
    presence_budget: float = 20.0  # most heartbeats/s one instance reads (beats slow past it)

    @property
    def control_topic(self) -> str:
        """The Pub/Sub topic instances use to tell each other their stats (the dashboard)."""
        return f"{self.topic}-control"

    @property
    def subscription_prefix(self) -> str:
        """`ticker-<instance>-<boot>`: a fresh subscription name per process start."""
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.instance_id.lower())
        return f"ticker-{safe}-{self.boot_id}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the contract's variables; raise `ConfigError` naming any bad one."""
        token = env.get("TICKER_ADMIN_TOKEN", "")
        instance = env.get("GAE_INSTANCE") or env.get("TICKER_INSTANCE_ID") or socket.gethostname()
        origins = tuple(
            o.strip() for o in env.get("TICKER_ALLOWED_ORIGINS", "").split(",") if o.strip()
        )
        return cls(
            project=env.get("GOOGLE_CLOUD_PROJECT") or "ticker-local",
            topic=env.get("TICKER_TOPIC") or "prices",
            broker=_broker(env),
            instance_id=instance[:40],
            admin_token=token or secrets.token_urlsafe(24),
            admin_token_generated=not token,
            max_connection_age=_bounded(env, "TICKER_MAX_CONNECTION_AGE", 3300.0, 1.0, 3590.0),
            sim_symbols=_symbols(env, "TICKER_SIM_SYMBOLS", DEFAULT_SIM_SYMBOLS),
            sim_rate=_bounded(env, "TICKER_SIM_RATE", 20.0, 0.0, 1_000_000.0),
            max_symbols_per_client=_bounded(env, "TICKER_MAX_SYMBOLS", 200, 1, 10_000),
            max_frame_bytes=_bounded(env, "TICKER_MAX_FRAME_BYTES", 16 * 1024, 256, 1024 * 1024),
            outbox_limit=_bounded(env, "TICKER_OUTBOX_LIMIT", 512, 8, 1_000_000),
            history_size=_bounded(env, "TICKER_HISTORY_SIZE", 2048, 16, 1_000_000),
            history_max_age=_bounded(env, "TICKER_HISTORY_MAX_AGE", 300.0, 1.0, 86_400.0),
            flush_interval=_bounded(env, "TICKER_FLUSH_INTERVAL", 0.0, 0.0, 1.0),
            flush_max_interval=_bounded(env, "TICKER_FLUSH_MAX_INTERVAL", 0.04, 0.0, 1.0),
            gc_threshold=_bounded(env, "TICKER_GC_THRESHOLD", 20_000, 0, 10_000_000),
            switch_interval_ms=_bounded(env, "TICKER_SWITCH_INTERVAL_MS", 1.0, 0.0, 100.0),
            allowed_origins=origins,
            ws_deflate=_bounded(env, "TICKER_WS_DEFLATE", 0, 0, 1) == 1,
            presence_interval=_bounded(env, "TICKER_PRESENCE_INTERVAL", 2.0, 0.1, 60.0),
            reorder_ms=_bounded(env, "TICKER_REORDER_MS", 40.0, 0.0, 5_000.0),
            max_tracked_symbols=_bounded(
                env, "TICKER_MAX_TRACKED_SYMBOLS", 20_000, 100, 10_000_000
            ),
            history_max_ticks=_bounded(
                env, "TICKER_HISTORY_MAX_TICKS", 1_000_000, 1_000, 100_000_000
            ),
            max_ingest_lag=_bounded(env, "TICKER_MAX_INGEST_LAG", 5.0, 0.5, 600.0),
            presence_misses=_bounded(env, "TICKER_PRESENCE_MISSES", 3, 1, 100),
            presence_budget=_bounded(env, "TICKER_PRESENCE_BUDGET", 20.0, 0.1, 10_000.0),
            cursor_key=_cursor_key(env),
            heartbeat_interval=_bounded(env, "TICKER_HEARTBEAT_INTERVAL", 15.0, 0.05, 300.0),
            poll_timeout=_bounded(env, "TICKER_POLL_TIMEOUT", 25.0, 0.05, 55.0),
            sse_retry_ms=_bounded(env, "TICKER_SSE_RETRY_MS", 1000, 100, 60_000),
            rate_per_minute=_bounded(env, "TICKER_RATE_PER_MINUTE", 100.0, 1.0, 1e9),
            rate_burst=_bounded(env, "TICKER_RATE_BURST", 20, 1, 1_000_000),
            max_connections_per_address=_bounded(
                env, "TICKER_MAX_CONNECTIONS_PER_ADDRESS", 1000, 1, 1_000_000
            ),
            connect_rate=_bounded(env, "TICKER_CONNECT_RATE", 20.0, 0.01, 1e6),
            connect_burst=_bounded(env, "TICKER_CONNECT_BURST", 300, 1, 1_000_000),
            require_origin=_bounded(env, "TICKER_REQUIRE_ORIGIN", 0, 0, 1) == 1,
            max_rate=_bounded(env, "TICKER_MAX_RATE", 50.0, MIN_RATE, MAX_RATE),
            proxy_hops=_bounded(
                env, "TICKER_PROXY_HOPS", 2 if env.get("GAE_INSTANCE") else 0, 0, 8
            ),
            trusted_proxies=parse_networks(
                (env.get("TICKER_TRUSTED_PROXIES") or DEFAULT_TRUSTED_PROXIES).split(","),
                "TICKER_TRUSTED_PROXIES",
            ),
            header_timeout=_bounded(env, "TICKER_HEADER_TIMEOUT", 10.0, 0.5, 600.0),
        )

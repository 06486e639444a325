"""Admin authentication: one shared token, a signed login cookie, throttling, an Origin rule.

Rules:
- The only secret is `TICKER_ADMIN_TOKEN`. Comparisons are constant-time (`hmac.compare_digest`).
- The login cookie is `<expiry>.<HMAC-SHA256(key, expiry)>` with the key derived from the token, so
  any instance sharing the token accepts it, nothing is stored server-side, and changing the
  token revokes every cookie. The cookie is HttpOnly, SameSite=Strict, Secure over https.
- A client address that fails `max_failures` times within `window` seconds is refused (429)
  until its oldest failure leaves the window. Only wrong credentials count, not missing ones.
- A browser stream must come from an allowed Origin (the serving host, or the allow-list):
  cookies are ambient, so without this check any site could open the admin stream (CSWSH).
No Quart here: the blueprint adapts requests to these calls, and unit tests use them directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import OrderedDict, deque
from collections.abc import Callable
from enum import Enum

COOKIE_NAME = "ticker_admin"
COOKIE_TTL = 12 * 3600.0


class Verdict(Enum):
    """The outcome of checking a request's credentials."""

    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"
    THROTTLED = "throttled"


class LoginThrottle:
    """Failed attempts per client address in a sliding window, bounded in addresses tracked."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        max_failures: int = 5,
        window: float = 60.0,
        max_addresses: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again; 0 when it may try now."""
        failures = self._recent(address)
        if len(failures) < self.max_failures:
            return 0.0
        return max(0.0, failures[0] + self.window - self._clock())

    def failed(self, address: str) -> None:
        """Count one wrong credential from `address`."""
        failures = self._recent(address)
        failures.append(self._clock())
        self._failures[address] = failures
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        """Forget `address`'s failures after a good credential."""
        self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.get(address)
        if failures is None:
            return deque(maxlen=self.max_failures)
        horizon = self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures


class AdminAuth:
    """Checks the admin token (Bearer or cookie) and issues login cookies."""

    def __init__(
        self,
        token: str,
        clock: Callable[[], float],
        *,
        cookie_ttl: float = COOKIE_TTL,
        throttle: LoginThrottle | None = None,
    ) -> None:
        if not token:
            raise ValueError("the admin area never runs without a token")
        self._token = token.encode()
        self._key = hmac.new(self._token, b"ticker-admin-cookie-v1", hashlib.sha256).digest()
        self._clock = clock
        self.cookie_ttl = cookie_ttl
        self.throttle = throttle or LoginThrottle(clock)

    def token_matches(self, candidate: str) -> bool:
        """Constant-time comparison with the configured token."""
        return hmac.compare_digest(candidate.encode(), self._token)

    def issue_cookie(self) -> str:
        """A fresh login cookie value, valid for `cookie_ttl` seconds."""
        expiry = int(self._clock() + self.cookie_ttl)
        return f"{expiry}.{self._sign(expiry)}"

    def cookie_expiry(self, value: str | None) -> float | None:
        """The expiry of a valid, unexpired cookie; None for anything else."""
        if not value or "." not in value:
            return None
        raw_expiry, signature = value.split(".", 1)
        if not raw_expiry.isdigit() or len(raw_expiry) > 12:
            return None
        expiry = int(raw_expiry)
        if not hmac.compare_digest(signature.encode(), self._sign(expiry).encode()):
            return None
        return float(expiry) if expiry > self._clock() else None

    def check(self, authorization: str | None, cookie: str | None, address: str) -> Verdict:
        """Judge a request: a Bearer header wins over the cookie; wrong ones count as failures."""
        if self.throttle.retry_after(address) > 0:
            return Verdict.THROTTLED
        bearer = _bearer(authorization)
        if bearer is None and not cookie:
            return Verdict.MISSING
        good = (
            self.token_matches(bearer) if bearer is not None else bool(self.cookie_expiry(cookie))
        )
        if good:
            return Verdict.OK
        self.throttle.failed(address)
        return Verdict.INVALID

    def login(self, candidate: str, address: str) -> Verdict:
        """Judge a login form submission (throttled like any other credential)."""
        if self.throttle.retry_after(address) > 0:
            return Verdict.THROTTLED
        if not candidate:
            return Verdict.MISSING
        if self.token_matches(candidate):
            self.throttle.succeeded(address)
            return Verdict.OK
        self.throttle.failed(address)
        return Verdict.INVALID

    def _sign(self, expiry: int) -> str:
        digest = hmac.new(self._key, f"admin|{expiry}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def origin_allowed(origin: str | None, host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a browser `Origin` may use the admin area: exact matches only, no wildcards.

    `host` is the request's Host header; the scheme may differ from ours because TLS ends at the
    load balancer. A missing Origin is the caller's decision (non-browser clients send none).
    """
    if not origin or origin == "null":
        return False
    if origin in allowed:
        return True
    return origin in (f"https://{host}", f"http://{host}")

"""Admin authentication: one shared token, a signed login cookie, throttling.

Rules:
- The only secret is `TICKER_ADMIN_TOKEN`. Comparisons are constant-time (`hmac.compare_digest`).
- The login cookie is `<expiry>.<session id>.<HMAC-SHA256(key, expiry|session id)>` with the key
  derived from the token, so any instance sharing the token accepts it and changing the token
  revokes every cookie. The cookie is HttpOnly, SameSite=Strict, Secure over https.
- Logout revokes the cookie's session id (`RevokedSessions`, in memory, bounded, each entry kept
  until the cookie would expire anyway): replaying the cookie gets 401 and an open admin stream
  using it closes within a second. Other instances hear of it through a signed revocation notice
  on the control topic (`revocation_notice` / `accept_revocation`: the HMAC key is the cookie
  key, so only a holder of the token can revoke, and the notice does not contain the cookie).
  Scope: instances running at the logout; one started later, or one that missed the message
  (the topic is at-most-once for a restarted subscriber), accepts the cookie until its expiry.
  Rotating `TICKER_ADMIN_TOKEN` revokes every cookie everywhere.
- A right credential always passes, even from a throttled address: one attacker behind a shared
  address (a NAT, an office proxy) must not lock the operator out. Wrong credentials are what is
  throttled: an address that fails `max_failures` times within `window` seconds gets 429 for
  further wrong attempts until its oldest failure leaves the window. So the throttle bounds the
  noise of guessing, not its success: that rests on the token's entropy (a generated token has 192
  bits; choose a long random one). Only wrong credentials count, not missing ones.
- A browser stream must come from an allowed Origin: cookies are ambient, so without this check
  any site could open the admin stream (CSWSH). The rule is the streams' own
  (`ticker.core.admission.OriginPolicy`), applied by the blueprint.
No Quart here: the blueprint adapts requests to these calls, and unit tests use them directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from enum import Enum

COOKIE_NAME = "ticker_admin"
COOKIE_TTL = 12 * 3600.0
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_REVOKED = 10_000  # logouts remembered per instance (each until its cookie's expiry)


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


class RevokedSessions:
    """Session ids logged out here, each kept until its cookie's expiry; bounded in size."""

    def __init__(self, clock: Callable[[], float], limit: int = MAX_REVOKED) -> None:
        self._clock = clock
        self.limit = limit
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def revoke(self, session_id: str, expiry: float) -> None:
        """Remember `session_id` until `expiry`; past `limit` the oldest entry is forgotten."""
        self._prune()
        self._expiry[session_id] = expiry
        while len(self._expiry) > self.limit:
            self._expiry.popitem(last=False)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._expiry

    def __len__(self) -> int:
        self._prune()
        return len(self._expiry)

    def _prune(self) -> None:
        now = self._clock()
        for session_id in [s for s, expiry in self._expiry.items() if expiry <= now]:
            del self._expiry[session_id]


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
        self.revoked = RevokedSessions(clock)

    def token_matches(self, candidate: str) -> bool:
        """Constant-time comparison with the configured token."""
        return hmac.compare_digest(candidate.encode(), self._token)

    def issue_cookie(self) -> str:
        """A fresh login cookie value (its own session id), valid for `cookie_ttl` seconds."""
        expiry = int(self._clock() + self.cookie_ttl)
        session_id = secrets.token_urlsafe(12)
        return f"{expiry}.{session_id}.{self._sign(expiry, session_id)}"

    def cookie_expiry(self, value: str | None) -> float | None:
        """The expiry of a valid, unexpired, not revoked cookie; None for anything else."""
        parsed = self._parse(value)
        if parsed is None or parsed[1] in self.revoked:
            return None
        return parsed[0]

    def revoke(self, value: str | None) -> bool:
        """Log a cookie out on this instance; False when it was not a valid cookie anyway."""
        parsed = self._parse(value)
        if parsed is None:
            return False
        self.revoked.revoke(parsed[1], parsed[0])
        return True

    def revocation_notice(self, value: str | None) -> dict[str, object] | None:
        """What peers need to revoke this cookie too: its session id and expiry, signed."""
        parsed = self._parse(value)
        if parsed is None:
            return None
        expiry, session_id = int(parsed[0]), parsed[1]
        return {
            "sid": session_id,
            "expiry": expiry,
            "sig": self._sign(expiry, session_id, "revoke"),
        }

    def accept_revocation(self, notice: object) -> bool:
        """Revoke a session a peer logged out, if its notice is well-formed and well-signed."""
        if not isinstance(notice, dict):
            return False
        session_id, expiry, sig = notice.get("sid"), notice.get("expiry"), notice.get("sig")
        if not (
            isinstance(session_id, str)
            and _SESSION_ID.fullmatch(session_id)
            and isinstance(expiry, int)
            and isinstance(sig, str)
            and hmac.compare_digest(sig.encode(), self._sign(expiry, session_id, "revoke").encode())
        ):
            return False
        if expiry > self._clock():
            self.revoked.revoke(session_id, float(expiry))
        return True

    def check(self, authorization: str | None, cookie: str | None, address: str) -> Verdict:
        """Judge a request: a Bearer header wins over the cookie; wrong ones count as failures."""
        bearer = _bearer(authorization)
        if bearer is None and not cookie:
            return Verdict.MISSING
        good = (
            self.token_matches(bearer) if bearer is not None else bool(self.cookie_expiry(cookie))
        )
        return Verdict.OK if good else self._failed(address)

    def login(self, candidate: str, address: str) -> Verdict:
        """Judge a login form submission (a right token passes; wrong ones are throttled)."""
        if not candidate:
            return Verdict.MISSING
        if self.token_matches(candidate):
            self.throttle.succeeded(address)
            return Verdict.OK
        return self._failed(address)

    def _failed(self, address: str) -> Verdict:
        if self.throttle.retry_after(address) > 0:
            return Verdict.THROTTLED  # not counted again: the window ends as announced
        self.throttle.failed(address)
        return Verdict.INVALID

    def _parse(self, value: str | None) -> tuple[float, str] | None:
        """(expiry, session id) of a well-signed, unexpired cookie."""
        if not value or value.count(".") != 2:
            return None
        raw_expiry, session_id, signature = value.split(".")
        well_formed = raw_expiry.isdigit() and len(raw_expiry) <= 12
        if not well_formed or not _SESSION_ID.fullmatch(session_id):
            return None
        expiry = int(raw_expiry)
        if not hmac.compare_digest(signature.encode(), self._sign(expiry, session_id).encode()):
            return None
        return (float(expiry), session_id) if expiry > self._clock() else None

    def _sign(self, expiry: int, session_id: str, purpose: str = "admin") -> str:
        """HMAC of `purpose|expiry|session id`: a revocation notice's signature (purpose
        "revoke") is never a valid cookie signature, and session ids have no `|`."""
        message = f"{purpose}|{expiry}|{session_id}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()

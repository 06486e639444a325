"""Admission for every stream (`/ws`, `/sse`, `/poll`): Origin allowlist, per-address policy.

Rules:
- Decide before anything is accepted: a refused WebSocket gets an HTTP 403/429 instead of `101`.
- A browser Origin must pass the one `OriginPolicy` (the exact allowlist, else the serving
  origin; the admin area uses this guard's policy too); no Origin is a native client (app,
  script), accepted unless `require_origin` (TICKER_REQUIRE_ORIGIN=1, WebSocket handshakes only:
  the page's own same-origin SSE/poll GETs carry no Origin). Opened streams are counted by kind.
- Per address: a ceiling on open streams and a token bucket on new ones (`AddressPolicy`);
  429 answers carry `Retry-After`.
- Every granted `admit` is paired with exactly one `release` (callers use `try/finally`).
- Logs are structured and name the peer, the origin (truncated) and the reason; never a token,
  cookie, query string or message body.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from quart import Quart, Response
from quart.blueprints import BlueprintSetupState
from quart.wrappers.base import BaseRequestWebsocket

from ticker.core.admission import AddressPolicy, Arrival, ClientKind, OriginPolicy
from ticker.core.codec import error_frame
from ticker.server.settings import Settings
from ticker.server.transports import runtime_of
from ticker.stream.hub import HubCounters

log = structlog.get_logger("ticker.server.transports")
_KEY = "ticker_guard"
SHOWN_ORIGIN_CHARS = 120


@dataclass(frozen=True, slots=True)
class Admission:
    """A granted stream: who it is for, as logged."""

    address: str
    origin: str | None
    client: ClientKind


class Guard:
    """One per app: the Origin policy, the per-address policy and what they decided."""

    def __init__(self, settings: Settings, counters: HubCounters) -> None:
        self.origins = OriginPolicy.configure(
            settings.allowed_origins, settings.proxy_hops, settings.trusted_proxies
        )
        self.policy = AddressPolicy(
            settings.max_connections_per_address,
            settings.connect_rate,
            settings.connect_burst,
            time.monotonic,
        )
        self.counters = counters

    def admit(
        self,
        conn: BaseRequestWebsocket,
        transport: str,
        *,
        require_origin: bool = False,
        charge: bool = True,
    ) -> Admission | Response:
        """Grant a stream, or return the 403/429 response to send instead (and log why).

        `charge=False`: a continuation (a long poll with a cursor) spends no new-stream token.
        """
        headers = conn.headers
        arrival = arrival_of(conn)
        origin = arrival.origin
        address = self.origins.proxy.address(arrival)
        kind = self.origins.classify(arrival, require=require_origin)
        if kind is None:
            code = "origin_required" if origin is None else "origin_not_allowed"
            return self._refuse(transport, address, origin, 403, code)
        refusal = self.policy.acquire(address, charge=charge)
        if refusal is not None:
            response = self._refuse(transport, address, origin, 429, refusal.code)
            response.headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after)))
            return response
        if kind == "native" and (headers.get("Sec-Fetch-Site") or headers.get("Sec-Fetch-Mode")):
            kind = "browser"  # a same-origin page GET (SSE/poll fallback): a browser, no Origin
        self.counters.opened[(transport, kind)] += 1
        return Admission(address, origin, kind)

    def release(self, admission: Admission) -> None:
        """Give back the stream of a finished admission."""
        self.policy.release(admission.address)

    def _refuse(
        self, transport: str, address: str, origin: str | None, status: int, code: str
    ) -> Response:
        self.counters.refused[(transport, code)] += 1
        log.warning(
            "stream_rejected",
            transport=transport,
            peer=address,
            origin=shown(origin),
            reason=code,
            status=status,
        )
        message = {
            "origin_not_allowed": "this origin may not open streams here",
            "origin_required": "this server accepts only browsers: send an Origin header",
            "too_many_connections": "too many open streams from this address",
            "connecting_too_fast": "too many new streams from this address: retry later",
        }[code]
        return Response(error_frame(code, message), status, content_type="application/json")


def arrival_of(conn: BaseRequestWebsocket) -> Arrival:
    """What a Quart request or WebSocket says about where it comes from."""
    headers = conn.headers
    return Arrival(
        peer=conn.remote_addr or "?",
        scheme=conn.scheme,
        host=headers.get("Host", ""),
        origin=headers.get("Origin"),
        forwarded_for=headers.get("X-Forwarded-For"),
        forwarded_proto=headers.get("X-Forwarded-Proto"),
    )


def shown(origin: str | None) -> str | None:
    """An origin fit for a log line (attacker-controlled: bounded)."""
    return None if origin is None else origin[:SHOWN_ORIGIN_CHARS]


def guard_of(app: Quart) -> Guard:
    """The app's guard, made on first use from the runtime's settings."""
    guard = app.extensions.get(_KEY)
    if guard is None:
        runtime = runtime_of(app)
        guard = app.extensions[_KEY] = Guard(runtime.settings, runtime.hub.counters)
    assert isinstance(guard, Guard)
    return guard


def setup_guard(state: BlueprintSetupState) -> None:
    """`record_once` hook: build the guard at registration, so a bad allowlist fails at startup."""
    guard_of(app_of(state))


def app_of(state: BlueprintSetupState) -> Quart:
    """The Quart app a blueprint is being registered on."""
    assert isinstance(state.app, Quart)
    return state.app

"""Admission for every stream (`/ws`, `/sse`, `/poll`): Origin allowlist, connections per address.

Rules:
- Decide before anything is accepted: a refused WebSocket gets an HTTP 403/429 instead of `101`.
- Every granted `admit` is paired with exactly one `release` (callers use `try/finally`).
- Logs are structured and name the peer, the origin (truncated) and the reason; never a token,
  cookie, query string or message body.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from quart import Quart, Response
from quart.blueprints import BlueprintSetupState
from quart.wrappers.base import BaseRequestWebsocket

from ticker.core.admission import (
    AddressSlots,
    Origin,
    client_address,
    origin_allowed,
    parse_allowlist,
    serving_origin,
    trusted_peer,
)
from ticker.core.codec import error_frame
from ticker.settings import Settings
from ticker.transports import runtime_of

log = structlog.get_logger("ticker.transports")
_KEY = "ticker_guard"
SHOWN_ORIGIN_CHARS = 120


@dataclass(frozen=True, slots=True)
class Admission:
    """A granted stream: who it is for, as logged."""

    address: str
    origin: str | None


class Guard:
    """One per app: the parsed allowlist and the per-address connection slots."""

    def __init__(self, settings: Settings) -> None:
        self.allowed: frozenset[Origin] = parse_allowlist(settings.allowed_origins)
        self.slots = AddressSlots(settings.max_connections_per_address)
        self.proxy_hops = settings.proxy_hops
        self.trusted = settings.trusted_proxies

    def admit(
        self, conn: BaseRequestWebsocket, transport: str, *, origin_required: bool
    ) -> Admission | Response:
        """Grant a slot, or return the 403/429 response to send instead (and log why)."""
        headers = conn.headers
        origin = headers.get("Origin")
        peer = conn.remote_addr or "?"
        address = client_address(
            peer, headers.get("X-Forwarded-For"), self.proxy_hops, self.trusted
        )
        scheme = conn.scheme
        forwarded_proto = headers.get("X-Forwarded-Proto")
        from_proxy = self.proxy_hops > 0 and trusted_peer(peer, self.trusted)
        if from_proxy and forwarded_proto in ("http", "https"):
            scheme = forwarded_proto  # a trusted proxy's word
        serving = serving_origin(scheme, headers.get("Host", ""))
        if origin is None and not origin_required:
            pass  # same-origin GETs and non-browser clients send no Origin
        elif not origin_allowed(origin, self.allowed, serving):
            return self._refuse(transport, address, origin, 403, "origin_not_allowed")
        if not self.slots.acquire(address):
            return self._refuse(transport, address, origin, 429, "too_many_connections")
        return Admission(address, origin)

    def release(self, admission: Admission) -> None:
        """Give back the slot of a finished stream."""
        self.slots.release(admission.address)

    def _refuse(
        self, transport: str, address: str, origin: str | None, status: int, code: str
    ) -> Response:
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
            "too_many_connections": "too many open streams from this address",
        }[code]
        return Response(error_frame(code, message), status, content_type="application/json")


def shown(origin: str | None) -> str | None:
    """An origin fit for a log line (attacker-controlled: bounded)."""
    return None if origin is None else origin[:SHOWN_ORIGIN_CHARS]


def guard_of(app: Quart) -> Guard:
    """The app's guard, made on first use from the runtime's settings."""
    guard = app.extensions.get(_KEY)
    if guard is None:
        guard = app.extensions[_KEY] = Guard(runtime_of(app).settings)
    assert isinstance(guard, Guard)
    return guard


def setup_guard(state: BlueprintSetupState) -> None:
    """`record_once` hook: build the guard at registration, so a bad allowlist fails at startup."""
    guard_of(app_of(state))


def app_of(state: BlueprintSetupState) -> Quart:
    """The Quart app a blueprint is being registered on."""
    assert isinstance(state.app, Quart)
    return state.app

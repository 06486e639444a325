"""`/admin`: the dashboard page, its login, the stats API and the live stream.

Contract: CONTRACT.md, "Health and admin".

Rules:
- Every route but the login form checks the token first (Bearer header or login cookie, see
  `auth.py`). The API answers 401 JSON; the page redirects to the login form; throttled clients
  get 429 with Retry-After.
- `/admin/stream` is a WebSocket. It is authenticated and Origin-checked *before* `accept()`:
  a browser (it always sends Origin on WebSockets) must pass the streams' own `OriginPolicy`
  (`ticker.core.admission`: the exact allowlist, else the serving origin, scheme included); a
  client without Origin must present the Bearer token, since only cookies are sent ambiently.
- POST forms (login, logout) refuse an Origin the policy refuses: no login CSRF. Logout revokes
  the cookie server-side (see `auth.py` for the scope).
- Every failed credential is logged (`admin_auth_failed`: peer, path, reason), never the token
  or the cookie. The address throttled is the client's: X-Forwarded-For only from a trusted proxy.
- Pages are `no-store`, unframeable and script-only-from-self (CSP); data reaches the DOM through
  `textContent` in dashboard.js.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import structlog
from quart import Blueprint, Response, abort, jsonify, redirect, render_template, request, websocket
from quart.typing import ResponseReturnValue
from quart.wrappers import Request, Websocket

from dashboard.auth import COOKIE_NAME, AdminAuth, Verdict
from dashboard.presence import Presence
from dashboard.stats import ClusterStats
from ticker.core.admission import OriginPolicy
from ticker.server.transports.guard import arrival_of

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
CLOSE_POLICY = 1008
CLOSE_RESTART = 1012  # "service restart": the server is shutting down
log = structlog.get_logger("dashboard")


def make_blueprint(
    cluster: ClusterStats,
    presence: Presence,
    auth: AdminAuth,
    origins: OriginPolicy,
) -> Blueprint:
    """The admin blueprint, bound to one app's stats and auth (no module-level state)."""
    bp = Blueprint(
        "dashboard",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/admin/static",
    )

    def address(conn: Request | Websocket) -> str:
        """Who to throttle: behind App Engine's proxies, the client from X-Forwarded-For."""
        return origins.proxy.address(arrival_of(conn))

    def judged(result: Verdict, conn: Request | Websocket) -> Verdict:
        """`result`, logged when a credential was wrong or throttled (never the credential)."""
        if result in (Verdict.INVALID, Verdict.THROTTLED):
            log.warning(
                "admin_auth_failed", peer=address(conn), path=conn.path, reason=result.value
            )
        return result

    def verdict() -> Verdict:
        result = auth.check(
            request.headers.get("Authorization"), request.cookies.get(COOKIE_NAME), address(request)
        )
        return judged(result, request)

    def foreign_origin(conn: Request | Websocket) -> bool:
        """A browser Origin the policy refuses (None: not a browser, judged by credentials)."""
        arrival = arrival_of(conn)
        return arrival.origin is not None and not origins.allows(arrival)

    @bp.after_request
    async def harden(response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # not "no-referrer": with it browsers send `Origin: null` on our own form POSTs
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @bp.get("/admin")
    async def page() -> ResponseReturnValue:
        """The dashboard, or a redirect to the login form."""
        result = verdict()
        if result is Verdict.THROTTLED:
            return _throttled_json(auth, address(request))
        if result is not Verdict.OK:
            return redirect("/admin/login", 303)
        return await render_template("dashboard/index.html", view=cluster.view())

    @bp.get("/admin/login")
    async def login_form() -> str:
        """The login form (the only admin page served without the token)."""
        return await render_template("dashboard/login.html", error=None)

    @bp.post("/admin/login")
    async def login() -> ResponseReturnValue:
        """Check the form's `token`; on success set the signed cookie and go to /admin."""
        if foreign_origin(request):
            abort(403)
        form = await request.form
        result = judged(auth.login(form.get("token", ""), address(request)), request)
        if result is Verdict.THROTTLED:
            return await render_template("dashboard/login.html", error="too many attempts"), 429
        if result is not Verdict.OK:
            return await render_template("dashboard/login.html", error="wrong token"), 401
        response = redirect("/admin", 303)
        response.set_cookie(
            COOKIE_NAME,
            auth.issue_cookie(),
            max_age=int(auth.cookie_ttl),
            path="/admin",
            httponly=True,
            samesite="Strict",
            secure=_https(),
        )
        return response

    @bp.post("/admin/logout")
    async def logout() -> ResponseReturnValue:
        """Revoke the cookie (here, and on every peer that hears the notice), forget it here."""
        if foreign_origin(request):
            abort(403)
        cookie = request.cookies.get(COOKIE_NAME)
        notice = auth.revocation_notice(cookie)
        if auth.revoke(cookie) and notice is not None:
            await presence.announce_revocation(notice)
        response = redirect("/admin/login", 303)
        response.delete_cookie(COOKIE_NAME, path="/admin", httponly=True, samesite="Strict")
        return response

    @bp.get("/admin/api/stats")
    async def stats() -> Response:
        """The contract's stats JSON for this instance and the whole cluster."""
        denied = _deny_json(verdict(), auth, address(request))
        return denied or jsonify(cluster.view())

    @bp.get("/admin/api/history")
    async def history() -> Response:
        """The last 15 minutes of cluster totals, one point a second."""
        denied = _deny_json(verdict(), auth, address(request))
        return denied or jsonify({"points": list(cluster.history)})

    @bp.websocket("/admin/stream")
    async def stream() -> None:
        """Push the cluster view once a second (after each sample) until the client leaves."""
        headers = websocket.headers
        origin = headers.get("Origin")
        cookie = websocket.cookies.get(COOKIE_NAME)
        bearer = headers.get("Authorization")
        if foreign_origin(websocket):
            abort(403)
        if origin is None and bearer is None:
            abort(403)  # a browser always sends Origin; without it only the Bearer token counts
        result = judged(auth.check(bearer, cookie, address(websocket)), websocket)
        if result is not Verdict.OK:
            abort(429 if result is Verdict.THROTTLED else 401)
        expiry = None if bearer else auth.cookie_expiry(cookie)
        await websocket.accept()
        await _send_json({"type": "history", "points": list(cluster.history)})
        reader = asyncio.create_task(_discard_input(), name="admin-stream-read")
        try:
            while not reader.done():
                if presence.closed:  # shutting down: the dashboard reconnects to another instance
                    await websocket.close(CLOSE_RESTART, "server shutting down")
                    return
                point = cluster.history[-1] if cluster.history else None
                await _send_json({"type": "stats", "stats": cluster.view(), "point": point})
                if expiry is not None and auth.cookie_expiry(cookie) is None:
                    await websocket.close(CLOSE_POLICY, "login expired")
                    return
                sample = asyncio.create_task(presence.next_sample())
                await asyncio.wait({reader, sample}, return_when=asyncio.FIRST_COMPLETED)
                sample.cancel()
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    return bp


async def _send_json(payload: dict[str, Any]) -> None:
    await websocket.send(orjson.dumps(payload).decode())


async def _discard_input() -> None:
    """Read and ignore what the client sends, so a close is noticed at once."""
    while True:
        await websocket.receive()


def _https() -> bool:
    # Only sets the cookie's Secure flag, so any X-Forwarded-Proto may ask for it: a spoofed one
    # can only make the browser withhold the cookie over plain HTTP. Origin checks believe the
    # header only from a trusted proxy (`ProxyTrust`).
    return request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https"


def _throttled_json(auth: AdminAuth, address: str) -> Response:
    retry = max(1, round(auth.throttle.retry_after(address)))
    response = jsonify({"error": "too_many_attempts", "retry_after": retry})
    response.status_code = 429
    response.headers["Retry-After"] = str(retry)
    return response


def _deny_json(result: Verdict, auth: AdminAuth, address: str) -> Response | None:
    """None when allowed; else the API's 401 (or 429) JSON answer."""
    if result is Verdict.OK:
        return None
    if result is Verdict.THROTTLED:
        return _throttled_json(auth, address)
    response = jsonify({"error": "unauthorized", "message": "admin token required"})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="ticker-admin"'
    return response

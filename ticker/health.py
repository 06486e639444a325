"""App Engine split health checks.

Rule: liveness says only "the event loop answers" (a failure restarts the instance); readiness
says "send me traffic" (started, not draining, the broker stream healthy).
"""

from __future__ import annotations

from quart import Blueprint, Response, current_app, jsonify

from ticker.transports import runtime_of

bp = Blueprint("health", __name__)


@bp.get("/liveness_check")
async def liveness() -> Response:
    """200 whenever the loop can run this handler."""
    return jsonify({"status": "ok"})


@bp.get("/readiness_check")
async def readiness() -> tuple[Response, int]:
    """200 when ready for traffic; 503 with the reason while starting, draining or cut off."""
    runtime = runtime_of(current_app)
    if runtime.ready():
        return jsonify({"status": "ready"}), 200
    reason = (
        "draining"
        if runtime.draining
        else "starting"
        if not runtime.started
        else "broker unhealthy"
    )
    return jsonify({"status": "unavailable", "reason": reason}), 503

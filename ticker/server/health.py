"""App Engine split health checks.

Rules: liveness says only "the event loop answers" (a failure restarts the instance, so it must
not depend on Pub/Sub: an outage would become a restart loop). Readiness says "send me traffic":
started, not draining, and the subscription proven to deliver (a message, at least the periodic
canary, within the last few seconds). Both answer from memory, never by calling out.
"""

from __future__ import annotations

from quart import Blueprint, Response, current_app, jsonify

from ticker.server.transports import runtime_of

bp = Blueprint("health", __name__)


@bp.get("/liveness_check")
async def liveness() -> Response:
    """200 whenever the loop can run this handler."""
    return jsonify({"status": "ok"})


@bp.get("/readiness_check")
async def readiness() -> tuple[Response, int]:
    """200 when ready for traffic; 503 with the reason while starting, draining or cut off.

    The body also carries the broker's counters (subscription, messages, canaries,
    resubscribes, callback errors) for operators and the fault tests.
    """
    runtime = runtime_of(current_app)
    problem = runtime.readiness_problem()
    body = {
        "status": "ready" if problem is None else "unavailable",
        "broker": runtime.broker.stats(),
    }
    if problem is not None:
        body["reason"] = problem
    return jsonify(body), 200 if problem is None else 503

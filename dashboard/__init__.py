"""The admin dashboard: cluster-wide live stats behind the admin token.

`install(app, runtime)` wires it into an app built by `ticker.app.create_app`: the presence
service (heartbeats on the control topic) joins the runtime's lifecycle and the `/admin`
blueprint is registered. Everything is per app; nothing lives at module level.
"""

from __future__ import annotations

import sys
import time

from quart import Quart

from dashboard.auth import AdminAuth
from dashboard.blueprint import make_blueprint
from dashboard.presence import Presence
from dashboard.stats import ClusterStats, LocalStats
from ticker.broker.base import Broker
from ticker.broker.memory import InMemoryBroker
from ticker.core.registry import InstanceRegistry
from ticker.server.runtime import Runtime
from ticker.server.transports.guard import guard_of

EXTENSION = "ticker.dashboard"
# The control broker's own canary: every instance reads every other one's (N^2 messages), and
# heartbeats already keep the stream fresh; 5 s still gives the janitor's 15 s window three.
CONTROL_CANARY_INTERVAL = 5.0


def control_broker(runtime: Runtime) -> Broker:
    """The control topic, carried like ticks: same bus in memory, own subscription on Pub/Sub."""
    settings = runtime.settings
    if isinstance(runtime.broker, InMemoryBroker):
        return InMemoryBroker(settings.control_topic, bus=runtime.broker.bus)
    from ticker.broker.pubsub import PubSubBroker  # the Google client is heavy: import on use

    subscription = f"{settings.subscription_prefix}-ctl"
    return PubSubBroker(
        settings.project,
        settings.control_topic,
        subscription,
        canary_interval=CONTROL_CANARY_INTERVAL,
    )


def install(app: Quart, runtime: Runtime) -> Presence:
    """Add presence to `runtime` and `/admin` to `app`; announce a generated admin token once."""
    settings = runtime.settings
    ttl = settings.presence_interval * (settings.presence_misses + 0.5)
    registry = InstanceRegistry(ttl=ttl, clock=time.monotonic)
    local = LocalStats(runtime, f"{settings.instance_id}-{settings.boot_id}", time.monotonic)
    cluster = ClusterStats(local, registry, wall=time.time)
    presence = Presence(
        control_broker(runtime),
        cluster,
        settings.presence_interval,
        is_draining=lambda: runtime.draining,
        budget=settings.presence_budget,
        misses=settings.presence_misses,
    )
    runtime.services.append(presence)
    auth = AdminAuth(settings.admin_token, time.time)
    presence.on_revoke = auth.accept_revocation  # logouts on peers revoke here too
    bp = make_blueprint(cluster, presence, auth, guard_of(app).origins)  # the streams' policy
    app.register_blueprint(bp)
    app.extensions[EXTENSION] = presence
    if settings.admin_token_generated:
        # The one place a token is ever written out: it was generated, so nobody else knows it.
        print(
            f"ticker: admin token (generated; set TICKER_ADMIN_TOKEN to choose one): "
            f"{settings.admin_token}",
            file=sys.stderr,
            flush=True,
        )
    return presence

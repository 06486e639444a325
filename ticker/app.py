"""The composition root: settings -> runtime -> blueprints -> lifespan. Nothing else lives here."""

from __future__ import annotations

import os
from collections.abc import Mapping

from quart import Quart

import dashboard
from ticker.broker.base import Broker
from ticker.server import fastpaths, health, metrics, pages
from ticker.server.logs import configure_logging
from ticker.server.runtime import Runtime
from ticker.server.settings import Settings
from ticker.server.transports import longpoll, sse, websocket


def create_app(env: Mapping[str, str] | None = None, *, broker: Broker | None = None) -> Quart:
    """Build the ASGI app (`hypercorn "ticker.app:create_app()"`).

    `env` defaults to the process environment; `broker` overrides the configured one (tests).
    """
    settings = Settings.from_env(os.environ if env is None else env)
    configure_logging()
    runtime = Runtime.build(settings, broker=broker)
    app = Quart(__name__)
    app.extensions["ticker"] = runtime
    for blueprint in (pages.bp, websocket.bp, sse.bp, longpoll.bp, health.bp):
        app.register_blueprint(blueprint)
    metrics.install(app, runtime)
    dashboard.install(app, runtime)
    fastpaths.install(app, settings)  # one `fast_paths` log line when serving starts
    app.while_serving(runtime.lifespan)
    return app

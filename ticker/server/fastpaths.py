"""Which fast paths this process runs with, and why: one structured log line when serving starts.

The server is fast because of a few choices that can each be off: by configuration, or because
an upgrade of Hypercorn, Quart or wsproto changed the private internals a path relies on (then
the path falls back to the slow, always-correct way). Falling back must never be silent:
`survey()` states each path `on` or `off` with the reason, `install()` logs them as one
`fast_paths` line when the app starts serving (WARNING when an internal changed, naming it;
INFO otherwise), and `tests/service/test_fast_paths.py` fails on any changed internal.

Paths: `ws_direct_writes` (whole frames straight onto Hypercorn's socket, `wsfast`),
`ws_asgi_send` (frames past Quart's per-frame layers, `wsfast.text_sender`), `protocol_guard`
(the guards inside Hypercorn), `ws_deflate` (declined, or bounded), `orjson`, `event_loop`
(`TICKER_EVENT_LOOP`, as `ticker.serve` chose it), `gc` (`TICKER_GC_THRESHOLD`), `gil_switch`
(`TICKER_SWITCH_INTERVAL_MS`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import orjson
import structlog
from quart import Quart

from ticker.server.settings import Settings
from ticker.server.transports import deflate, internals, protocol_guard, wsfast

log = structlog.get_logger("ticker.server.fastpaths")


@dataclass(frozen=True, slots=True)
class FastPath:
    """One fast path's state: on or off, why, and whether an unexpected internal is the cause."""

    name: str
    on: bool
    why: str
    degraded: bool = False  # off (or weakened) because a library's internals changed shape

    def shown(self) -> str:
        """`on: why` or `off: why`, as logged."""
        return f"{'on' if self.on else 'off'}: {self.why}"


def _changed(names: list[str] | tuple[str, ...]) -> str:
    return "unexpected internals: " + "; ".join(names)


def websocket_paths(settings: Settings) -> list[FastPath]:
    """The /ws writer's two shortcuts (`wsfast`)."""
    socket_changed = wsfast.shape_problems()
    send_changed = internals.problems(wsfast.EXPECTED_SEND)
    if settings.ws_deflate:
        direct = FastPath("ws_direct_writes", False, "TICKER_WS_DEFLATE=1 (frames are compressed)")
    elif socket_changed:
        direct = FastPath("ws_direct_writes", False, _changed(socket_changed), degraded=True)
    else:
        direct = FastPath("ws_direct_writes", True, "Hypercorn HTTP/1.1 socket, no extensions")
    if send_changed:
        send = FastPath("ws_asgi_send", False, _changed(send_changed), degraded=True)
    else:
        send = FastPath("ws_asgi_send", True, "frames go to Hypercorn's ASGI send, not Quart's")
    return [direct, send]


def guard_paths(settings: Settings) -> list[FastPath]:
    """The guards inside Hypercorn, and what permessage-deflate negotiates."""
    changed = protocol_guard.shape_problems()
    if protocol_guard.installed():
        guard = FastPath(
            "protocol_guard", True, "message bound, FIN release, header timeout, pongs"
        )
    else:
        why = _changed(changed) if changed else "not installed (no /ws blueprint)"
        guard = FastPath("protocol_guard", False, why, degraded=bool(changed))
    mode, deflate_changed = deflate.mode(), deflate.shape_problems()
    if mode == "bounded":
        ws_deflate = FastPath("ws_deflate", True, "bounded (TICKER_WS_DEFLATE=1)")
    elif settings.ws_deflate and deflate_changed:
        why = f"declined although TICKER_WS_DEFLATE=1: {_changed(deflate_changed)}"
        ws_deflate = FastPath("ws_deflate", False, why, degraded=True)
    elif mode == "declined":
        ws_deflate = FastPath("ws_deflate", False, "declined (TICKER_WS_DEFLATE=0: plain frames)")
    else:
        why = "Hypercorn's own, unbounded (not installed)"
        ws_deflate = FastPath("ws_deflate", True, why, degraded=bool(deflate_changed))
    return [guard, ws_deflate]


def process_paths(settings: Settings, loop: asyncio.AbstractEventLoop) -> list[FastPath]:
    """The codec, the event loop, the collector's and the GIL's settings."""
    kind = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    gc, switch = settings.gc_threshold, settings.switch_interval_ms
    return [
        FastPath("orjson", True, f"orjson {orjson.__version__} encodes and decodes every tick"),
        FastPath("event_loop", True, f"{kind} (TICKER_EVENT_LOOP; bench C: asyncio's is cheaper)"),
        FastPath(
            "gc",
            gc > 0,
            f"first threshold {gc} (TICKER_GC_THRESHOLD)"
            if gc
            else "Python's default (TICKER_GC_THRESHOLD=0)",
        ),
        FastPath(
            "gil_switch",
            switch > 0,
            f"{switch:g} ms (TICKER_SWITCH_INTERVAL_MS)"
            if switch
            else "Python's default, 5 ms (TICKER_SWITCH_INTERVAL_MS=0)",
        ),
    ]


def survey(settings: Settings, loop: asyncio.AbstractEventLoop) -> list[FastPath]:
    """Every fast path's state now."""
    return [*websocket_paths(settings), *guard_paths(settings), *process_paths(settings, loop)]


def log_survey(paths: list[FastPath]) -> None:
    """One `fast_paths` line: WARNING naming the changed internals if any, else INFO."""
    level = logging.WARNING if any(p.degraded for p in paths) else logging.INFO
    log.log(level, "fast_paths", **{p.name: p.shown() for p in paths})


def install(app: Quart, settings: Settings) -> None:
    """Log the survey once, when `app` starts serving (the blueprints have installed theirs)."""

    @app.before_serving
    async def report() -> None:
        log_survey(survey(settings, asyncio.get_running_loop()))

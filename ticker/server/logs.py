"""Structured JSON logs on stdout that Cloud Logging understands (`severity`, `message`).

Rules: configure once per process; never log tokens or message bodies. A connection that dies
with an exception inside the server (asyncio's "Unhandled exception in client_connected_cb") is
logged as one short line with the exception's type, at most once a minute with a count
(`ConnectionErrorDigest`): any peer can trigger those, and a 3 KB traceback each is a cheap log
flood. `ticker.server.transports.protocol_guard` removes the known causes; this bounds unknown ones.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import structlog

_configured = False


def configure_logging(level: int = logging.INFO) -> None:
    """Route stdlib and structlog records through one JSON renderer on stdout."""
    global _configured
    if _configured:
        return
    _configured = True
    shared: list[structlog.typing.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", key="time"),
        _cloud_logging_keys,
    ]
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(ConnectionErrorDigest())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


def _cloud_logging_keys(
    _logger: object, _name: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    event["severity"] = str(event.pop("level", "info")).upper()
    event["message"] = event.pop("event", "")
    return event


class ConnectionErrorDigest(logging.Filter):
    """Turns asyncio's per-connection tracebacks into one short line a minute, with a count."""

    PREFIX = "Unhandled exception in client_connected_cb"

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._last = -interval
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "asyncio" or not str(record.msg).startswith(self.PREFIX):
            return True
        self._suppressed += 1
        now = self._clock()
        if now - self._last < self.interval:
            return False
        self._last = now
        error = record.exc_info[1] if record.exc_info else None
        while isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]  # Hypercorn's task group wraps the real one
        kind = type(error).__name__ if error is not None else "unknown"
        record.msg = f"connection failed inside the server: {kind} (x{self._suppressed} since last)"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        self._suppressed = 0
        return True

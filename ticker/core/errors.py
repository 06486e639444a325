"""One small error hierarchy; every client-facing error carries the contract's machine code.

Rule: a `ClientError` never escapes a session: transports catch it and send an error frame.
"""

from __future__ import annotations

from typing import Literal

ClientErrorCode = Literal[
    "bad_json",
    "bad_frame",
    "unknown_op",
    "bad_symbol",
    "too_many_symbols",
    "bad_since",
    "bad_cursor",
    "bad_max_rate",
    "rate_limited",
]


class TickerError(Exception):
    """Base of every error this project raises on purpose."""


class InvalidTick(TickerError):
    """A price event that does not match the contract's message shape."""


class ConfigError(TickerError):
    """A setting or command-line value that cannot be used; the message says which and why."""


class ClientError(TickerError):
    """Bad input from a client; `code` is the contract's `{"type": "error", "code": ...}`."""

    def __init__(self, code: ClientErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ClientErrorCode = code
        self.message = message

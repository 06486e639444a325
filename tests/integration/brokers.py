"""Shared helpers for broker-level tests: a recording handler and ticks as message bytes.

Rule: wait with `tests.support.timing.eventually`, never by sleeping a fixed time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from ticker.core.codec import tick_to_bytes
from ticker.core.ticks import make_tick


class Recorder:
    """A `MessageHandler` that records what it gets, and on which thread."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, dict[str, str]]] = []
        self.threads: set[int] = set()

    def __call__(self, data: bytes, attributes: Mapping[str, str]) -> None:
        self.messages.append((data, dict(attributes)))
        self.threads.add(threading.get_ident())


def tick_bytes(symbol: str, seq: int) -> bytes:
    return tick_to_bytes(make_tick(symbol, 100.0 + seq % 7, seq, int(time.time() * 1000)))

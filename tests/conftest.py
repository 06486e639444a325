"""Factories shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ServerFactory
from ticker.core.ticks import Tick, make_tick


def tick(
    symbol: str = "AAPL", seq: int = 1, price: float = 100.0, ts: int = 1_764_000_000_000
) -> Tick:
    """A valid tick with sensible defaults."""
    return make_tick(symbol, price, seq, ts)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """`start_server(**env)` -> a running `Server` (a None value removes a variable)."""
    factory = ServerFactory(tmp_path)
    yield factory
    factory.stop_all()

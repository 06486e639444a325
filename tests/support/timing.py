"""The one time scale of the tests, and `eventually`: waiting for a condition without sleeping.

Rules:
- Every wait bound in a test is written in seconds as on an idle machine and scaled here by
  one factor, `TICKER_TEST_TIMEOUT_FACTOR` (default 1; raise it on a slow or loaded machine).
  `timeout(s)` is that scaling; `UNIT_S` is one ordinary wait (a server starting, a page showing
  prices) and is `timeout(10)`. Nothing else reads the factor.
- `eventually(pred, within=..., what=...)` polls `pred` until it returns something truthy and
  returns that; after the scaled `within` it fails naming `what`. It is for state that offers
  no event to await (another process, a counter in the hub); it never stands in for a sleep.
  The async form keeps the test's event loop running; `eventually_sync` is for threads and
  synchronous tests (it is `ticker.ops.procs.wait_until`, scaled).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from ticker.ops.procs import wait_until

T = TypeVar("T")


def _factor(raw: str | None) -> float:
    try:
        factor = float(raw or "1")
    except ValueError:
        factor = 0.0
    if not factor > 0:
        raise ValueError(f"TICKER_TEST_TIMEOUT_FACTOR must be a positive number, got {raw!r}")
    return factor


FACTOR = _factor(os.environ.get("TICKER_TEST_TIMEOUT_FACTOR"))


def timeout(seconds: float) -> float:
    """A wait bound scaled for the machine; use it instead of bare numbers."""
    return seconds * FACTOR


UNIT_S = timeout(10.0)  # one ordinary wait: a page showing prices, a server starting


@overload
async def eventually(
    pred: Callable[..., Awaitable[T | None]], *, within: float, what: str, every: float = 0.01
) -> T: ...
@overload
async def eventually(
    pred: Callable[..., T | None], *, within: float, what: str, every: float = 0.01
) -> T: ...
async def eventually(
    pred: Callable[..., Any], *, within: float, what: str, every: float = 0.01
) -> Any:
    """Poll `pred` (sync or async) until truthy; AssertionError after `timeout(within)` s."""
    bound = timeout(within)
    deadline = time.monotonic() + bound
    while True:
        value = pred()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound:.1f}s: {what}")
        await asyncio.sleep(every)


def eventually_sync(
    pred: Callable[..., T | None], *, within: float, what: str, every: float = 0.1
) -> T:
    """`eventually` for threads and sync tests; AssertionError after `timeout(within)` s."""
    try:
        return wait_until(pred, within=timeout(within), what=what, every=every)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None

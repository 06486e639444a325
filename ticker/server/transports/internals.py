"""Expectations about Hypercorn's, Quart's and wsproto's private internals, checked by name.

`wsfast` (direct socket writes), `protocol_guard` (guards inside Hypercorn) and `deflate`
(bounded permessage-deflate) reach past these libraries' public APIs. Each lists what it relies
on as `Expect`s; `problems()` returns the names of the internals whose shape changed. The code
that relies on them then turns itself off (the slow, always-correct path, or Hypercorn as it is),
`ticker.server.fastpaths` says so once at start, and `tests/service/test_fast_paths.py` fails
naming the internal, so an upgrade cannot switch a path off silently. The checks read class
attributes, signatures and source text: no connection is needed, and they cost ~1 ms.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Expect:
    """`internal` (a dotted name a person can look up) has the shape `holds` checks.

    `holds` looks everything up when called, so a vanished attribute fails the check instead
    of the import of the module that declares it.
    """

    internal: str
    holds: Callable[[], bool]


def problems(expectations: Iterable[Expect]) -> list[str]:
    """The internals whose check fails (an error while checking is a failure too)."""
    failed = []
    for expect in expectations:
        try:
            ok = expect.holds()
        except Exception:  # a vanished module, class or attribute: the shape changed
            ok = False
        if not ok:
            failed.append(expect.internal)
    return failed


def source(obj: object) -> str:
    """`obj`'s source text (for checks like `"self.writer = writer" in source(...)`)."""
    return inspect.getsource(obj)  # type: ignore[arg-type]


def params(func: object) -> list[str]:
    """`func`'s parameter names, in order."""
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]

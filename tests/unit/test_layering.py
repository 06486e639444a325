"""The dependency rules, checked on what an import really loads, not on what a file names.

Each rule imports its modules in a fresh interpreter and reads `sys.modules` afterwards, so an
import that drags a forbidden library in through another module (a cycle, a re-export, a
`from x import y` two hops away) breaks the rule as surely as a direct one. A failure names the
module after whose import the forbidden one appeared, and the chain of imports that led there
(traced in a second interpreter, only then). Rules:
- `ticker.core` loads only the standard library, orjson, msgspec and `ticker.core` itself;
- `ticker.stream` (the engine) loads no HTTP server, framework, metrics library or Google client;
- `ticker.server.runtime` loads no Quart (nor Hypercorn, prometheus-client, the Google client):
  metrics, transports and pages are edges that depend on it, never the other way round;
- the Google client (and gRPC) is loaded only by the Pub/Sub broker and its subscription admin,
  the publisher's sink, and the two Pub/Sub programs built on them (the publisher's CLI, the
  janitor); everything else reaches Pub/Sub through the `Broker` protocol, lazily.
Why not import-linter: its contracts read import statements (static), and would need the same
exception list; one subprocess per rule is a few lines, exact, and ~2 s in all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ticker", "dashboard", "publisher")
GOOGLE_OWNERS = (
    "ticker.broker.pubsub",
    "ticker.broker.admin",
    "publisher.sink",
    "publisher.cli",
    "ticker.ops.janitor",
)
PROBE = """
import builtins, importlib, json, sys
trace, names, parents = sys.argv[1] == "trace", sys.argv[2:], {}
if trace:  # who imported each module first: only to explain a violation
    real_import = builtins.__import__

    def traced(name, globals=None, locals=None, fromlist=(), level=0):
        before = set(sys.modules)
        try:
            return real_import(name, globals, locals, fromlist, level)
        finally:
            for new in set(sys.modules) - before:
                parents.setdefault(new, (globals or {}).get("__name__"))

    builtins.__import__ = traced
loaded = []
for name in names:
    before = set(sys.modules)
    importlib.import_module(name)
    loaded.append([name, sorted(set(sys.modules) - before)])
print(json.dumps({"loaded": loaded, "parents": parents}))
"""


def modules_under(package: str) -> list[str]:
    """Every importable module of `package` (a dotted name), `__main__` scripts excepted."""
    folder = ROOT.joinpath(*package.split("."))
    names = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _probe(modules: Iterable[str], *, trace: bool = False) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, "trace" if trace else "plain", *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def loaded_by(modules: Iterable[str]) -> list[tuple[str, list[str]]]:
    """`(module, what importing it loaded first)` in a fresh interpreter, in import order."""
    return [(name, new) for name, new in _probe(modules)["loaded"]]


def import_chain(module: str, target: str) -> list[str]:
    """How importing `module` (alone, in a fresh interpreter) came to load `target`."""
    parents = _probe([module], trace=True)["parents"]
    chain = [target]
    while chain[-1] != module and parents.get(chain[-1]) and len(chain) < 50:
        chain.append(parents[chain[-1]])
    return chain[::-1]


def _top(name: str) -> str:
    return name.split(".")[0]


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in prefixes)


def pure(name: str) -> bool:
    """The standard library, orjson, msgspec, and ticker.core (its package `ticker` included)."""
    return (
        _top(name) in sys.stdlib_module_names
        or _top(name) in ("orjson", "msgspec", "typing_extensions")  # msgspec loads the last
        or name == "ticker"
        or _under(name, ["ticker.core"])
    )


def without(*forbidden: str) -> Callable[[str], bool]:
    """A check that refuses `forbidden` packages (dotted prefixes)."""
    return lambda name: not _under(name, forbidden)


@dataclass(frozen=True)
class Rule:
    """Importing `modules` must load only modules `allows` accepts."""

    name: str
    modules: tuple[str, ...]
    allows: Callable[[str], bool]


HTTP_AND_CLOUD = ("quart", "hypercorn", "werkzeug", "prometheus_client", "google", "grpc")
RULES = [
    Rule(
        "core loads only the standard library, orjson and msgspec",
        tuple(modules_under("ticker.core")),
        pure,
    ),
    Rule(
        "the stream engine loads no HTTP, metrics or Google client",
        tuple(modules_under("ticker.stream")),
        without(*HTTP_AND_CLOUD, "ticker.server", "dashboard"),
    ),
    Rule(
        "the runtime loads no Quart, Hypercorn, prometheus-client or Google client",
        ("ticker.server.runtime",),
        without(*HTTP_AND_CLOUD),
    ),
    Rule(
        "the Google client only in the Pub/Sub broker, the publisher's sink and their programs",
        tuple(m for p in PACKAGES for m in modules_under(p) if not _under(m, GOOGLE_OWNERS)),
        without("google", "grpc"),
    ),
]


def violations(rule: Rule) -> list[str]:
    """`"<module> loads <forbidden>, ... (<module> -> ... -> <first forbidden>)"` for each module
    whose import broke `rule`, with the import chain that led to the first forbidden one."""
    found = []
    for module, new in loaded_by(rule.modules):
        refused = [m for m in new if not rule.allows(m)]
        if refused:
            bad = sorted({m if _top(m) in PACKAGES else _top(m) for m in refused})
            chain = " -> ".join(import_chain(module, min(refused, key=len)))
            found.append(f"{module} loads {', '.join(bad)} ({chain})")
    return found


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_imports_load_only_what_the_layer_allows(rule: Rule) -> None:
    assert rule.modules, f"{rule.name}: no modules found"
    assert violations(rule) == [], rule.name


def test_the_probe_sees_transitive_loads() -> None:
    # The check can fail: /metrics is an edge, and its import drags in both libraries.
    ((module, new),) = loaded_by(["ticker.server.metrics"])
    assert module == "ticker.server.metrics"
    assert {"quart", "prometheus_client"} <= {_top(m) for m in new}
    edge = Rule("edge", ("ticker.server.metrics",), without("quart"))
    (found,) = violations(edge)
    assert found.startswith("ticker.server.metrics loads quart (ticker.server.metrics -> quart")


def test_every_package_has_its_modules_found() -> None:
    assert "ticker.core.latency" in modules_under("ticker.core")
    assert "ticker.broker" in modules_under("ticker.broker")  # a package's __init__
    assert not [m for m in modules_under("publisher") if m.endswith("__main__")]

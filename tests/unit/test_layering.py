"""The dependency rule: core is pure; Quart only at the edges; Google's client only in brokers."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STDLIB_OK_IN_CORE = {"orjson", "msgspec"}
QUART_ALLOWED = (
    "ticker/app.py",
    "ticker/serve.py",  # the runner: an edge like app.py
    "ticker/server/transports/",
    "ticker/server/health.py",
    "ticker/server/pages.py",
    "ticker/server/metrics.py",
    "dashboard/",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules(*folders: str) -> list[Path]:
    return [p for f in folders for p in (ROOT / f).rglob("*.py")]


def test_core_imports_only_the_standard_library_and_itself():
    import sys

    for path in _modules("ticker/core"):
        foreign = {
            n
            for n in _imports(path)
            if n not in sys.stdlib_module_names and n not in STDLIB_OK_IN_CORE and n != "ticker"
        }
        assert not foreign, f"{path.relative_to(ROOT)} imports {foreign}"


def test_quart_is_imported_only_at_the_edges():
    for path in _modules("ticker", "dashboard", "publisher"):
        rel = path.relative_to(ROOT).as_posix()
        if "quart" in _imports(path):
            assert rel.startswith(QUART_ALLOWED), f"{rel} imports quart"


def test_the_google_client_stays_in_brokers_and_publisher_sinks():
    for path in _modules("ticker/core", "ticker/server/transports"):
        assert "google" not in _imports(path), path


def test_the_stream_engine_knows_no_server_and_no_http():
    for path in _modules("ticker/stream"):
        imported = _imports_dotted(path)
        edge = {n for n in imported if n.startswith(("ticker.server", "quart", "hypercorn"))}
        assert not edge, f"{path.relative_to(ROOT)} imports {edge}"


def _imports_dotted(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names

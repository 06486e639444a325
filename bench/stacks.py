"""The servers under test: the ticker and its baselines, each behind the same protocol.

Rule: every stack reads TICKER_SIM_SYMBOLS / TICKER_SIM_RATE and runs an equivalent in-process feed;
each is started as one command (possibly with workers) that the harness pins and measures.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NODE = ROOT / "bench" / "node"


@dataclass(frozen=True)
class Stack:
    """How to start one server: `command(port, workers)`; `proto` is what the load speaks."""

    name: str
    label: str
    command: Callable[[int, int], list[str]]
    proto: str = "ticker"
    path: str = "/ws"
    max_workers: int = 1
    pythonpath: Path = ROOT  # where its Python code is imported from


def _hypercorn(app: str, *extra: str) -> Callable[[int, int], list[str]]:
    def command(port: int, workers: int) -> list[str]:
        return [
            str(BIN / "hypercorn"),
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--backlog",
            "4096",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            *extra,
        ]

    return command


def _serve(port: int, workers: int) -> list[str]:
    """The production entrypoint (app.yaml): `python -m ticker.serve` (one worker)."""
    return [str(BIN / "python"), "-m", "ticker.serve", "--bind", f"127.0.0.1:{port}"]


STACKS: dict[str, Stack] = {
    s.name: s
    for s in (
        Stack("ticker-serve", "ticker (python -m ticker.serve)", _serve),
        Stack(
            "ticker",
            "ticker (Quart/Hypercorn)",
            _hypercorn("ticker.app:create_app()"),
            max_workers=8,
        ),
        Stack(
            "ticker-uvloop",
            "ticker + uvloop",
            _hypercorn("ticker.app:create_app()", "--worker-class", "uvloop"),
            max_workers=8,
        ),
        Stack("naive-quart", "naive Quart", _hypercorn("bench.baselines.naive_quart:create_app()")),
        Stack(
            "websockets",
            "Python websockets",
            lambda port, _w: [sys.executable, "-m", "bench.baselines.ws_broadcast", str(port)],
        ),
        Stack(
            "socketio",
            "Node socket.io",
            lambda port, _w: ["node", str(NODE / "socketio_server.js"), str(port)],
            proto="socketio",
            path="",
        ),
        Stack(
            "node-ws", "Node ws", lambda port, _w: ["node", str(NODE / "ws_server.js"), str(port)]
        ),
    )
}
BASELINES = ("naive-quart", "websockets", "socketio")


def ticker_at(rev: str) -> Stack:
    """The ticker as of git revision `rev` (exported to a temporary directory), e.g. "before"."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    where = Path(tempfile.gettempdir()) / f"ticker-bench-{sha}"
    if not where.exists():
        where.mkdir()
        tree = subprocess.run(
            ["git", "ls-tree", "--name-only", sha], cwd=ROOT, capture_output=True, text=True
        ).stdout.split()
        parts = [p for p in ("ticker", "publisher", "dashboard") if p in tree]
        archive = subprocess.run(
            ["git", "archive", sha, *parts],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    stack = Stack(
        f"ticker@{sha}",
        f"ticker at {sha}",
        _hypercorn("ticker.app:create_app()"),
        max_workers=8,
        pythonpath=where,
    )
    STACKS[stack.name] = stack
    return stack

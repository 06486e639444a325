"""Real server processes for integration and e2e tests: hypercorn serving `create_app()`.

Rules: every server runs in its own process group on a free port and is always stopped by its own
pid (SIGTERM, then SIGKILL after 10 s). Missing prerequisites skip locally and fail under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = "ticker.app:create_app()"
BASE_ENV = {
    "TICKER_BROKER": "memory",
    "TICKER_SIM_SYMBOLS": "AAPL,MSFT,GOOG,AMZN,NVDA",
    "TICKER_SIM_RATE": "20",
    "TICKER_ADMIN_TOKEN": "test-token",
}
TIMEOUT_FACTOR = float(os.environ.get("TICKER_TEST_TIMEOUT_FACTOR", "1"))
UNIT_S = 10.0 * TIMEOUT_FACTOR  # one wait: a page showing prices, a server starting
STOP_GRACE_S = 10.0
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(reason: str) -> None:
    """Skip locally, fail in CI: a missing prerequisite must never turn CI green."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: e2e prerequisites must be installed)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """GET `url` and return its status, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


@dataclass
class Server:
    """One `hypercorn` process serving the app; `url` has no trailing slash."""

    url: str
    env: dict[str, str] = field(repr=False)
    log_path: Path = field(repr=False)
    proc: subprocess.Popen[bytes]
    _log: IO[bytes] = field(repr=False)

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """SIGTERM the whole process group, SIGKILL it if still there after 10 s."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)  # start_new_session=True: its pgid is its pid


class ServerFactory:
    """Start servers with extra environment; `stop_all()` stops every one it started."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._servers: list[Server] = []

    def __call__(self, port: int | None = None, **env: str | None) -> Server:
        """Plain `hypercorn` with its own defaults (no `ticker.server.hypercorn_conf`).

        `port` (default: a free one) restarts a server where an earlier one was.
        """
        return self._start(["-m", "hypercorn", APP], env, port)

    def serve(self, port: int | None = None, **env: str | None) -> Server:
        """`python -m ticker.serve`: the production entrypoint and its Hypercorn settings."""
        return self._start(["-m", "ticker.serve"], env, port)

    def _start(self, args: list[str], env: dict[str, str | None], port: int | None) -> Server:
        port = port or free_port()
        full_env = {**os.environ, **BASE_ENV}
        for name, value in env.items():
            if value is None:
                full_env.pop(name, None)
            else:
                full_env[name] = value
        log_path = self._log_dir / f"server-{port}-{len(self._servers)}.log"  # a restart: new log
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, *args, "--bind", f"127.0.0.1:{port}"],
            cwd=REPO,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(f"http://127.0.0.1:{port}", full_env, log_path, proc, log)
        self._servers.append(server)
        self._wait_live(server)
        return server

    def _wait_live(self, server: Server) -> None:
        deadline = time.monotonic() + UNIT_S * 2
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                break
            if http_status(f"{server.url}/liveness_check", timeout=1.0) == 200:
                return
            time.sleep(0.1)  # polling a process from outside: there is no event to wait on
        server.stop()
        pytest.fail(
            f"server did not become live (exit code {server.proc.returncode}); log:\n"
            + server.log_path.read_text(errors="replace")[-4000:],
            pytrace=False,
        )

    def stop_all(self) -> None:
        while self._servers:
            self._servers.pop().stop()

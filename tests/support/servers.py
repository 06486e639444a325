"""Real server processes for integration and e2e tests: hypercorn serving `create_app()`.

Rules: every server is started through `ticker.ops.procs` in its own process group on a free port
and is always stopped by its own pid (SIGTERM to the group, then SIGKILL after a grace: 10 s for
the factory's, 25 s for `launch`'s, which drain Pub/Sub subscriptions). Missing
prerequisites skip locally and fail under CI=true. Waits are `tests.support.timing`'s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.timing import eventually_sync
from ticker.ops import procs
from ticker.ops.procs import free_port, http_status

REPO = Path(__file__).resolve().parents[2]
APP = "ticker.app:create_app()"
SERVE = ("-m", "ticker.serve")  # the production entrypoint and its Hypercorn settings
BASE_ENV = {
    "TICKER_BROKER": "memory",
    "TICKER_SIM_SYMBOLS": "AAPL,MSFT,GOOG,AMZN,NVDA",
    "TICKER_SIM_RATE": "20",
    "TICKER_ADMIN_TOKEN": "test-token",
}
STOP_GRACE_S = 10.0
IN_CI = os.environ.get("CI", "").lower() == "true"
__all__ = ["BASE_ENV", "REPO", "Server", "ServerFactory", "free_port", "http_status", "launch"]


def missing(reason: str) -> None:
    """Skip locally, fail in CI: a missing prerequisite must never turn CI green."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: e2e prerequisites must be installed)", pytrace=False)
    pytest.skip(reason)


@dataclass
class Server:
    """One server process on 127.0.0.1:`port`; `url` has no trailing slash."""

    url: str
    env: dict[str, str] = field(repr=False)
    log_path: Path = field(repr=False)
    proc: subprocess.Popen[bytes]
    remove_log: bool = field(default=False, repr=False)  # a temporary log, gone after `stop`
    stop_grace: float = field(default=STOP_GRACE_S, repr=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def base(self) -> str:
        return self.url

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def get(self, path: str, timeout: float = 2.0) -> tuple[int | None, dict[str, Any]]:
        """(status, JSON body) of a GET; (None, {}) when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")
        except (OSError, ValueError):
            return None, {}

    def readiness(self) -> tuple[int | None, dict[str, Any]]:
        return self.get("/readiness_check")

    def liveness(self) -> int | None:
        return self.get("/liveness_check")[0]

    def subscription(self) -> str:
        """The subscription id the server reports using now."""
        return str(self.readiness()[1].get("broker", {}).get("subscription", ""))

    def wait_ready(self, within: float = 20.0) -> None:
        """Wait (scaled `within`) until readiness answers 200; fail with the log if not."""
        self._wait_status("/readiness_check", within)

    def wait_live(self, within: float = 20.0) -> None:
        """Wait (scaled `within`) until liveness answers 200; fail with the log if not."""
        self._wait_status("/liveness_check", within)

    def _wait_status(self, path: str, within: float) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.url} exited with {self.proc.returncode}")
            return http_status(self.url + path, timeout=1.0) == 200

        try:
            eventually_sync(up, within=within, what=f"{path} of {self.url}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; log:\n{self.log_tail()}") from None

    def terminate(self) -> None:
        """SIGTERM the server process itself (what App Engine sends on a shutdown)."""
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the server process itself, like a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM the whole process group, SIGKILL it if still there after `grace` s."""
        procs.stop(self.proc, self.stop_grace if grace is None else grace)
        if self.remove_log:
            self.log_path.unlink(missing_ok=True)


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in the server's process group, in MB."""
    total_kb = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 of stat: process group id
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total_kb / 1024


def launch(
    env: Mapping[str, str],
    *,
    port: int | None = None,
    args: tuple[str, ...] = SERVE,
    log_path: Path | None = None,
    stop_grace: float = 25.0,
) -> Server:
    """Start `python <args> --bind 127.0.0.1:<port>` with exactly `env`; do not wait.

    Without `log_path` the output goes to a temporary file that `stop()` removes. `stop()`
    gives it `stop_grace` seconds after SIGTERM (a drain deletes its subscription first).
    """
    port = port or free_port()
    remove_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="ticker-server-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    proc = procs.start(
        [sys.executable, *args, "--bind", f"127.0.0.1:{port}"], env=env, cwd=REPO, log=log_path
    )
    return Server(f"http://127.0.0.1:{port}", dict(env), log_path, proc, remove_log, stop_grace)


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
        return self._start(list(SERVE), env, port)

    def _start(self, args: list[str], env: dict[str, str | None], port: int | None) -> Server:
        port = port or free_port()
        full_env = {**os.environ, **BASE_ENV}
        for name, value in env.items():
            if value is None:
                full_env.pop(name, None)
            else:
                full_env[name] = value
        log_path = self._log_dir / f"server-{port}-{len(self._servers)}.log"  # a restart: new log
        server = launch(
            full_env, port=port, args=tuple(args), log_path=log_path, stop_grace=STOP_GRACE_S
        )
        self._servers.append(server)
        try:
            server.wait_live(20)  # two units
        except AssertionError as exc:
            server.stop()
            pytest.fail(f"server did not become live: {exc}", pytrace=False)
        return server

    def stop_all(self) -> None:
        while self._servers:
            self._servers.pop().stop()

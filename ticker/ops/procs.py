"""Child processes for `make dev`, the benchmarks and the tests: started in a group, stopped by pid.

Rules:
- Every process is started in its own session (`start_new_session=True`), so its process group
  id is its pid and everything it forks (Hypercorn workers, gcloud's JVM) is in that group.
- A process is only ever stopped by signalling its own group: SIGTERM, a grace period, then
  SIGKILL; afterwards the group gets a last SIGKILL, as children may outlive a parent that died
  first. Nothing here looks processes up by name (other people's processes run beside ours).
- Waiting on another process polls a condition with a deadline (there is no event to await
  across processes) and fails naming what it waited for; it never sleeps a fixed time instead.

Pure standard library: `ticker/ops/dev.py`, `bench/` and `tests/support` all import it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")
HOST = "127.0.0.1"
Stream = int | IO[bytes] | None  # what Popen takes for stdin/stdout/stderr (None: inherit)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on `host`:`port`."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """GET `url` and return its status, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def wait_until(check: Callable[[], T | None], *, within: float, what: str, every: float = 0.1) -> T:
    """Poll `check` until it returns something truthy and return that; TimeoutError after
    `within` seconds, naming `what`. `check` may raise to give up early (a process exited)."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within:.1f}s: {what}")
        time.sleep(every)


def start(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    log: Path | None = None,
    stdin: Stream = subprocess.DEVNULL,
    stdout: Stream = None,
    stderr: Stream = None,
) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own session. `env` is the whole environment (None: ours).

    With `log`, stdout and stderr are appended to that file unless given; without, they are
    inherited unless given.
    """
    out = log.open("ab") if log is not None else None
    try:
        return subprocess.Popen(
            list(cmd),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=stdin,
            stdout=stdout if stdout is not None else out,
            stderr=stderr if stderr is not None else out,
            start_new_session=True,
        )
    finally:
        if out is not None:
            out.close()  # the child has its own descriptor


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send `sig` to the process group of `proc` (started by `start`: its pgid is its pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> int:
    """SIGTERM the group, SIGKILL it after `grace` seconds; return the exit code."""
    if proc.poll() is None:
        signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            signal_group(proc, signal.SIGKILL)
            proc.wait()
    signal_group(proc, signal.SIGKILL)  # workers may outlive a parent that died first
    return proc.returncode


def wait_ready(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], object],
    *,
    within: float,
    what: str,
    every: float = 0.1,
) -> None:
    """Wait until `ready()` holds; RuntimeError at once if `proc` exits first."""

    def check() -> object:
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        return ready()

    wait_until(check, within=within, what=what, every=every)

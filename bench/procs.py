"""Processes the harness starts: pinned with `taskset`, measured through /proc, stopped by pid.

Rule: starting and stopping are `ticker.ops.procs` (its own session, so its group id is its pid;
only ever stopped by signalling that group; nothing looks processes up by name); this module adds
CPU pinning and the /proc measurements.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ticker.ops import procs as ops
from ticker.ops.procs import free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
__all__ = [
    "cpu_times",
    "free_port",
    "rss_bytes",
    "start",
    "stop",
    "thread_cpu",
    "tree",
    "wait_port",
]


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`."""
    what = f"something listening on 127.0.0.1:{port}"
    if proc is None:
        ops.wait_until(lambda: ops.port_open(port), within=timeout, what=what, every=0.05)
    else:
        ops.wait_ready(proc, lambda: ops.port_open(port), within=timeout, what=what, every=0.05)


def start(
    cmd: Sequence[str],
    *,
    cpus: str | None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = None,
    cwd: Path | None = None,
    nice: int = 0,
) -> subprocess.Popen[bytes]:
    """Start `cmd` pinned to `cpus` (taskset execs it, so the pid is the command's).

    `nice`: the CPU priority of the process's own session. Every process started here leads a
    session of its own, and Linux schedules sessions as groups (autogroup) fairly against each
    other whatever their processes' `nice`; so the group's nice (/proc/<pid>/autogroup) is set.
    """
    argv = ["taskset", "-c", cpus, *cmd] if cpus else list(cmd)
    quiet = subprocess.DEVNULL if log is None else None  # no log: output goes nowhere
    proc = ops.start(
        argv,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        log=log,
        stdin=stdin,
        stdout=stdout if stdout is not None else quiet,
        stderr=quiet,
    )
    if nice:
        set_group_nice(proc.pid, nice)
    return proc


def set_group_nice(pid: int, nice: int) -> None:
    """Give `pid`'s session (its autogroup: it and its children) the CPU priority `nice`."""
    with contextlib.suppress(OSError):  # no autogroup on this kernel: plain nice instead
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, nice)


def stop(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    ops.stop(proc, timeout)


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (e.g. Hypercorn's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, ()))
    return out


def cpu_times(pids: Sequence[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of the live processes in `pids`."""
    user = system = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def thread_cpu(pid: int) -> tuple[float, float]:
    """(main thread, all other threads) CPU seconds of one process, from /proc/<pid>/task/*/stat.

    In the server the main thread runs the event loop; the others are the Pub/Sub client's
    (gRPC polling, the callback pool, leasing) and the executor's.
    """
    main = others = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                used = int(fields[11]) + int(fields[12])
                if task.name == str(pid):
                    main += used
                else:
                    others += used
    return main / CLK_TCK, others / CLK_TCK


def run_queue_wait(pid: int) -> float:
    """Seconds the process's main thread (the server's event loop) has spent runnable but
    waiting for a CPU, from /proc/<pid>/task/<pid>/schedstat (0.0 where the kernel has none).

    Why: on a shared machine a loop that is ready to run but waits for a core delays every
    frame; CPU time alone does not show it.
    """
    try:
        return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_bytes(pids: Sequence[int]) -> int:
    """Proportional set size (RSS with shared pages split) of the processes in `pids`.

    PSS, so that forked workers sharing pages are not counted twice.
    """
    total = 0
    key = "Pss:"
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith(key):
                    total += int(line.split()[1]) * 1024
                    break
    return total

"""One measurement point: start a server, connect the load, measure a window, stop everything.

Rule: the window is defined on the ticks' own `ts`: a tick counts when the producer stamped it in
[t0, t1) and it arrived by t1 + grace. Delivered = counted / owed, where owed is the larger of the
nominal (rate x window x clients x per / symbols, what a round-robin feed owes those clients) and
what the producer really made in the window (seq ranges seen by the clients, times subscribers).
So feed lag, conflation and lateness all count against it, and a feed catching up after a stall
cannot push it over 100 %. Server CPU and memory come from /proc over the same window.
"""

from __future__ import annotations

import os
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs
from bench.load import LoadRun, LoadSpec, percentiles, subscribers
from bench.stacks import ROOT, Stack

P99_BOUND_MS = 100.0
DELIVERED_BOUND = 0.97
LOAD_BOUND_CPU = 0.9  # a load process busier than this may itself be the bottleneck


@dataclass
class PointSpec:
    """What to run: a stack at a rate, with clients x per of symbols."""

    stack: Stack
    rate: float
    clients: int
    symbols: list[str]
    per: int
    workers: int = 1
    server_cpus: str | None = "0"
    load_cpus: str | None = "1"
    load_processes: int = 1
    warmup: float = 1.5
    window: float = 4.0
    grace: float = 1.0
    env: dict[str, str] = field(default_factory=dict)
    external_feed: bool = False  # scenario C: ticks come through Pub/Sub, not the sim feed


def symbols(count: int) -> list[str]:
    """`count` synthetic symbols: S000, S001, ..."""
    return [f"S{i:03d}" for i in range(count)]


def server_env(spec: PointSpec) -> dict[str, str]:
    env = {
        "TICKER_BROKER": "memory",
        "TICKER_SIM_SYMBOLS": ",".join(spec.symbols),
        "TICKER_SIM_RATE": "0" if spec.external_feed else f"{spec.rate:g}",
        "TICKER_ADMIN_TOKEN": "bench",
        "PYTHONPATH": f"{spec.stack.pythonpath}:{ROOT}",
    }
    env.update(spec.env)
    return env


def run_point(spec: PointSpec, logdir: Path, hooks: Any = None) -> dict[str, Any]:
    """Measure one point; `hooks` (scenario C) may start/measure/stop extra processes."""
    port = procs.free_port()
    log = logdir / f"{spec.stack.name}-{port}.log"
    server = procs.start(
        spec.stack.command(port, spec.workers),
        cpus=spec.server_cpus,
        env=server_env(spec),
        log=log,
        stdin=None,
        cwd=spec.stack.pythonpath,
    )
    load: LoadRun | None = None
    try:
        procs.wait_port(port, 30, server)
        time.sleep(0.5)
        rss_idle = procs.rss_bytes(procs.tree(server.pid))
        url = f"ws://127.0.0.1:{port}{spec.stack.path}"
        load = LoadRun(
            LoadSpec(
                url,
                spec.clients,
                spec.symbols,
                spec.per,
                spec.stack.proto,
                spec.load_processes,
                spec.load_cpus,
                connect_timeout=30 + spec.clients / 400,
            ),
            log,
        )
        ready = load.wait_ready(load.spec.connect_timeout + 15)
        if hooks is not None:
            hooks.started()
        time.sleep(spec.warmup)
        t0 = time.time() + 0.3
        t1 = t0 + spec.window
        load.measure(t0 * 1000, t1 * 1000, spec.grace * 1000)
        if hooks is not None:
            hooks.measure(t0, t1, spec.grace)
        pids = procs.tree(server.pid)
        _sleep_until(t0)
        cpu0 = procs.cpu_times(pids)
        split0 = procs.thread_cpu(server.pid)
        wait0 = procs.run_queue_wait(server.pid)
        sends0 = _send_record(port)
        _sleep_until(t1)
        cpu1 = procs.cpu_times(pids)
        split1 = procs.thread_cpu(server.pid)
        wait1 = procs.run_queue_wait(server.pid)
        sends1 = _send_record(port)
        rss_loaded = procs.rss_bytes(pids)
        summed, hist = load.results(spec.grace + 30)
        extra = hooks.results() if hooks is not None else {}
    finally:
        if load is not None:
            load.close()
        procs.stop(server)
    user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    point = _figures(spec, ready, summed, hist, user + system, rss_idle, rss_loaded)
    split = {
        "loop_cpu_s": round(split1[0] - split0[0], 3),
        "threads_cpu_s": round(split1[1] - split0[1], 3),
        "loop_wait_s": round(wait1 - wait0, 3),  # runnable, waiting for a CPU
    }
    split |= _send_figures(sends0, sends1)
    return point | {"server_sys_share": round(system / max(user + system, 1e-9), 3)} | split | extra


_BUCKET = re.compile(r'^ticker_publish_to_send_latency_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)
_WS_COUNTER = re.compile(
    r'^ticker_(frames_sent|direct_writes)_total\{transport="websocket"\} (\S+)$', re.M
)


@dataclass(frozen=True)
class SendRecord:
    """The ticker's own account of its sends, from /metrics: the publish-to-send histogram
    (cumulative `(le_s, count)`) and the WebSocket frames, of which direct writes."""

    buckets: list[tuple[float, float]]
    frames: float = 0.0
    direct: float = 0.0


def _send_record(port: int) -> SendRecord | None:
    """Read at both ends of the window (None for a stack without /metrics): the difference
    says how long the server took to write, apart from the kernel and the load client."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as answer:
            text = answer.read().decode()
    except (OSError, ValueError):
        return None
    buckets = [(float(le), float(n)) for le, n in _BUCKET.findall(text)]
    if not buckets:
        return None
    counters = {name: float(n) for name, n in _WS_COUNTER.findall(text)}
    return SendRecord(buckets, counters.get("frames_sent", 0.0), counters.get("direct_writes", 0.0))


def _send_figures(before: SendRecord | None, after: SendRecord | None) -> dict[str, Any]:
    """p50/p99 (ms, the upper bound of the bucket that holds them) of the server's sends in the
    window, one sample per frame (its oldest tick's age: the frame's worst); and the share of
    WebSocket frames that were direct writes (one tick, written from the ingest)."""
    if before is None or after is None or len(before.buckets) != len(after.buckets):
        return {}
    counts = [(le, a - b) for (le, b), (_, a) in zip(before.buckets, after.buckets, strict=True)]
    total = counts[-1][1]
    frames = after.frames - before.frames
    out: dict[str, Any] = {
        "server_send_frames": total,
        "direct_share": round((after.direct - before.direct) / frames, 3) if frames else None,
    }
    for name, q in (("server_send_p50", 0.5), ("server_send_p99", 0.99)):
        bound = next((le for le, n in counts if n >= q * total), None) if total else None
        out[name] = None if bound is None or bound == float("inf") else bound * 1000
    return out


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def _figures(
    spec: PointSpec,
    ready: dict[str, Any],
    summed: dict[str, Any],
    hist: Any,
    server_cpu: float,
    rss_idle: int,
    rss_loaded: int,
) -> dict[str, Any]:
    nominal = spec.rate * spec.window * spec.clients * spec.per / len(spec.symbols)
    subs = subscribers(spec.clients, spec.symbols, spec.per)
    produced = sum(n * subs.get(s, 0) for s, n in summed["produced"].items())
    expected = max(nominal, produced)
    received = summed["received"]
    pct = percentiles(hist)
    delivered = received / expected if expected else 0.0
    load_cpu = summed["cpu_s"] / max(summed["wall_s"], 1e-9) / spec.load_processes
    ok = (
        pct["p99"] is not None
        and pct["p99"] <= P99_BOUND_MS
        and delivered >= DELIVERED_BOUND
        and ready["failed"] == 0
    )
    return {
        "stack": spec.stack.name,
        "rate": spec.rate,
        "clients": spec.clients,
        "per": spec.per,
        "symbols": len(spec.symbols),
        "workers": spec.workers,
        "server_cpus": spec.server_cpus,
        "load_cpus": spec.load_cpus,
        "window_s": spec.window,
        "deliveries_per_s": round(received / spec.window),
        "expected_per_s": round(expected / spec.window),
        "produced_vs_nominal": round(produced / nominal, 4) if nominal else None,
        "delivered": round(delivered, 4),
        **pct,
        "ok": ok,
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_frac": round(server_cpu / spec.window, 3),
        "cpu_ms_per_1000": round(server_cpu * 1000 / (received / 1000), 3) if received else None,
        "rss_idle_mb": round(rss_idle / 2**20, 1),
        "rss_loaded_mb": round(rss_loaded / 2**20, 1),
        "rss_per_conn_kb": round((rss_loaded - rss_idle) / 1024 / spec.clients, 2),
        "frames_per_s": round(summed["frames"] / max(summed["wall_s"], 1e-9)),
        "ticks_per_frame": round(summed["ticks"] / summed["frames"], 2) if summed["frames"] else 0,
        "gaps": summed["gaps"],
        "reordered": summed["reordered"],
        "closed_early": summed["closedEarly"],
        "connected": ready["connected"],
        "failed": ready["failed"],
        "deflate_negotiated": ready["deflate"],
        "connect_s": round(ready["connect_s"], 2),
        "load_cpu_frac": round(load_cpu, 3),
        "load_bound": load_cpu >= LOAD_BOUND_CPU,
        "load_rss_mb": round(summed["rss_mb"], 1),
        "loadavg": os.getloadavg(),
    }

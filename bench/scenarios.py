"""The four scenarios of issue 5, as sequences of measurement points.

(A) hot: clients x 5 of 50 symbols, tick rate raised geometrically until p99 > 100 ms or < 97 %
    delivered, then one point between the last pass and the first failure (the best passing
    point is the figure; its resolution is about half a ladder step).
(B) many quiet clients: one symbol each, a low total rate; memory and CPU per delivery.
(C) real path: publisher -> Pub/Sub emulator -> server, with the bare emulator hop in the same run.
(D) two Hypercorn workers vs one (on this 2-core machine the load has to share the cores).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.point import PointSpec, run_point, symbols
from bench.stacks import STACKS

Log = Callable[[str], None]


@dataclass(frozen=True)
class Profile:
    """Sizes for a full or a quick run."""

    name: str
    a_clients: int = 1000
    a_start: float = 100.0  # ticks/s; x clients x 5 / 50 = deliveries/s
    a_factor: float = 1.5
    a_max_rate: float = 12_000.0
    window: float = 4.0
    warmup: float = 1.5
    b_clients: int = 10_000
    b_symbols: int = 100
    b_rate: float = 200.0
    c_clients: int = 1000
    c_per: int = 1  # symbols per client (of 50)
    c_rate: float = 1000.0
    c_window: float = 8.0
    c_warmup_rounds: int = 2  # rounds of C's points run first and counted in no figure
    c_repeat: int = 3  # measured rounds of C's points: its figures are their medians
    c_feed_nice: int = 10  # CPU priority of C's feed (publisher, emulator); 0: as the server


FULL = Profile("full")
QUICK = Profile(
    "quick",
    a_clients=500,
    a_start=200.0,
    a_factor=2.5,
    window=2.0,
    warmup=1.0,
    b_clients=2000,
    c_clients=300,
    c_rate=1000.0,
    c_window=3.0,
    c_warmup_rounds=0,
    c_repeat=1,
)


def _summary(point: dict[str, Any]) -> str:
    return (
        f"{point['stack']:>12} rate={point['rate']:<7g} workers={point['workers']} "
        f"deliv/s={point['deliveries_per_s']:<7} delivered={point['delivered']:.3f} "
        f"p50={point['p50']} p99={point['p99']} cpu={point['server_cpu_frac']:.2f} "
        f"ms/1k={point['cpu_ms_per_1000']} t/frame={point['ticks_per_frame']} "
        f"load={point['load_cpu_frac']:.2f} {'OK' if point['ok'] else 'FAIL'}"
    )


def _measure(spec: PointSpec, logdir: Path) -> dict[str, Any]:
    """One point; one that cannot be measured (clients never got in) is a failed point."""
    try:
        return run_point(spec, logdir)
    except (TimeoutError, RuntimeError) as exc:
        return {
            "stack": spec.stack.name,
            "rate": spec.rate,
            "clients": spec.clients,
            "workers": spec.workers,
            "ok": False,
            "error": str(exc),
            "deliveries_per_s": 0,
            "delivered": 0.0,
            "p50": None,
            "p99": None,
            "server_cpu_frac": 0.0,
            "cpu_ms_per_1000": None,
            "ticks_per_frame": 0,
            "load_cpu_frac": 0.0,
        }


def ladder(
    base: PointSpec, profile: Profile, logdir: Path, log: Log, start: float
) -> dict[str, Any]:
    """Raise the rate until the bound breaks; return every point and the best passing one.

    When even the first step fails, step down (by factor squared, at most three times).
    """
    points: list[dict[str, Any]] = []
    rate, last_ok = start, None
    while rate <= profile.a_max_rate:
        point = _measure(replace(base, rate=round(rate)), logdir)
        log(_summary(point))
        points.append(point)
        if not point["ok"]:
            break
        last_ok = rate
        rate *= profile.a_factor
    rate = start
    while last_ok is None and len(points) < 4:  # even the first step failed: step down
        rate /= profile.a_factor**2
        point = _measure(replace(base, rate=round(rate)), logdir)
        log(_summary(point))
        points.append(point)
        last_ok = rate if point["ok"] else None
    if last_ok is not None and not points[-1]["ok"]:
        middle = math.sqrt(last_ok * points[-1]["rate"])
        point = _measure(replace(base, rate=round(middle)), logdir)
        log(_summary(point))
        points.append(point)
    passing = [p for p in points if p["ok"]]
    best = max(passing, key=lambda p: p["deliveries_per_s"]) if passing else None
    return {"points": points, "best": best}


def scenario_a(
    stacks: list[str], profile: Profile, logdir: Path, log: Log, **kw: Any
) -> dict[str, Any]:
    out = {}
    for name in stacks:
        base = PointSpec(
            STACKS[name],
            0,
            profile.a_clients,
            symbols(50),
            5,
            window=profile.window,
            warmup=profile.warmup,
            **kw,
        )
        out[name] = ladder(base, profile, logdir, log, profile.a_start)
    return out


def scenario_b(
    stacks: list[str], profile: Profile, logdir: Path, log: Log, **kw: Any
) -> dict[str, Any]:
    out = {}
    for name in stacks:
        spec = PointSpec(
            STACKS[name],
            profile.b_rate,
            profile.b_clients,
            symbols(profile.b_symbols),
            1,
            load_processes=2,
            window=profile.window + 1,
            warmup=profile.warmup + 1.5,
            **kw,
        )
        point = _measure(spec, logdir)
        log(_summary(point) + f" rss/conn={point.get('rss_per_conn_kb')} KB")
        out[name] = point
    return out


def scenario_d(
    profile: Profile, logdir: Path, log: Log, one_worker_best: float, **kw: Any
) -> dict[str, Any]:
    """Two workers on both cores (load on both too) vs the one-worker (A) figure."""
    base = PointSpec(
        STACKS["ticker"],
        0,
        profile.a_clients,
        symbols(50),
        5,
        workers=2,
        server_cpus="0,1",
        load_cpus="0,1",
        window=profile.window,
        warmup=profile.warmup,
        **kw,
    )
    per_tick = profile.a_clients * 5 / 50  # deliveries per tick of the feed
    start = max(profile.a_start, one_worker_best / per_tick / profile.a_factor**2)
    return ladder(base, profile, logdir, log, start)

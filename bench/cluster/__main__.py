"""`python -m bench.cluster`: the cluster rehearsal (see bench/cluster/__init__.py).

python -m bench.cluster                     # measured rehearsal, writes bench/results/cluster-*
python -m bench.cluster --clients 200 --scenarios rolling,affinity
python -m bench.cluster serve               # `make cluster`: run it for a person to look at
python -m bench.cluster presence            # control-topic cost against N instances
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench.cluster import rehearsal, report
from bench.cluster.clients import Crowd
from bench.cluster.stack import Cluster, Health, missing_parts

SCENARIOS = ("rolling", "crash", "scaleout", "affinity")


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by every child


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "mode", nargs="?", default="rehearse", choices=("rehearse", "serve", "presence")
    )
    parser.add_argument("--instances", type=int, default=4, help="instances at start (default 4)")
    parser.add_argument("--clients", type=int, help="clients (rehearse: 1000; serve: 0)")
    parser.add_argument("--rate", type=float, default=10.0, help="publisher ticks/s (default 10)")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma list of " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--scale-to", type=int, default=8, help="scale-out target (default 8)")
    parser.add_argument(
        "--check-interval", default="5s", help="front-end readiness check interval (App Engine: 5s)"
    )
    parser.add_argument("--port", type=int, help="front-end port (serve: 8080 when free)")
    parser.add_argument("--out", type=Path, default=report.RESULTS)
    parser.add_argument("--peers", default="1,10,25,50,100,200", help="presence: N values")
    parser.add_argument("--protocols", default="v1,v2", help="presence: heartbeat formats")
    parser.add_argument("--seconds", type=float, default=20.0, help="presence: window per point")
    parser.add_argument(
        "--baseline", type=Path, help="presence: a earlier presence-*.json to show beside (before)"
    )
    parser.add_argument(
        "--price-canary",
        type=float,
        default=2.0,
        help="presence v2: simulated peers' price-topic canary every S s (what-if; servers: 2)",
    )
    parser.add_argument("--peer-symbols", type=int, default=100, help="presence: symbols per peer")
    parser.add_argument(
        "--control-canary", type=float, default=5.0, help="presence v2: control canary every S s"
    )
    return parser.parse_args(argv)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    missing = missing_parts()
    if missing:
        print("bench.cluster: missing " + "; ".join(missing), file=sys.stderr)
        return 1
    _raise_nofile()
    if args.mode == "serve":
        return serve(args)
    if args.mode == "presence":
        from bench.cluster.presence import run as run_presence

        return run_presence(args)
    return asyncio.run(rehearse(args))


def _logger() -> Any:
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    return log


def serve(args: argparse.Namespace) -> int:
    """Run the cluster until Ctrl-C/SIGTERM, print where everything is, stop it all by pid."""
    log = _logger()
    port = args.port or (8080 if _port_free(8080) else None)
    cluster = Cluster(instances=args.instances, rate=args.rate, frontend_port=port,
                      health=Health(interval=args.check_interval), log=log)  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        cluster.start()
        print(_banner(cluster), flush=True)
        if args.clients:
            asyncio.run(_hold_clients(cluster, args.clients))
        else:
            while True:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        log("stopping everything (by pid)")
        cluster.stop()
    return 0


async def _hold_clients(cluster: Cluster, count: int) -> None:
    crowd = Crowd(cluster.ws_url, cluster.symbols)
    await crowd.add(count, rate=100)
    print(f"  {count} clients connected through the front end", flush=True)
    try:
        await asyncio.Event().wait()  # until Ctrl-C cancels the run
    finally:
        await crowd.stop()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _banner(cluster: Cluster) -> str:
    lines = [
        "",
        f"  ticker cluster: {len(cluster.instances)} instances behind HAProxy, Pub/Sub emulator "
        f"{cluster.emulator.host if cluster.emulator else '?'}, "
        f"publisher at {cluster.rate} ticks/s",
        f"  live prices   {cluster.url}/",
        f"  admin         {cluster.url}/admin   token: {cluster.token}",
        f"  stats API     {cluster.url}/admin/api/stats",
        f"  front end     {cluster.stats_url}  (HAProxy stats; /metrics for Prometheus)",
    ]
    if cluster.prometheus_url:
        lines.append(
            f"  Prometheus    {cluster.prometheus_url}/targets"
            "   (Grafana: import deploy/grafana-dashboard.json)"
        )
    for inst in sorted(cluster.instances.values(), key=lambda i: i.id):
        lines.append(f"  instance {inst.id:8} {inst.url}  pid {inst.pid}  (slot {inst.slot.name})")
    lines += [f"  logs          {cluster.workdir}", "  Ctrl-C stops everything.", ""]
    return "\n".join(lines)  # fmt: skip


async def rehearse(args: argparse.Namespace) -> int:
    log = _logger()
    clients = 1000 if args.clients is None else args.clients
    wanted = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    health = Health(interval=args.check_interval)
    slots = max(args.scale_to, args.instances) * 2 + 2
    cluster = Cluster(instances=args.instances, slots=slots, rate=args.rate, health=health, log=log)
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": report.machine(), "loadavg_start": os.getloadavg(),
        "config": {"instances": args.instances, "clients": clients, "rate": args.rate,
                   "symbols": len(cluster.symbols), "symbols_per_client": 5,
                   "health": vars(health), "scale_to": args.scale_to},
        "scenarios": {},
    }  # fmt: skip
    t_start = time.monotonic()
    await asyncio.to_thread(cluster.start)
    crowd = Crowd(cluster.ws_url, cluster.symbols)
    try:
        log(f"cluster up at {cluster.url}; connecting {clients} clients")
        t = time.monotonic()
        await crowd.add(clients, rate=200)
        results["connect"] = {"clients": clients, "took_s": round(time.monotonic() - t, 1),
                              "by_slot": crowd.by_slot(), **crowd.totals()}  # fmt: skip
        log(f"{crowd.connected()} connected: {crowd.by_slot()}")
        results["dashboard_at_start"] = await rehearsal.view_matches(cluster, crowd, 15)
        sc = results["scenarios"]
        ttl = 2.0 * 3.5  # TICKER_PRESENCE_INTERVAL x (TICKER_PRESENCE_MISSES + 0.5), defaults
        if "rolling" in wanted:
            sc["rolling"] = await rehearsal.rolling_deploy(cluster, crowd, log)
        if "crash" in wanted:
            sc["crash"] = await rehearsal.crash(cluster, crowd, log, ttl)
        if "scaleout" in wanted:
            add = max(8, clients // 2)
            sc["scaleout"] = await rehearsal.scale_out(cluster, crowd, log, args.scale_to, add)
        if "affinity" in wanted:
            sc["affinity"] = await rehearsal.affinity_lost(cluster, log)
        results["prometheus"] = _prometheus_figures(cluster)
        results["final"] = rehearsal.final_counts(crowd)
    finally:
        await crowd.stop()
        await asyncio.to_thread(cluster.stop)
    results["loadavg_end"] = os.getloadavg()
    results["duration_s"] = round(time.monotonic() - t_start)
    path = report.write(results, args.out)
    log(f"wrote {path} and {args.out / 'cluster-latest.md'}")
    print((args.out / "cluster-latest.md").read_text())
    return 0


def _prometheus_figures(cluster: Cluster) -> dict[str, Any]:
    """A few of the dashboard's queries, answered by the real Prometheus at the end."""
    queries = {
        "connections_total": "sum(ticker_connections)",
        "instances_up": 'sum(up{job="ticker"})',
        "ticks_sent_per_s": "sum(rate(ticker_ticks_sent_total[30s]))",
        "frontend_up": 'sum(up{job="frontend"})',
    }
    out: dict[str, Any] = {}
    for name, expr in queries.items():
        result = cluster.prometheus_query(expr)
        out[name] = float(result[0]["value"][1]) if result else None
    return out


if __name__ == "__main__":
    sys.exit(main())

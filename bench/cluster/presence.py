"""Presence at scale: what the dashboard's heartbeats cost one instance in a cluster of N.

Every instance publishes its stats on the control topic and reads everybody's (N^2 deliveries
cluster-wide), and every instance's Pub/Sub broker publishes a canary every 2 s on each topic
it reads (the price topic and the control topic) which every other instance receives too. Rather
than run 200 processes, one real instance (`python -m ticker.serve` on the emulator) hears N - 1
simulated peers: their heartbeats (the real format, `--protocols v1,v2`, on the schedule the real
code would follow at that N) and their canaries on both topics. Measured per point: messages and
bytes per second into the instance, the instance's own CPU (user + sys of the process) over a
window against the N = 1 baseline, and that the instance's cluster view really lists N instances.
Cluster-wide figures and Pub/Sub cost follow from those (billing: max(size, 1,000 B) per message,
$40/TiB: each heartbeat is its own publish request and, at these rates, its own delivery).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from bench import procs
from bench.cluster import report
from bench.cluster.stack import PROJECT, Cluster, http_json
from ticker.ops.emulator import Emulator
from ticker.ops.procs import wait_until

TIB = 2**40
MONTH_S = 30 * 86_400
USD_PER_TIB = 40.0
BILLED_MIN = 1000
CANARY_INTERVAL = 2.0  # ticker.broker.pubsub: every broker, every topic it reads


def billed(size: int) -> int:
    return max(BILLED_MIN, size)


class Peers:
    """N - 1 simulated instances publishing heartbeats and canaries, on a thread."""

    def __init__(
        self, host: str, topic: str, n: int, protocol: str, template: dict[str, Any],
        symbols: int, interval: float, control_canary: float, price_canary: float = 2.0,
    ) -> None:  # fmt: skip
        from google.cloud import pubsub_v1

        os.environ["PUBSUB_EMULATOR_HOST"] = host
        self.client = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_messages=1)  # one request each
        )
        self.price = self.client.topic_path(PROJECT, topic)
        self.control = self.client.topic_path(PROJECT, f"{topic}-control")
        self.n, self.protocol, self.interval = n, protocol, interval
        self.control_canary = control_canary
        self.price_canary = price_canary
        self.ids = [f"peer{k:04d}-sim{random.randrange(16**6):06x}" for k in range(n - 1)]
        self.template = template
        self.symbol_names = [f"S{j:04d}" for j in range(symbols)]
        self.sent = {"beats": 0, "beat_bytes": 0, "canaries": 0, "canary_bytes": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def period(self) -> float:
        if self.protocol == "v1":
            return self.interval
        from dashboard.presence import beat_period

        return beat_period(self.n - 1, self.interval)

    def beat(self, index: int, number: int) -> bytes:
        stats = dict(self.template)
        stats["id"] = self.ids[index]
        stats["symbols"] = {s: random.randrange(1, 500) for s in self.symbol_names}
        connections = sum(stats["by_transport"].values())
        stats["connections"] = connections
        if self.protocol == "v1":
            message = {"v": 1, "kind": "beat", "id": self.ids[index], "beat": number,
                       "stats": stats}  # fmt: skip
        else:
            from dashboard.presence import beat_message

            message = beat_message(self.ids[index], number, stats, self.period())
        return orjson.dumps(message)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        # every peer: a beat every period, a canary on each topic, each on its own phase
        now = time.monotonic()
        jobs: list[tuple[float, str, int]] = []
        for i in range(len(self.ids)):
            jobs.append((now + random.random() * self.period(), "beat", i))
            jobs.append((now + random.random() * self.price_canary, "price-canary", i))
            jobs.append((now + random.random() * self.control_canary, "control-canary", i))
        beats = [0] * len(self.ids)
        while jobs and not self._stop.is_set():
            jobs.sort()
            due, kind, i = jobs[0]
            wait = due - time.monotonic()
            if wait > 0:
                self._stop.wait(min(wait, 0.05))
                continue
            if kind == "beat":
                beats[i] += 1
                data = self.beat(i, beats[i])
                self.client.publish(self.control, data, kind="beat")
                self.sent["beats"] += 1
                self.sent["beat_bytes"] += len(data)
                step = self.period()
            else:
                sub = f"ticker-{self.ids[i]}" + ("-ctl" if kind == "control-canary" else "")
                data = orjson.dumps({"canary": sub, "ts": time.time_ns() // 1_000_000})
                topic = self.control if kind == "control-canary" else self.price
                self.client.publish(topic, data, ticker_canary=sub)
                self.sent["canaries"] += 1
                self.sent["canary_bytes"] += len(data)
                step = self.control_canary if kind == "control-canary" else self.price_canary
            jobs[0] = (due + step, kind, i)


def _cpu(pid: int) -> float:
    user, system = procs.cpu_times(procs.tree(pid))
    return user + system


def measure_point(
    cluster: Cluster, inst: Any, n: int, protocol: str, args: argparse.Namespace,
    template: dict[str, Any], log: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    assert cluster.emulator is not None
    control_canary = CANARY_INTERVAL if protocol == "v1" else args.control_canary
    price_canary = CANARY_INTERVAL if protocol == "v1" else args.price_canary
    peers = Peers(cluster.emulator.host, cluster.topic, n, protocol, template,
                  args.peer_symbols, 2.0, control_canary, price_canary)  # fmt: skip
    period = peers.period()
    peers.start()
    try:
        # warm up: every peer beat twice and the view lists all of them
        def full() -> bool:
            status, body = http_json(inst.url + "/admin/api/stats", cluster.token)
            return status == 200 and len(body["cluster"]["instances"]) == n

        wait_until(full, within=3 * period + 30, what=f"{n} instances in the view", every=0.5)
        sent0, cpu0, t0 = dict(peers.sent), _cpu(inst.pid), time.monotonic()
        time.sleep(args.seconds)  # the measurement window: nothing to wait for but time
        sent1, cpu1, t1 = dict(peers.sent), _cpu(inst.pid), time.monotonic()
        status, body = http_json(inst.url + "/admin/api/stats", cluster.token)
        seen = len(body["cluster"]["instances"]) if status == 200 else None
    finally:
        peers.stop()
    dt_s = t1 - t0
    beats = (sent1["beats"] - sent0["beats"]) / dt_s
    canaries = (sent1["canaries"] - sent0["canaries"]) / dt_s
    beat_bytes = (sent1["beat_bytes"] - sent0["beat_bytes"]) / dt_s
    canary_bytes = (sent1["canary_bytes"] - sent0["canary_bytes"]) / dt_s
    beat_size = beat_bytes / beats if beats else 0
    canary_size = canary_bytes / canaries if canaries else 0
    # cluster-wide: each of N instances publishes what one simulated peer does, N receive it
    per_peer_beats = 1 / period
    per_peer_canaries = 1 / price_canary + 1 / control_canary
    publishes = n * (per_peer_beats + per_peer_canaries)
    deliveries = n * (n - 1) * (per_peer_beats + per_peer_canaries)
    billed_per_s = (n + n * (n - 1)) * (
        per_peer_beats * billed(round(beat_size)) + per_peer_canaries * billed(round(canary_size))
    )
    tib_month = billed_per_s * MONTH_S / TIB
    label = protocol
    if price_canary != CANARY_INTERVAL:
        label = f"{protocol}, price canaries every {price_canary:g} s (projection)"
    point = {
        "protocol": label, "n": n, "period_s": round(period, 2), "seen_in_view": seen,
        "msgs_per_s": round(beats + canaries, 2), "beats_per_s": round(beats, 2),
        "canaries_per_s": round(canaries, 2), "bytes_per_s": round(beat_bytes + canary_bytes),
        "beat_bytes": round(beat_size), "canary_bytes": round(canary_size),
        "cpu_s": round(cpu1 - cpu0, 3), "window_s": round(dt_s, 1),
        "cpu_pct": round(100 * (cpu1 - cpu0) / dt_s, 2),
        "cluster_publishes_per_s": round(publishes, 1),
        "cluster_deliveries_per_s": round(deliveries, 1),
        "cluster_tib_per_month": round(tib_month, 3),
        "usd_per_month": round(tib_month * USD_PER_TIB, 1),
    }  # fmt: skip
    log(
        f"{protocol} N={n}: {point['msgs_per_s']} msgs/s, {point['bytes_per_s']} B/s in; "
        f"CPU {point['cpu_pct']} %; view {seen}; cluster {point['cluster_deliveries_per_s']} "
        f"deliveries/s, ${point['usd_per_month']}/month"
    )
    return point


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    cluster = Cluster(instances=0, prometheus=False, publisher=False, log=log)
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": report.machine(), "loadavg_start": os.getloadavg(),
        "seconds": args.seconds, "peer_symbols": args.peer_symbols, "points": [],
    }  # fmt: skip
    try:
        cluster.emulator = Emulator(project=PROJECT)
        cluster.emulator.start()
        for protocol in [p for p in args.protocols.split(",") if p]:
            inst = cluster.start_instance(f"probe-{protocol}")
            _, body = http_json(inst.url + "/admin/api/stats", cluster.token)
            template = body["instance"]
            for n in [int(x) for x in args.peers.split(",") if x]:
                point = measure_point(cluster, inst, n, protocol, args, template, log)
                results["points"].append(point)
            procs.stop(inst.proc, 25)
            cluster.forget(inst)
    finally:
        cluster.stop()
    base = {p["protocol"]: p["cpu_pct"] for p in results["points"] if p["n"] == 1}
    for p in results["points"]:
        p["cpu_pct_over_n1"] = round(p["cpu_pct"] - base.get(p["protocol"], 0.0), 2)
    results["loadavg_end"] = os.getloadavg()
    if args.baseline:
        before = orjson.loads(args.baseline.read_text())
        results["baseline"] = {"file": args.baseline.name, "commit": before["machine"]["commit"]}
        results["points"] = [
            {**p, "protocol": f"{p['protocol']} (before, {before['machine']['commit']})"}
            for p in before["points"]
        ] + results["points"]
    path = report.write(results, args.out, kind="presence")
    log(f"wrote {path}")
    print((args.out / "presence-latest.md").read_text())
    return 0

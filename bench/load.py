"""Drive the Node load client (bench/node/load.js) and turn its histograms into figures.

Rule: the load runs in processes of its own, pinned away from the server; each prints one JSON
object per line (`ready`, then `result`), and takes `measure`/`quit` commands on stdin.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs

NODE_DIR = Path(__file__).parent / "node"


@dataclass
class LoadSpec:
    """Who connects where: `clients` clients, each subscribed to `per` of `symbols`."""

    url: str
    clients: int
    symbols: Sequence[str]
    per: int
    proto: str = "ticker"  # or "socketio"
    processes: int = 1
    cpus: str | None = "1"
    deflate: str = "offer"  # offer permessage-deflate like a browser does
    connect_timeout: float = 60.0  # seconds; clients not subscribed by then count as failed


@dataclass
class Histogram:
    """Latency counts in fixed buckets (ms), merged across load processes."""

    bucket_ms: float = 0.1
    counts: dict[int, float] = field(default_factory=dict)

    def add(self, sparse: dict[str, float]) -> None:
        for key, count in sparse.items():
            self.counts[int(key)] = self.counts.get(int(key), 0) + count

    @property
    def total(self) -> float:
        return sum(self.counts.values())

    def percentile(self, q: float) -> float | None:
        """The upper edge of the bucket holding the q-th percentile, in ms."""
        total = self.total
        if not total:
            return None
        rank, seen = total * q / 100, 0.0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return round((key + 1) * self.bucket_ms, 2)
        return None


class LoadRun:
    """The load processes of one measurement point."""

    def __init__(self, spec: LoadSpec, log: Path) -> None:
        self.spec = spec
        self._lines: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
        self._procs: list[subprocess.Popen[bytes]] = []
        share = [spec.clients // spec.processes] * spec.processes
        share[0] += spec.clients - sum(share)
        offset = 0
        for index, count in enumerate(share):
            cmd = [
                "node",
                str(NODE_DIR / "load.js"),
                "--url",
                spec.url,
                "--proto",
                spec.proto,
                "--clients",
                str(count),
                "--offset",
                str(offset),
                "--per",
                str(spec.per),
                "--symbols",
                ",".join(spec.symbols),
                "--deflate",
                spec.deflate,
                "--connect-timeout",
                str(int(spec.connect_timeout * 1000)),
            ]
            proc = procs.start(
                cmd,
                cpus=spec.cpus,
                log=log,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            threading.Thread(target=self._pump, args=(index, proc), daemon=True).start()
            self._procs.append(proc)
            offset += count

    def _pump(self, index: int, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if raw.startswith(b"{"):
                self._lines.put((index, json.loads(raw)))

    def _collect(self, event: str, timeout: float) -> list[dict[str, Any]]:
        got: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(self._procs):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"load clients sent {len(got)}/{len(self._procs)} '{event}'")
            try:
                index, msg = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if msg.get("event") == event:
                got[index] = msg
        return [got[i] for i in sorted(got)]

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Block until every process has connected (or given up on) its clients."""
        ready = self._collect("ready", timeout)
        return {
            "connected": sum(r["connected"] for r in ready),
            "subscribed": sum(r["subscribed"] for r in ready),
            "failed": sum(r["failed"] for r in ready)
            + sum(r["connected"] - r["subscribed"] for r in ready),
            "deflate": sum(r["deflate"] for r in ready),
            "connect_s": max(r["connect_s"] for r in ready),
            "errors": [e for r in ready for e in r["errors"]][:5],
        }

    def measure(self, t0_ms: float, t1_ms: float, grace_ms: float) -> None:
        """Tell every process which tick timestamps to count."""
        line = json.dumps({"cmd": "measure", "t0": t0_ms, "t1": t1_ms, "grace": grace_ms})
        for proc in self._procs:
            assert proc.stdin is not None
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()

    def results(self, timeout: float) -> tuple[dict[str, Any], Histogram]:
        """Wait for every process's result; return the summed counters and merged histogram."""
        results = self._collect("result", timeout)
        hist = Histogram(bucket_ms=results[0]["bucket_ms"])
        for res in results:
            hist.add(res["hist"])
        keys = ("received", "ticks", "frames", "bytes", "gaps", "reordered", "closedEarly")
        summed: dict[str, Any] = {k: sum(r[k] for r in results) for k in keys}
        summed["cpu_s"] = sum(r["cpu_s"] for r in results)
        summed["wall_s"] = max(r["wall_s"] for r in results)
        summed["rss_mb"] = sum(r["rss_mb"] for r in results)
        produced: dict[str, int] = {}
        for res in results:
            for symbol, count in res["produced"].items():
                produced[symbol] = max(produced.get(symbol, 0), count)
        summed["produced"] = produced
        return summed, hist

    def close(self) -> None:
        for proc in self._procs:
            procs.stop(proc, timeout=3)


def subscribers(clients: int, symbols: Sequence[str], per: int) -> dict[str, int]:
    """How many clients follow each symbol (load.js: client i takes (i*per + j) % len(symbols))."""
    counts = dict.fromkeys(symbols, 0)
    for i in range(clients):
        for j in range(per):
            counts[symbols[(i * per + j) % len(symbols)]] += 1
    return counts


def percentiles(
    hist: Histogram, qs: Iterable[float] = (50, 90, 99, 99.9)
) -> dict[str, float | None]:
    """p50/p90/p99/p99.9 of a histogram, keyed like `p99`."""
    return {f"p{q:g}".replace(".", "_"): hist.percentile(q) for q in qs}

"""Scenario C: publisher -> Pub/Sub emulator -> server -> clients, and the bare emulator hop.

Rule: one topic, two subscriptions (the server's own and the hop's), the same published ticks and
the same measurement window, so "added p99" = server-path p99 - hop p99 of one run. The load is
pinned to the load core; the publisher, the hop, the emulator (a JVM that needs more than what is
left of one core) and the server float over both: pinned to one core, the server's Pub/Sub client
threads fell seconds behind the hop at 1,000 msg/s with the process ~10 % busy (bench/README.md),
and the publisher beside 1,000 clients on the load core made only ~10,500 of 20,000 ticks/s.
Points (issue 8): 1,000 ticks/s one tick per message (the old wire format, the billing baseline),
then packed (`--pack-ms 10`) at 1,000 / 5,000 / 20,000 ticks/s, 2,000 symbols, 1,000 clients x 5
symbols, and 20,000 ticks/s with a single client (the ingest cost alone), on asyncio's own loop
(what `ticker.serve` runs) and on uvloop (`TICKER_EVENT_LOOP=uvloop`). The server is the production
entrypoint (`python -m ticker.serve`). Per point: delivered, p50/p99 and what the
service adds over the hop, server CPU per 1,000 ticks ingested split into the event loop (main
thread) and the Pub/Sub client's threads, messages/s, ticks per message, and billed bytes per
tick (Pub/Sub bills >= 1,000 bytes per message: one publish plus one delivery per subscription),
and the CPU of every other process of the pipeline in the same window (publisher, emulator, hop;
the load client's comes from itself): on 2 cores they compete with the server for CPU.
`python -m bench --scenarios C` runs it alone.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench import procs
from bench.load import Histogram, percentiles
from bench.point import PointSpec, run_point, symbols
from bench.scenarios import Log, Profile, _summary
from bench.stacks import ROOT, STACKS
from ticker.ops import emulator as runner
from ticker.ops import procs as ops_procs

PROJECT = "ticker-bench"


def start_emulator(logdir: Path, cpus: str, nice: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    """Start the real emulator on a free port; return it and its host:port once it answers."""
    port = procs.free_port()
    host = f"127.0.0.1:{port}"
    data_dir = logdir / f"emulator-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = runner.start_command(host, PROJECT, data_dir)
    proc = procs.start(cmd, cpus=cpus, log=logdir / "emulator.log", nice=nice)
    try:
        ops_procs.wait_ready(
            proc,
            lambda: runner.answers(host),
            within=90,
            what="the emulator answering",
            every=0.3,
        )
    except (RuntimeError, TimeoutError):
        procs.stop(proc)
        raise RuntimeError(f"the Pub/Sub emulator did not answer on {host}") from None
    return proc, host


class RealPathHooks:
    """Starts the hop subscriber and the publisher once the clients are connected."""

    def __init__(
        self,
        host: str,
        topic: str,
        syms: list[str],
        rate: float,
        logdir: Path,
        cpus: str,
        pack_ms: float = 10.0,
        nice: int = 0,
    ) -> None:
        self.env = {
            "PUBSUB_EMULATOR_HOST": host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "PYTHONPATH": str(ROOT),
        }
        self.topic, self.syms, self.rate, self.pack_ms = topic, syms, rate, pack_ms
        self.logdir, self.cpus, self.nice = logdir, cpus, nice  # nice: the publisher's
        self.hop: subprocess.Popen[bytes] | None = None
        self.publisher: subprocess.Popen[bytes] | None = None
        self.emulator_pid: int | None = None  # its CPU is read over the window too
        self._cpu: dict[str, float] = {}  # cores used in the window, per process
        self._lines: list[dict[str, Any]] = []
        self._got = threading.Condition()

    def _pump(self) -> None:
        assert self.hop is not None
        assert self.hop.stdout is not None
        for raw in self.hop.stdout:
            if raw.startswith(b"{"):
                with self._got:
                    self._lines.append(json.loads(raw))
                    self._got.notify_all()

    def _wait(self, event: str, timeout: float) -> dict[str, Any]:
        with self._got:
            ok = self._got.wait_for(lambda: any(m["event"] == event for m in self._lines), timeout)
            if not ok:
                raise TimeoutError(f"hop subscriber sent no '{event}'")
            return next(m for m in self._lines if m["event"] == event)

    def started(self) -> None:
        log = self.logdir / "realpath.log"
        self.hop = procs.start(
            [sys.executable, "-m", "bench.hop", PROJECT, self.topic],
            cpus=None,  # floats like the server: a starved hop would flatter "added"
            env=self.env,
            log=log,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        self._wait("ready", 60)
        self.publisher = procs.start(
            [
                sys.executable,
                "-m",
                "publisher",
                "--symbols",
                ",".join(self.syms),
                "--rate",
                f"{self.rate:g}",
                "--duration",
                "0",
                "--topic",
                self.topic,
                "--pack-ms",
                f"{self.pack_ms:g}",
            ],
            # floats: on the load core beside 1,000 clients it fell to ~10,500 ticks/s at 20,000
            cpus=None,
            env=self.env,
            log=log,
            nice=self.nice,
        )

    def measure(self, t0: float, t1: float, grace: float) -> None:
        assert self.hop is not None
        assert self.hop.stdin is not None
        line = json.dumps(
            {"cmd": "measure", "t0": t0 * 1000, "t1": t1 * 1000, "grace": grace * 1000}
        )
        self.hop.stdin.write(line.encode() + b"\n")
        self.hop.stdin.flush()
        threading.Thread(target=self._read_cpu, args=(t0, t1), daemon=True).start()

    def _read_cpu(self, t0: float, t1: float) -> None:
        """The CPU of the rest of the pipeline over [t0, t1): where the machine's cores went."""
        pids = {
            "publisher": self.publisher.pid if self.publisher is not None else None,
            "hop": self.hop.pid if self.hop is not None else None,
            "emulator": self.emulator_pid,
        }
        trees = {name: procs.tree(pid) for name, pid in pids.items() if pid is not None}
        time.sleep(max(0.0, t0 - time.time()))
        before = {name: sum(procs.cpu_times(tree)) for name, tree in trees.items()}
        time.sleep(max(0.0, t1 - time.time()))
        for name, tree in trees.items():
            self._cpu[name] = round((sum(procs.cpu_times(tree)) - before[name]) / (t1 - t0), 3)

    def results(self) -> dict[str, Any]:
        try:
            res = self._wait("result", 60)
        finally:
            for proc in (self.publisher, self.hop):
                if proc is not None:
                    procs.stop(proc)
        hist = Histogram(bucket_ms=res["bucket_ms"])
        hist.add(res["hist"])
        pct = percentiles(hist)
        return {
            **{f"{name}_cpu_frac": used for name, used in self._cpu.items()},
            "hop_received": res["received"],
            "hop_window_messages": res["window_messages"],
            "hop_window_bytes": res["window_bytes"],
            "hop_window_billed": res["window_billed"],
            **{f"hop_{k}": v for k, v in pct.items()},
        }


Point = tuple[str, float, float, bool]  # name, ticks/s, --pack-ms, with the clients
C_POINTS: tuple[Point, ...] = (
    # name, ticks/s, --pack-ms, with the clients (else one client: ingest alone)
    ("1k unpacked", 1000.0, 0.0, True),
    ("1k", 1000.0, 10.0, True),
    ("5k", 5000.0, 10.0, True),
    ("20k", 20000.0, 10.0, True),
    ("20k ingest only", 20000.0, 10.0, False),  # asyncio's loop, what ticker.serve runs
    ("20k ingest only, uvloop", 20000.0, 10.0, False),  # TICKER_EVENT_LOOP=uvloop
)
C_SYMBOLS = 2000
C_PER = 5
C_POINT_NAMES = tuple(name for name, *_ in C_POINTS)  # what `--point` accepts


def scenario_c(
    profile: Profile,
    logdir: Path,
    log: Log,
    load_cpus: str = "1",
    only: list[str] | None = None,
    feed_nice: int = 0,
    repeat: int = 1,
    warmup_rounds: int = 0,
    **kw: Any,
) -> dict[str, Any]:
    """Every point of C (or those named in `only`, from `C_POINT_NAMES`) on one emulator;
    returns {"points": [...], "runs": [...], "warmup_runs": [...]}.

    With `repeat` > 1 the whole sequence of points runs that many times (round-robin, so a
    slow spell of the machine hits every point alike); "points" then holds each point's
    medians (`median_of_runs`) and "runs" every single run. `warmup_rounds` rounds of every
    point go first and count in no figure ("warmup_runs" keeps them): the emulator is a JVM
    whose JIT is still compiling in its first minutes (`c_schedule`).

    `feed_nice` > 0 runs the feed (the publisher and the emulator) at that lower CPU priority,
    and the server and the two that measure (the hop and the load client) at the normal one.
    In production the feed runs elsewhere, not on an instance's cores; here it took 0.4-0.8 of
    the 2 cores and made the server's loop wait for a CPU 1.4-2.9 s of each 8 s window. Niced,
    it delays the hop's messages as much as the server's, so "added" is not flattered: the hop
    and the load client still compete with the server as equals.
    """
    # Pinned to one core beside the publisher and the load, the JVM fell seconds behind at
    # 500 msg/s (hop p99 1.4 s); on both cores it answers in tens of ms. So it floats.
    emulator, host = start_emulator(logdir, "0,1", feed_nice)
    env_extra = kw.pop("env", {})
    if only:
        selected = [spec for spec in C_POINTS if spec[0] in only]
    elif profile.name == "quick":
        selected = [spec for spec in C_POINTS if spec[0] in ("1k", "20k")]
    else:
        selected = list(C_POINTS)
    runs: list[dict[str, Any]] = []
    warmups: list[dict[str, Any]] = []
    try:
        for (name, rate, pack_ms, with_clients), run, label in c_schedule(
            selected, warmup_rounds, repeat
        ):
            extra = dict(env_extra)
            if "uvloop" in name:
                extra["TICKER_EVENT_LOOP"] = "uvloop"
            point = _c_point(
                profile, logdir, host, emulator.pid, rate, pack_ms, with_clients, load_cpus,
                extra, kw, feed_nice,
            )  # fmt: skip
            point.update(feed_nice=feed_nice, name=name, run=run)
            (runs if run > 0 else warmups).append(point)
            _log_point(log, f"{name}{label}", point)
    finally:
        procs.stop(emulator)
    points = [median_of_runs([r for r in runs if r["name"] == spec[0]]) for spec in selected]
    return {"points": points, "runs": runs, "warmup_runs": warmups}


def c_schedule(
    selected: list[Point], warmup_rounds: int, repeat: int
) -> list[tuple[Point, int, str]]:
    """The order C runs its points in: (point, run, label for the log). Warm-up rounds first,
    as runs ..., -1, 0 (counted in no figure), then runs 1..`repeat`, each round every point.

    Why warm-up rounds: the emulator is a JVM whose JIT is still compiling in its first
    minutes. In three full `--repeat 3` runs (2026-12-02) it took 0.21-0.27 of a core at
    20,000 ticks/s in the first round and 0.07-0.12 in the second and third, and the first
    round's 20k point added 109-125 ms p99 where the later ones added 44-62. Warming it with
    the publisher and a plain subscriber alone did not do it (even 180 s at 20,000 ticks/s left
    it at 0.34 of a core for the next point, with the server): the points themselves do.
    """
    order: list[tuple[Point, int, str]] = []
    for index in range(warmup_rounds):
        label = f" (warm-up {index + 1}/{warmup_rounds}, not counted)"
        order += [(spec, index - warmup_rounds + 1, label) for spec in selected]
    for run in range(1, repeat + 1):
        label = "" if repeat == 1 else f" (run {run}/{repeat})"
        order += [(spec, run, label) for spec in selected]
    return order


WORST_OF_RUNS = {"delivered": min, "delivered_of_made": min, "gaps": max, "reordered": max,
                 "closed_early": max, "failed": max}  # fmt: skip


def median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One point's runs as one: every numeric figure's median (None when a run lacks it), the
    other fields from the first run, `runs` = how many, `added_p99_range` = [min, max].

    Medians per figure (added p99 is each run's own p99 minus its own hop p99, then the median
    of those), because one run's tail says more about the machine's moment than about the code.
    Correctness figures (`WORST_OF_RUNS`: delivered, gaps, ...) take the worst run instead: a
    tick lost in one run is lost, whatever the others did.
    """
    if len(runs) == 1:
        return {**runs[0], "runs": 1}
    out: dict[str, Any] = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        values = [r.get(key) for r in runs]
        numbers = [v for v in values if isinstance(v, int | float)]
        if len(numbers) != len(values):
            out[key] = None
        elif key in WORST_OF_RUNS:
            out[key] = WORST_OF_RUNS[key](numbers)
        else:
            median = statistics.median(numbers)
            whole = median == int(median) and all(isinstance(n, int) for n in numbers)
            out[key] = int(median) if whole else round(median, 3)
    out["ok"] = all(r.get("ok") for r in runs)
    out["runs"] = len(runs)
    added = [r["added_p99"] for r in runs if r.get("added_p99") is not None]
    out["added_p99_range"] = [min(added), max(added)] if added else None
    return out


def _log_point(log: Log, shown: str, point: dict[str, Any]) -> None:
    log(
        f"C {shown}: " + _summary(point) + f" hop p50={point['hop_p50']} "
        f"p99={point['hop_p99']} added p99={point.get('added_p99')} "
        f"server send p50/p99 <= {point.get('server_send_p50')}/"
        f"{point.get('server_send_p99')} ms direct={point.get('direct_share')} "
        f"cpu/1k ingested={point.get('cpu_ms_per_1000_ingested')} ms "
        f"(loop {point.get('loop_ms_per_1000_ingested')}, "
        f"loop waited for a CPU {point.get('loop_wait_s')} s, "
        f"threads {point.get('threads_ms_per_1000_ingested')}) "
        f"msgs/s={point.get('messages_per_s')} billed B/tick={point.get('billed_per_tick')}"
    )


def _c_point(
    profile: Profile,
    logdir: Path,
    host: str,
    emulator_pid: int,
    rate: float,
    pack_ms: float,
    with_clients: bool,
    load_cpus: str,
    env_extra: dict[str, str],
    kw: dict[str, Any],
    nice: int = 0,
) -> dict[str, Any]:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    syms = symbols(C_SYMBOLS)
    env = {
        "TICKER_BROKER": "pubsub",
        "PUBSUB_EMULATOR_HOST": host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "TICKER_TOPIC": topic,
        **env_extra,
    }
    clients = profile.c_clients if with_clients else 1
    spec = PointSpec(
        STACKS["ticker-serve"],
        rate,
        clients,
        syms,
        C_PER if with_clients else 1,
        window=profile.c_window,
        warmup=4.0,
        grace=5.0,
        env=env,
        external_feed=True,
        server_cpus=None,  # pinned to one core, its Pub/Sub threads lagged seconds behind
        load_cpus=load_cpus,
        **kw,
    )
    hooks = RealPathHooks(host, topic, syms, rate, logdir, load_cpus, pack_ms, nice)
    hooks.emulator_pid = emulator_pid
    point = run_point(spec, logdir, hooks)
    point["pack_ms"] = pack_ms
    if point["p99"] is not None and point["hop_p99"] is not None:
        point["added_p50"] = round(point["p50"] - point["hop_p50"], 2)
        point["added_p99"] = round(point["p99"] - point["hop_p99"], 2)
    window = spec.window
    made = point["produced_vs_nominal"] or 1.0
    # 100 % of what the feed made in the window when it made less than nominal: with 2,000
    # symbols at 1,000 ticks/s a symbol ticks every 2 s, so the seq ranges of a short window are
    # lumpy; `delivered` (against the larger of nominal and made) stays the headline figure.
    point["delivered_of_made"] = round(point["delivered"] / min(made, 1.0), 4)
    ingested = rate * window / 1000  # thousands of ticks offered in the window
    for key, seconds in (
        ("cpu_ms_per_1000_ingested", point["server_cpu_s"]),
        ("loop_ms_per_1000_ingested", point["loop_cpu_s"]),
        ("threads_ms_per_1000_ingested", point["threads_cpu_s"]),
    ):
        point[key] = round(seconds * 1000 / ingested, 3)
    messages = point["hop_window_messages"]
    point["messages_per_s"] = round(messages / window, 1)
    if messages and point["hop_received"]:
        point["ticks_per_message"] = round(point["hop_received"] / messages, 1)
        point["bytes_per_message"] = round(point["hop_window_bytes"] / messages)
        # one publish and one delivery per subscription, each >= 1,000 bytes
        point["billed_per_tick"] = round(2 * point["hop_window_billed"] / point["hop_received"])
    return point

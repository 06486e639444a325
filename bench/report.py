"""The report: results/<stamp>.json (everything), latest.md (the table) and a chart (PNG).

Rule: the Markdown and the chart are derived from the JSON only, so `python -m bench.report
results/<stamp>.json` can redraw them from any earlier run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.stacks import BASELINES, STACKS

RESULTS = Path(__file__).parent / "results"


C_KEYS = (
    "name",
    "rate",
    "clients",
    "p50",
    "p99",
    "hop_p50",
    "hop_p99",
    "added_p50",
    "added_p99",
    "delivered",
    "delivered_of_made",
    "deliveries_per_s",
    "server_cpu_frac",
    "publisher_cpu_frac",
    "emulator_cpu_frac",
    "hop_cpu_frac",
    "load_cpu_frac",
    "cpu_ms_per_1000_ingested",
    "loop_ms_per_1000_ingested",
    "threads_ms_per_1000_ingested",
    "messages_per_s",
    "ticks_per_message",
    "bytes_per_message",
    "billed_per_tick",
    "runs",
    "added_p99_range",
    "feed_nice",
)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    versions = {
        p: _version(p)
        for p in (
            "quart",
            "hypercorn",
            "wsproto",
            "websockets",
            "orjson",
            "uvloop",
            "google-cloud-pubsub",
        )
    }
    package = json.loads((Path(__file__).parent / "node" / "package-lock.json").read_text())
    for name in ("ws", "socket.io"):
        versions[f"npm:{name}"] = package["packages"].get(f"node_modules/{name}", {}).get("version")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "node": _run(["node", "--version"]),
        "versions": versions,
        "commit": _run(["git", "rev-parse", "--short", "HEAD"]),
        "dirty": bool(_run(["git", "status", "--porcelain", "--", "ticker"])),
        "nofile": _nofile(),
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def _nofile() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- summary ---------------------------------------------------------------------------------


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Per stack: A's best point, B's point; ratios of the ticker to each baseline; C; D."""
    sc = results["scenarios"]
    rows: dict[str, dict[str, Any]] = {}
    for name, a in sc.get("A", {}).items():
        best = a["best"] or {}
        rows.setdefault(name, {}).update(
            a_max=best.get("deliveries_per_s", 0),
            a_p50=best.get("p50"),
            a_p99=best.get("p99"),
            a_cpu=best.get("cpu_ms_per_1000"),
            a_tpf=best.get("ticks_per_frame"),
            a_load_bound=best.get("load_bound"),
        )
    for name, b in sc.get("B", {}).items():
        rows.setdefault(name, {}).update(
            b_rss=b.get("rss_per_conn_kb"),
            b_cpu=b.get("cpu_ms_per_1000"),
            b_p50=b.get("p50"),
            b_p99=b.get("p99"),
            b_ok=b.get("ok"),
            b_connected=b.get("connected"),
        )
    ratios: dict[str, dict[str, float | None]] = {}
    me = rows.get("ticker", {})
    for base in BASELINES:
        other = rows.get(base)
        if not other or not me:
            continue
        ratios[base] = {
            "a_max": _ratio(me.get("a_max"), other.get("a_max")),
            "b_cpu": _ratio(me.get("b_cpu"), other.get("b_cpu")),
            "b_rss": _ratio(me.get("b_rss"), other.get("b_rss")),
        }
    out: dict[str, Any] = {"stacks": rows, "ratios": ratios}
    if "C" in sc:
        out["C"] = [{k: c.get(k) for k in C_KEYS} for c in sc["C"].get("points", [])]
        out["C_warmup"] = [
            {k: c.get(k) for k in ("name", "run", "emulator_cpu_frac", "added_p99")}
            for c in sc["C"].get("warmup_runs", [])
        ]
    if "D" in sc:
        one = (sc.get("A", {}).get("ticker", {}).get("best") or {}).get("deliveries_per_s")
        two = (sc["D"]["best"] or {}).get("deliveries_per_s")
        out["D"] = {"one_worker": one, "two_workers": two, "ratio": _ratio(two, one)}
    return out


def _feed_sentence(rows: list[dict[str, Any]]) -> str:
    """How the feed's CPU priority was set (runs from before `--feed-nice` say nothing)."""
    nice = next((r["feed_nice"] for r in rows if r.get("feed_nice") is not None), None)
    if nice is None:
        return ""
    if not nice:
        return " Every process ran at the same CPU priority (`--feed-nice 0`)."
    return (
        f" The feed (publisher, emulator) ran at CPU priority nice {nice}, the server, the hop "
        "and the load client at 0 (`--feed-nice`)."
    )


def _warmup_lines(points: list[dict[str, Any]], warmups: list[dict[str, Any]]) -> list[str]:
    """What the warm-up rounds (counted in no figure) found, beside the measured figures: the
    emulator's CPU, which is what they are for, at every point."""
    if not warmups:
        return ["", "No warm-up round: the first point ran on a fresh emulator (a cold JIT)."]
    rounds = len({w["run"] for w in warmups})
    earliest = min(w["run"] for w in warmups)
    first = {w["name"]: w for w in warmups if w["run"] == earliest}
    pairs = [
        f"{c['name']} {_n(first[c['name']]['emulator_cpu_frac'])} -> "
        f"{_n(c.get('emulator_cpu_frac'))}"
        for c in points
        if c["name"] in first
    ]
    return [
        "",
        f"Before the measured runs, {rounds} warm-up round(s) of every point ran, counted in no "
        "figure, while the emulator's JIT settled. Its cores in the first warm-up round -> in "
        "the measured runs: " + "; ".join(pairs) + ".",
    ]


def _spread(point: dict[str, Any]) -> str:
    """` (lo-hi)`: added p99's range over a repeated point's runs (`median_of_runs` sets it only
    then); empty for a single run."""
    spread = point.get("added_p99_range")
    return f" ({_n(spread[0])}-{_n(spread[1])})" if spread else ""


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


# --- markdown --------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    s = results["summary"]
    m = results["machine"]
    lines = [
        f"# Fan-out benchmark ({results['profile']} run, {results['started']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Linux {m['kernel']}; "
        f"Python {m['python']}, Node {m['node']}; commit {m['commit']}"
        f"{' (+ uncommitted ticker changes)' if m['dirty'] else ''}. "
        f"Load average at start {_la(results['loadavg_start'])}, "
        f"at end {_la(results['loadavg_end'])}"
        " (other work on the machine makes every figure noisy).",
        "",
        "Server pinned to core 0, load generator (Node `ws`) to core 1. Bound: p99 ≤ 100 ms and "
        "≥ 97 % of owed ticks delivered. CPU = server user+sys CPU per 1,000 tick deliveries.",
        "",
        "| stack | (A) max deliveries/s | p50 / p99 ms | CPU ms/1k | ticks/frame "
        "| (B) RSS/conn KB | (B) CPU ms/1k | (B) p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in s["stacks"].items():
        flag = " (load-bound)" if row.get("a_load_bound") else ""
        lines.append(
            f"| {STACKS[name].label} | {_n(row.get('a_max'))}{flag} | "
            f"{_n(row.get('a_p50'))} / {_n(row.get('a_p99'))} | {_n(row.get('a_cpu'))} | "
            f"{_n(row.get('a_tpf'))} | {_n(row.get('b_rss'))} | {_n(row.get('b_cpu'))} | "
            f"{_n(row.get('b_p50'))} / {_n(row.get('b_p99'))} |"
        )
    if s["ratios"]:
        lines += [
            "",
            "Ticker ÷ baseline (A: higher is better; B CPU and RSS: lower is better):",
            "",
            "| baseline | (A) max deliveries/s | (B) CPU/1k | (B) RSS/conn |",
            "|---|---:|---:|---:|",
        ]
        for base, r in s["ratios"].items():
            lines.append(
                f"| {STACKS[base].label} | {_n(r['a_max'])}x | {_n(r['b_cpu'])}x | "
                f"{_n(r['b_rss'])}x |"
            )
    if "C" in s:
        repeats = max((c.get("runs") or 1 for c in s["C"]), default=1)
        medians = (
            f" Each figure is the median of {repeats} runs (`--repeat`), added p99's range "
            "across them in brackets."
            if repeats > 1
            else ""
        )
        lines += [
            "",
            "(C) real path, publisher -> emulator -> `python -m ticker.serve` -> clients, and the "
            "bare hop (publish -> a plain subscriber's callback) in the same window; 2,000 "
            "symbols, clients x 5 symbols; CPU per 1,000 ticks ingested split into the event "
            "loop and the "
            "Pub/Sub client's threads; billed = one publish + one delivery, >= 1,000 B each."
            + medians
            + _feed_sentence(s["C"]),
            "",
            "| point | clients | delivered (of made) | p50 / p99 ms | hop p50 / p99 | "
            "added p50 / p99 | CPU ms/1k ticks (loop + threads) | msgs/s | ticks/msg | "
            "billed B/tick |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in s["C"]:
            lines.append(
                f"| {c['name']} | {c['clients']} | {_pct(c['delivered'])} "
                f"({_pct(c['delivered_of_made'])}) | {_n(c['p50'])} / "
                f"{_n(c['p99'])} | {_n(c['hop_p50'])} / {_n(c['hop_p99'])} | "
                f"{_n(c['added_p50'])} / {_n(c['added_p99'])}{_spread(c)} | "
                f"{_n(c['cpu_ms_per_1000_ingested'])} ({_n(c['loop_ms_per_1000_ingested'])} + "
                f"{_n(c['threads_ms_per_1000_ingested'])}) | {_n(c['messages_per_s'])} | "
                f"{_n(c['ticks_per_message'])} | {_n(c['billed_per_tick'])} |"
            )
        lines += [
            "",
            "Where the machine's cores went in each window (cores; the machine has "
            f"{os.cpu_count()}): the server, and beside it the publisher, the emulator (a JVM), "
            "the hop subscriber and the Node load client:",
            "",
            "| point | server | publisher | emulator | hop | load | total |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c in s["C"]:
            parts = [
                c.get(k)
                for k in (
                    "server_cpu_frac",
                    "publisher_cpu_frac",
                    "emulator_cpu_frac",
                    "hop_cpu_frac",
                    "load_cpu_frac",
                )
            ]
            known = [p for p in parts if p is not None]
            lines.append(
                f"| {c['name']} | "
                + " | ".join(_n(p) if p is not None else "-" for p in parts)
                + f" | {_n(round(sum(known), 2))} |"
            )
        lines += _warmup_lines(s["C"], s.get("C_warmup") or [])
    if "D" in s:
        d = s["D"]
        lines += [
            "",
            f"(D) two Hypercorn workers: {_n(d['two_workers'])} deliveries/s vs one "
            f"worker {_n(d['one_worker'])} -> {_n(d['ratio'])}x. This machine has 2 cores: "
            "with two workers the server and the load generator share both cores, so this "
            "understates what two workers give when the load comes from elsewhere.",
        ]
    lines += ["", "Every point (rate steps, CPU, frames, load-generator CPU) is in the JSON file."]
    return "\n".join(lines) + "\n"


def _n(x: Any) -> str:
    if x is None:
        return "-"
    if (isinstance(x, float) and x >= 1000) or isinstance(x, int):
        return f"{x:,.0f}"
    return f"{x:g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f} %"


def _la(values: list[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


# --- chart -------------------------------------------------------------------------------------


def chart(results: dict[str, Any], path: Path) -> bool:
    """Draw p99 vs deliveries/s (A) and the B figures; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sc = results["scenarios"]
    rows = results["summary"]["stacks"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    for name, a in sc.get("A", {}).items():
        pts = sorted((p for p in a["points"] if p["p99"]), key=lambda p: p["deliveries_per_s"])
        ax.plot(
            [p["deliveries_per_s"] / 1000 for p in pts],
            [p["p99"] for p in pts],
            "o-",
            label=STACKS[name].label,
        )
    ax.axhline(100, color="grey", linestyle="--", linewidth=1)
    ax.set(
        yscale="log",
        xlabel="tick deliveries/s (thousands)",
        ylabel="p99 latency (ms)",
        title=f"(A) {_clients(sc.get('A', {}))} clients x 5 of 50 symbols",
    )
    ax.legend(fontsize=8)
    names = list(rows)
    labels = [STACKS[n].label.replace(" (", "\n(") for n in names]
    axes[1].bar(labels, [rows[n].get("a_max", 0) / 1000 for n in names], color="tab:blue")
    axes[1].axhline(150, color="grey", linestyle="--", linewidth=1)
    axes[1].set(ylabel="thousands/s", title="(A) max deliveries/s at p99 ≤ 100 ms, ≥ 97 %")
    b_names = [n for n in names if rows[n].get("b_rss") is not None]
    b_labels = [STACKS[n].label.replace(" (", "\n(") for n in b_names]
    axes[2].bar(b_labels, [rows[n]["b_rss"] for n in b_names], color="tab:orange")
    axes[2].set(ylabel="KB per connection", title="(B) 10,000 quiet clients: RSS per connection")
    for axis in axes[1:]:
        axis.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _clients(a: dict[str, Any]) -> str:
    for stack in a.values():
        for point in stack["points"]:
            return f"{point['clients']:,}"
    return "?"


def write(results: dict[str, Any], outdir: Path = RESULTS) -> Path:
    """Write <stamp>.json, latest.md and chart.png; return the JSON path.

    A run of scenario C alone (`--scenarios C`) writes <stamp>-<profile>-C.json and
    `latest-C.md` instead, so it never replaces the fan-out tables and chart of a full run.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    results["summary"] = summarise(results)
    stamp = results["started"].replace(":", "").replace("-", "")[:15]
    only_c = set(results["scenarios"]) == {"C"}
    suffix = "-C" if only_c else ""
    path = outdir / f"{stamp}-{results['profile']}{suffix}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    (outdir / f"latest{suffix}.md").write_text(markdown(results))
    if not only_c:
        chart(results, outdir / "chart.png")
    return path


def latest_name(results: dict[str, Any]) -> str:
    """The markdown file `write` produced for these results."""
    return "latest-C.md" if set(results["scenarios"]) == {"C"} else "latest.md"


if __name__ == "__main__":
    data = json.loads(Path(sys.argv[1]).read_text())
    write(data, Path(sys.argv[1]).parent)

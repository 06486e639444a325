"""The rehearsal's report: every figure as JSON, and the summary tables as Markdown.

Writes `bench/results/cluster-<UTC stamp>.json` and `bench/results/cluster-latest.md` (the
presence measurement: `presence-<stamp>.json` and `presence-latest.md`).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

from bench.report import machine as bench_machine

RESULTS = Path(__file__).resolve().parents[1] / "results"


def machine() -> dict[str, Any]:
    info = bench_machine()
    for tool, args in (("haproxy", ["-v"]), ("prometheus", ["--version"])):
        try:
            out = subprocess.run([tool, *args], capture_output=True, text=True, timeout=10)
            info[tool] = (out.stdout or out.stderr).splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            info[tool] = None
    return info


def stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")


def write(results: dict[str, Any], outdir: Path = RESULTS, kind: str = "cluster") -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{kind}-{stamp()}.json"
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    text = markdown(results) if kind == "cluster" else presence_markdown(results)
    (outdir / f"{kind}-latest.md").write_text(text + f"\nEvery figure is in `{path.name}`.\n")
    return path


def _ms(x: Any) -> str:
    return "-" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def _head(results: dict[str, Any], title: str) -> list[str]:
    m = results.get("machine", {})
    la0 = " / ".join(f"{x:.1f}" for x in results.get("loadavg_start", ()))
    la1 = " / ".join(f"{x:.1f}" for x in results.get("loadavg_end", ()))
    return [
        f"# {title} ({results.get('started')})",
        "",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores shared with other work "
        f"(load average {la0} at start, {la1} at end); Python {m.get('python')}; "
        f"{m.get('haproxy')}; {m.get('prometheus')}; commit {m.get('commit')}.",
        "",
    ]


def markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    sc = results["scenarios"]
    lines = _head(results, "Cluster rehearsal")
    lines += [
        f"{cfg['instances']} instances (`python -m ticker.serve`) behind HAProxy, Pub/Sub "
        f"emulator, publisher at {cfg['rate']} ticks/s over {cfg['symbols']} symbols, "
        f"{cfg['clients']} WebSocket clients x {cfg['symbols_per_client']} symbols through the "
        f"front end; readiness checks every {cfg['health']['interval']} "
        f"(fall {cfg['health']['fall']}, rise {cfg['health']['rise']}).",
        "",
    ]
    c = results.get("connect", {})
    lines.append(
        f"Connect: {c.get('connected')}/{c.get('clients')} in {c.get('took_s')} s, spread "
        f"{c.get('by_slot')}; dashboard total right after "
        f"{results['dashboard_at_start'].get('within_s')} s."
    )
    lines.append("")
    lines += ["| scenario | result |", "|---|---|"]
    if "rolling" in sc:
        r = sc["rolling"]
        mv, after = r["moves"], r["after"]
        lines.append(
            f"| rolling deploy ({len(r['steps'])} x SIGTERM, new first) | {after['connected']}/"
            f"{after['clients']} connected at the end, gaps {after['gaps']}, duplicates "
            f"{after['duplicates']} (instances conflated "
            f"{(r.get('server') or {}).get('conflated')} ticks for clients that fell behind), "
            f"every client caught up after {r.get('caught_up_s')} s; "
            f"{mv['moves']} moves "
            f"({mv['asked']} asked, {mv['lost']} lost, {mv['recovered']} recovered), reconnect "
            f"p50 {_ms(mv['reconnect_ms']['p50'])} / p99 {_ms(mv['reconnect_ms']['p99'])} / max "
            f"{_ms(mv['reconnect_ms']['max'])} ms; peak arrivals/s per instance "
            f"{max(mv['peak_arrivals_per_s'].values(), default=0):.0f}; dashboard right after "
            f"{r['dashboard'].get('within_s')} s; took {r['took_s']} s |"
        )
    if "crash" in sc:
        r = sc["crash"]
        mv = r["moves"]
        lines.append(
            f"| crash (SIGKILL {r['victim']}, {r['share']} clients) | left the dashboard after "
            f"{r['victim_left_view_s']} s (expiry {r['ttl_s']} s), total right after "
            f"{r['total_right_s']} s; all back after {r['all_back_s']} s; reconnect p50 "
            f"{_ms(mv['reconnect_ms']['p50'])} / p99 {_ms(mv['reconnect_ms']['p99'])} ms; gaps "
            f"{r['after']['gaps']}, duplicates {r['after']['duplicates']} |"
        )
    if "scaleout" in sc:
        r = sc["scaleout"]
        lines.append(
            f"| scale-out to {r['to']} | the view showed {r['to']} instances "
            f"{r['view_shows_all_s_after_last_ready']} s after the last was ready; "
            f"{r['new_clients_on_new_instances']}/{r['new_clients']} new clients on the new "
            f"instances ({r['new_clients_by_slot']}); every client caught up after "
            f"{r.get('caught_up_s')} s; dashboard right after "
            f"{r['dashboard'].get('within_s')} s |"
        )
    if "affinity" in sc:
        for mode, r in sc["affinity"].items():
            lines.append(
                f"| long polls, {mode.replace('_', ' ')} | {r['pollers']} pollers x "
                f"{r['duration_s']:.0f} s: {r['polls']} polls, {r['ticks']} ticks, gaps "
                f"{r['gaps']}, duplicates {r['duplicates']}, errors {r['errors']}; instances per "
                f"client: median {r['instances_per_client_median']}, max "
                f"{r['instances_per_client_max']} |"
            )
    if "rolling" in sc:
        lines += [
            "",
            "Rolling deploy, step by step:",
            "",
            "| old -> new | clients moved | new ready s | in rotation s | old exit s | all back s "
            "| reconnect p50 / p99 ms | peak arrivals/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in sc["rolling"]["steps"]:
            m = s["moves"]
            lines.append(
                f"| {s['old']} -> {s['new']} | {s['clients_on_old']} | {s['new_ready_s']} | "
                f"{s['new_in_rotation_s']} | {s['old_exit_s']} | {s['all_back_s']} | "
                f"{_ms(m['reconnect_ms']['p50'])} / {_ms(m['reconnect_ms']['p99'])} | "
                f"{max(m['peak_arrivals_per_s'].values(), default=0):.0f} |"
            )
    fails = (results.get("final") or {}).get("failures_by_reason")
    if fails:
        lines += ["", f"Failed connection attempts over the whole run, by status: {fails}."]
    prom = results.get("prometheus") or {}
    if prom:
        lines += ["", "Prometheus at the end: " + ", ".join(f"{k} = {v}" for k, v in prom.items())]
    lines.append("")
    return "\n".join(lines)


def presence_markdown(results: dict[str, Any]) -> str:
    lines = _head(results, "Presence at scale")
    lines += [
        "One real instance (`python -m ticker.serve` on the emulator) hears N - 1 simulated peers "
        "on its control subscription; CPU is the instance's own (user + sys, all threads) over "
        f"{results['seconds']} s. Pub/Sub bytes are billed at max(size, 1,000 B) per message "
        "(each heartbeat is its own publish and, at this rate, its own delivery).",
        "",
        "| protocol | N | beat every s | msgs/s into one instance (beats + canaries) | "
        "bytes/s into one | beat bytes | CPU % of a core (over N = 1) | in view | "
        "cluster deliveries/s | cluster billed TiB/month | $/month at $40/TiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in results["points"]:
        lines.append(
            f"| {p['protocol']} | {p['n']} | {p['period_s']} | {p['msgs_per_s']:.1f} "
            f"({p['beats_per_s']:.1f} + {p['canaries_per_s']:.1f}) | {p['bytes_per_s']:,.0f} | "
            f"{p['beat_bytes']:,} | {p['cpu_pct']:.2f} ({p.get('cpu_pct_over_n1', 0):+.2f}) | "
            f"{p['seen_in_view']} | {p['cluster_deliveries_per_s']:,.0f} | "
            f"{p['cluster_tib_per_month']:.2f} | {p['usd_per_month']:,.0f} |"
        )
    lines.append("")
    return "\n".join(lines)

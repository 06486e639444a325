"""The cluster behind a real front end: 3 instances behind HAProxy, a rolling restart.

The same pieces as `python -m bench.cluster` (bench/cluster): real `python -m ticker.serve`
processes on the real emulator, HAProxy from deploy/haproxy.cfg.j2 (with faster readiness checks
than App Engine's 5 s, to keep the test short), the publisher job, and page-like WebSocket clients
that keep the front end's affinity cookie. Also checks the shipped Prometheus config with
`promtool` and the Grafana dashboard's queries against a real instance's /metrics.
HAProxy or promtool missing: skipped locally with the reason, a failure under CI=true.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench.cluster import grafana, rehearsal
from bench.cluster.clients import Crowd
from bench.cluster.stack import DEPLOY, Cluster, Health
from tests.support.servers import missing
from tests.support.timing import timeout

pytestmark = pytest.mark.integration

CLIENTS = 30


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        missing(f"{tool} not installed (apt-get install {package})")


async def test_a_rolling_restart_behind_haproxy_loses_no_tick_and_the_total_stays_right(
    emulator: Any, tmp_path: Path
) -> None:
    _need("haproxy", "haproxy")
    cluster = Cluster(
        instances=3, slots=8, rate=20, prometheus=False, emulator=emulator, workdir=tmp_path,
        health=Health(interval="500ms", fall=1, rise=1, timeout="1s"),
    )  # fmt: skip
    await asyncio.to_thread(cluster.start)
    crowd = Crowd(cluster.ws_url, cluster.symbols)
    try:
        await crowd.add(CLIENTS, rate=50)
        assert len(crowd.by_slot()) == 3, f"round robin reaches every instance: {crowd.by_slot()}"
        result = await rehearsal.rolling_deploy(cluster, crowd, print)
    finally:
        await crowd.stop()
        await asyncio.to_thread(cluster.stop)
    after = result["after"]
    assert after["connected"] == CLIENTS, after
    assert after["gaps"] == 0
    assert after["duplicates"] == 0
    assert after["behind"] == 0, "every client caught up with the feed"
    assert after["ticks"] > CLIENTS * 5
    moved = sum(step["clients_on_old"] for step in result["steps"])
    assert moved >= CLIENTS, "each old instance's clients moved (some more than once)"
    assert result["moves"]["recovered"] >= moved, "each move resumed from the client's cursor"
    assert all(step["old_exit_code"] == 0 for step in result["steps"])
    assert {s["new"].rsplit("-", 1)[0] for s in result["steps"]} == {"i1", "i2", "i3"}
    dashboard = result["dashboard"]
    assert dashboard["within_s"] is not None, f"dashboard never matched the clients: {dashboard}"
    assert dashboard["within_s"] <= timeout(5)
    assert (dashboard["total"], dashboard["instances"]) == (CLIENTS, 3)


def test_the_shipped_prometheus_config_is_valid(tmp_path: Path) -> None:
    _need("promtool", "prometheus")
    shutil.copy(DEPLOY / "prometheus.yml", tmp_path / "prometheus.yml")
    (tmp_path / "targets").mkdir()
    for name in ("instances", "frontend"):
        (tmp_path / "targets" / f"{name}.json").write_text("[]")
    out = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True, text=True, timeout=timeout(30),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_grafana_dashboard_is_current_parses_and_names_real_metrics(
    tmp_path: Path, start_server: Any
) -> None:
    _need("promtool", "prometheus")
    shipped = (DEPLOY / "grafana-dashboard.json").read_text()
    assert shipped == grafana.render(), "regenerate: python -m bench.cluster.grafana"
    exprs = grafana.expressions(grafana.dashboard())
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: dashboard\n    rules:\n"
        + "".join(f"      - record: panel_{i}\n        expr: '{e}'\n" for i, e in enumerate(exprs))
    )
    out = subprocess.run(
        ["promtool", "check", "rules", str(rules)],
        capture_output=True, text=True, timeout=timeout(30),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    server = start_server()
    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    # families by their TYPE line (a labelled family with no sample yet has only that line)
    families = set(re.findall(r"^# TYPE (\w+)", text, re.MULTILINE))
    named = {m for e in exprs for m in re.findall(r"\b((?:ticker|process)_\w+)\{", e)}
    assert named, "the dashboard queries ticker metrics"
    unknown = {
        m
        for m in named
        if m not in families and re.sub(r"_(total|bucket|sum|count)$", "", m) not in families
    }
    assert not unknown, f"not exposed by /metrics: {sorted(unknown)}"

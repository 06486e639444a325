"""The Grafana dashboard for a ticker cluster, as code: `python -m bench.cluster.grafana`.

Writes deploy/grafana-dashboard.json (import it in Grafana with a Prometheus data source that
scrapes deploy/prometheus.yml's jobs). The layout follows Centrifugo's official dashboard: the
headline numbers first, then connections, messages in and out, latency, health, and the
process per instance, each per instance where that is what an operator compares. The test
(tests/integration/test_cluster_frontend.py) checks that the file is what this module makes,
that every query parses (`promtool check rules`) and that every ticker metric it names exists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = '{job="ticker", ticker_instance=~"$instance"}'

# (title, unit, [(expr, legend)]), grouped in rows; stats are the top row.
STATS = [
    ("Connections (cluster)", "short", f"sum(ticker_connections{SEL})"),
    ("Instances up", "short", 'sum(up{job="ticker"})'),
    ("Ticks in /s (per instance)", "short", f"avg(rate(ticker_ticks_received_total{SEL}[1m]))"),
    ("Deliveries /s (cluster)", "short", f"sum(rate(ticker_ticks_sent_total{SEL}[1m]))"),
    (
        "Latency p99 (cluster)",
        "s",
        "histogram_quantile(0.99, sum by (le) "
        f"(rate(ticker_publish_to_send_latency_seconds_bucket{SEL}[1m])))",
    ),
]
ROWS: list[tuple[str, list[tuple[str, str, list[tuple[str, str]]]]]] = [
    ("Connections", [
        ("Connections per instance", "short",
         [(f"sum by (ticker_instance) (ticker_connections{SEL})", "{{ticker_instance}}")]),
        ("Connections by transport", "short",
         [(f"sum by (transport) (ticker_connections{SEL})", "{{transport}}")]),
        ("Front end: sessions per server", "short",
         [('haproxy_server_current_sessions{proxy="instances"}', "{{server}}")]),
        ("Symbols subscribed per instance", "short",
         [(f"ticker_symbols_subscribed{SEL}", "{{ticker_instance}}")]),
    ]),
    ("Messages", [
        ("Ticks in from Pub/Sub per instance", "short",
         [(f"rate(ticker_ticks_received_total{SEL}[1m])", "{{ticker_instance}}")]),
        ("Ticks out to clients per instance", "short",
         [(f"sum by (ticker_instance) (rate(ticker_ticks_sent_total{SEL}[1m]))",
           "{{ticker_instance}}")]),
        ("Frames out by transport", "short",
         [(f"sum by (transport) (rate(ticker_frames_sent_total{SEL}[1m]))", "{{transport}}")]),
        ("Dropped and conflated", "short", [
            (f"sum(rate(ticker_ticks_duplicate_total{SEL}[1m]))", "duplicate"),
            (f"sum(rate(ticker_ticks_stale_total{SEL}[1m]))", "stale"),
            (f"sum(rate(ticker_seq_gaps_total{SEL}[1m]))", "seq gaps"),
            (f"sum(rate(ticker_malformed_messages_total{SEL}[1m]))", "malformed"),
            (f"sum(rate(ticker_ticks_conflated_total{SEL}[1m]))", "conflated"),
        ]),
    ]),
    ("Latency and errors", [
        ("Publish to send latency", "s", [
            ("histogram_quantile(0.5, sum by (le) "
             f"(rate(ticker_publish_to_send_latency_seconds_bucket{SEL}[1m])))", "p50"),
            ("histogram_quantile(0.99, sum by (le) "
             f"(rate(ticker_publish_to_send_latency_seconds_bucket{SEL}[1m])))", "p99"),
        ]),
        ("Latency p99 per instance", "s", [
            ("histogram_quantile(0.99, sum by (le, ticker_instance) "
             f"(rate(ticker_publish_to_send_latency_seconds_bucket{SEL}[1m])))",
             "{{ticker_instance}}"),
        ]),
        ("Error frames by code", "short",
         [(f"sum by (code) (rate(ticker_error_frames_total{SEL}[5m]))", "{{code}}")]),
        ("Front end: connection errors and retries", "short", [
            ('rate(haproxy_backend_connection_errors_total{proxy="instances"}[1m])', "errors"),
            ('rate(haproxy_backend_retry_warnings_total{proxy="instances"}[1m])', "retries"),
            ('rate(haproxy_backend_redispatch_warnings_total{proxy="instances"}[1m])',
             "redispatches"),
        ]),
    ]),
    ("Health and process", [
        ("Ready / broker healthy", "short", [
            (f"ticker_ready{SEL}", "ready {{ticker_instance}}"),
            (f"ticker_broker_healthy{SEL}", "broker {{ticker_instance}}"),
        ]),
        ("CPU per instance", "percentunit",
         [(f"rate(process_cpu_seconds_total{SEL}[1m])", "{{ticker_instance}}")]),
        ("Memory per instance", "bytes",
         [(f"process_resident_memory_bytes{SEL}", "{{ticker_instance}}")]),
        ("Open file descriptors per instance", "short",
         [(f"process_open_fds{SEL}", "{{ticker_instance}}")]),
    ]),
]  # fmt: skip


def _target(expr: str, legend: str, ref: int) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": chr(65 + ref)}


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid = 1
    for i, (title, unit, expr) in enumerate(STATS):
        panels.append({
            "id": pid, "type": "stat", "title": title, "datasource": DS,
            "gridPos": {"x": i * 24 // len(STATS), "y": 0, "w": 24 // len(STATS), "h": 4},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "graphMode": "area"},
            "targets": [_target(expr, "", 0)],
        })  # fmt: skip
        pid += 1
    y = 4
    for row_title, row in ROWS:
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})  # fmt: skip
        pid += 1
        y += 1
        for i, (title, unit, targets) in enumerate(row):
            panels.append({
                "id": pid, "type": "timeseries", "title": title, "datasource": DS,
                "gridPos": {"x": (i % 2) * 12, "y": y + (i // 2) * 8, "w": 12, "h": 8},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                            "tooltip": {"mode": "multi"}},
                "targets": [_target(e, legend, n) for n, (e, legend) in enumerate(targets)],
            })  # fmt: skip
            pid += 1
        y += ((len(row) + 1) // 2) * 8
    return {
        "title": "ticker cluster",
        "uid": "ticker-cluster",
        "tags": ["ticker"],
        "schemaVersion": 38,
        "version": 1,
        "editable": True,
        "refresh": "5s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                },
                {
                    "name": "instance",
                    "type": "query",
                    "datasource": DS,
                    "label": "instance",
                    "query": 'label_values(up{job="ticker"}, ticker_instance)',
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                },
            ]
        },
        "panels": panels,
    }


def expressions(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression in `board`, with the dashboard variables filled in."""
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", ())]
    return [e.replace("$instance", ".*") for e in exprs]


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main() -> int:
    (DEPLOY / "grafana-dashboard.json").write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())

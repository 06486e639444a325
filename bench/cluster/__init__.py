"""The cluster rehearsal: a local App Engine stand-in, measured (issue 11).

`python -m bench.cluster` starts the Pub/Sub emulator, N instances (`python -m ticker.serve`),
HAProxy in front of them (deploy/haproxy.cfg.j2: round robin, best-effort cookie affinity,
WebSocket upgrades, readiness checks, a 1-hour tunnel timeout), Prometheus scraping every
instance (deploy/prometheus.yml) and the publisher; then connects a crowd of page-like
WebSocket clients through the front end and rehearses what App Engine does to a cluster:
a rolling deploy, a crash, a scale-out, long polls that lose their affinity cookie. Figures go
to bench/results/cluster-*.json and cluster-latest.md. `python -m bench.cluster serve` (what
`make cluster` runs) keeps the cluster up for a person to look at; `python -m bench.cluster
presence` measures the dashboard's control-topic traffic against N instances.

Modules: `stack` (the processes), `clients` (the crowd), `rehearsal` (the scenarios),
`presence` (presence at scale), `report` (JSON + Markdown).
"""

"""Hypercorn settings for every way the service is run (`python -m ticker.serve`, or
`hypercorn --config python:ticker.hypercorn_conf "ticker.app:create_app()"`).

Rules: constants only (no environment reads, no bind: the command line gives it). One worker per
process: every process is its own Pub/Sub subscriber, so scale with processes/instances.
Prefer `python -m ticker.serve`: plain `hypercorn` closes its listener and waits out
`graceful_timeout` *before* the app hears of SIGTERM, so open WebSockets would be cut instead of
being sent `reconnect` first (see `ticker/serve.py`).
"""

workers = 1
# SIGTERM: ticker.serve drains (readiness 503, reconnect + close 1012, subscription deleted) in
# ~5 s, then Hypercorn waits at most this long for the last connections. Hypercorn's default
# is 3 s; App Engine's SIGKILL grace is believed to be ~30 s.
graceful_timeout = 20.0
shutdown_timeout = 10.0  # the lifespan shutdown (a second, no-op drain + close) after that
# Clients send tiny JSON frames; the default 16 MiB invites memory abuse (RELIABILITY S4).
websocket_max_message_size = 16 * 1024
# Idle keep-alive above the Google front end's 600 s, so the proxy, not us, closes idle
# connections (no 502 races). A held long poll (<= 25 s) is an open request, not idle time.
keep_alive_timeout = 620.0
read_timeout = None
backlog = 2048  # a drained peer's clients all reconnect here within a few seconds
accesslog = None  # no access log: a line per poll/reconnect is noise; /metrics counts requests
errorlog = "-"
loglevel = "INFO"
include_server_header = False

"""Hypercorn settings for every way the service is run (`python -m ticker.serve`, or
`hypercorn --config python:ticker.server.hypercorn_conf "ticker.app:create_app()"`).

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
# Hypercorn alone keeps buffering an oversized message after its 1009; the app's protocol guard
# (`ticker.server.transports.protocol_guard`, installed by create_app, so under plain `hypercorn`
# too) stops at the limit and cuts the connection 0.5 s later.
websocket_max_message_size = 16 * 1024
# Idle keep-alive above the Google front end's 600 s, so the proxy, not us, closes idle
# connections (no 502 races). A held long poll (<= 25 s) is an open request, not idle time.
# Long keep-alive used to cost a file descriptor per *closed* connection for 620 s (Hypercorn
# ignored the peer's FIN while idle; 20,000 short requests hit EMFILE): protocol_guard now lets go
# on FIN at once and closes requests whose headers are not complete within TICKER_HEADER_TIMEOUT
# (10 s), so only live idle connections wait out these 620 s.
keep_alive_timeout = 620.0
# No read timeout: SSE and held polls read nothing for minutes, and idle WebSockets are pinged by
# the app (a dead peer is closed after 2 heartbeats + 5 s without even a pong).
read_timeout = None
backlog = 2048  # a drained peer's clients all reconnect here within a few seconds
accesslog = None  # no access log: a line per poll/reconnect is noise; /metrics counts requests
errorlog = "-"
loglevel = "INFO"
include_server_header = False

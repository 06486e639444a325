"""The cluster view on the real emulator: two server processes on one topic, heartbeats between.

Each server is a real Hypercorn process (the e2e server factory) with its own fresh
subscriptions; browsers are stood in for by WebSocket clients. Waits poll the JSON API with a
scaled deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.support.servers import Server, ServerFactory
from tests.support.timing import eventually_sync
from tests.support.wsclient import page_sockets

pytestmark = pytest.mark.integration

TOKEN = "cluster-test-token"
CHANGE_S = 5.0  # "within 5 s of any change"
KILLED_S = 10.0  # "a killed instance disappears within ~10 s"


def api(server: Server, token: str | None = TOKEN, path: str = "/admin/api/stats") -> Any:
    request = urllib.request.Request(server.url + path)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def status_of(server: Server, token: str | None, path: str = "/admin/api/stats") -> int:
    try:
        api(server, token, path)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def counts(server: Server) -> dict[str, int]:
    """{instance id: connections} as `server` sees the cluster, plus the total under "*"."""
    cluster = api(server)["cluster"]
    seen = {inst["id"]: inst["connections"] for inst in cluster["instances"]}
    return {**seen, "*": cluster["connections"]}


@pytest.fixture
def two_servers(
    emulator: Any, unique_name: Callable[[str], str], tmp_path: Path
) -> Iterator[tuple[Server, Server]]:
    """Two processes on one fresh topic (so one control topic), both seeing each other."""
    factory = ServerFactory(tmp_path)
    env = {
        "TICKER_BROKER": "pubsub",
        "GOOGLE_CLOUD_PROJECT": emulator.project,
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "TICKER_TOPIC": unique_name("prices"),
        "TICKER_ADMIN_TOKEN": TOKEN,
    }
    try:
        a, b = factory(**env, TICKER_INSTANCE_ID="alpha"), factory(**env, TICKER_INSTANCE_ID="beta")
        for server in (a, b):
            eventually_sync(
                lambda s=server: len(counts(s)) == 3, within=20, what="both instances in the view"
            )
        yield a, b
    finally:
        factory.stop_all()


def ids(a: Server, b: Server) -> tuple[str, str]:
    return api(a)["instance"]["id"], api(b)["instance"]["id"]


def test_clients_on_each_instance_are_counted_on_both(two_servers: tuple[Server, Server]) -> None:
    a, b = two_servers
    id_a, id_b = ids(a, b)
    with ExitStack() as stack:
        on_a = stack.enter_context(page_sockets(a.url, [["AAPL"]] * 2))
        stack.enter_context(page_sockets(b.url, [["AAPL", "MSFT"]]))
        want = {id_a: 2, id_b: 1, "*": 3}
        for server in (a, b):
            eventually_sync(
                lambda s=server: counts(s) == want, within=CHANGE_S, what=f"{want} on {server.url}"
            )
        symbols = api(a)["cluster"]["symbols"]
        assert symbols == {"AAPL": 3, "MSFT": 1}

        on_a[0].close()
        want = {id_a: 1, id_b: 1, "*": 2}
        for server in (a, b):
            eventually_sync(
                lambda s=server: counts(s) == want, within=CHANGE_S, what=f"{want} on {server.url}"
            )


def test_a_killed_instance_leaves_the_view(two_servers: tuple[Server, Server]) -> None:
    a, b = two_servers
    _, id_b = ids(a, b)
    with page_sockets(b.url, [["AAPL"]]):
        eventually_sync(
            lambda: counts(a)["*"] == 1, within=CHANGE_S, what="b's client counted on a"
        )
        os.killpg(b.proc.pid, signal.SIGKILL)
        b.proc.wait(10)

        def b_gone() -> bool:
            cluster = api(a)["cluster"]
            expired = [d["id"] for d in cluster["departed"] if d["reason"] == "expired"]
            return len(cluster["instances"]) == 1 and id_b in expired

        started = time.monotonic()
        eventually_sync(b_gone, within=KILLED_S, what="the killed instance expired")
        took = time.monotonic() - started
    assert counts(a)["*"] == 0
    print(f"killed instance left the view after {took:.1f}s")


def test_admin_needs_the_token(two_servers: tuple[Server, Server]) -> None:
    a, _ = two_servers
    assert status_of(a, None) == 401
    assert status_of(a, "wrong-token") == 401
    assert status_of(a, TOKEN) == 200
    assert status_of(a, None, "/admin/api/history") == 401
    stream = a.url.replace("http", "ws", 1) + "/admin/stream"
    with pytest.raises(InvalidStatus, match="401"):
        connect(stream, origin=Origin(a.url), open_timeout=5)

"""/admin, /admin/api/stats, /admin/stream and /metrics through Quart's test client (no network).

Several apps can share one `MemoryBus`: each is a cluster instance with its own presence.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from quart import Quart
from quart.testing import WebsocketResponseError
from quart.testing.connections import WebsocketDisconnectError

from tests.support.timing import eventually, timeout
from ticker.app import create_app
from ticker.broker.memory import InMemoryBroker, MemoryBus

TOKEN = "service-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SAME_ORIGIN = {"Origin": "http://localhost"}  # what Quart's test client uses as Host
ENV = {
    "TICKER_BROKER": "memory",
    "TICKER_SIM_RATE": "0",
    "TICKER_ADMIN_TOKEN": TOKEN,
    "TICKER_PRESENCE_INTERVAL": "0.2",
}


def make(bus: MemoryBus | None = None, **env: str) -> Quart:
    return create_app({**ENV, **env}, broker=InMemoryBroker("prices", bus=bus))


@pytest.fixture
async def apps() -> AsyncIterator[Callable[..., Awaitable[Quart]]]:
    """Start apps (lifespan included) on demand; all stopped at the end."""
    async with AsyncExitStack() as stack:

        async def start(bus: MemoryBus | None = None, **env: str) -> Quart:
            app = make(bus, **env)
            await stack.enter_async_context(app.test_app())  # type: ignore[arg-type]
            return app

        yield start


async def stats(app: Quart) -> dict[str, Any]:
    response = await app.test_client().get("/admin/api/stats", headers=AUTH)
    assert response.status_code == 200
    return await response.get_json()


# --- auth ---------------------------------------------------------------------------------


async def test_api_needs_the_token(apps) -> None:
    client = (await apps()).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = await client.get("/admin/api/stats", headers=headers)
        assert response.status_code == 401
        assert (await response.get_json())["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/admin/api/history")).status_code == 401


async def test_page_redirects_to_login_and_cookie_login_works(apps) -> None:
    client = (await apps()).test_client()
    response = await client.get("/admin")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/login")
    assert (await client.get("/admin/login")).status_code == 200

    wrong = await client.post("/admin/login", form={"token": "nope"})
    assert wrong.status_code == 401
    assert "Set-Cookie" not in wrong.headers

    good = await client.post("/admin/login", form={"token": TOKEN})
    assert good.status_code == 303
    assert good.headers["Location"].endswith("/admin")
    cookie = good.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert TOKEN not in cookie

    page = await client.get("/admin")
    assert page.status_code == 200
    html = await page.get_data(as_text=True)
    assert 'data-stat="cluster-connections"' in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert (await client.get("/admin/api/stats")).status_code == 200  # the cookie works for the API

    await client.post("/admin/logout")
    assert (await client.get("/admin/api/stats")).status_code == 401


async def test_failed_logins_are_throttled_per_address(apps) -> None:
    client = (await apps()).test_client()
    for _ in range(5):
        assert (await client.post("/admin/login", form={"token": "x"})).status_code == 401
    throttled = await client.post("/admin/login", form={"token": "y"})
    assert throttled.status_code == 429
    api = await client.get("/admin/api/stats", headers={"Authorization": "Bearer nope"})
    assert api.status_code == 429
    assert int(api.headers["Retry-After"]) > 0
    # the right token still passes from the throttled address (no lock-out of the operator)
    assert (await client.get("/admin/api/stats", headers=AUTH)).status_code == 200
    assert (await client.post("/admin/login", form={"token": TOKEN})).status_code == 303


async def test_logout_revokes_the_cookie_here_and_on_every_peer(apps) -> None:
    bus = MemoryBus()
    here, peer = await apps(bus), await apps(bus)
    login = await here.test_client().post("/admin/login", form={"token": TOKEN})
    cookie = {"Cookie": login.headers["Set-Cookie"].split(";", 1)[0]}
    for app in (here, peer):
        assert (await app.test_client().get("/admin/api/stats", headers=cookie)).status_code == 200
    # a client that kept the cookie (the browser forgets it; an attacker who copied it does not)
    assert (await here.test_client().post("/admin/logout", headers=cookie)).status_code == 303
    assert (await here.test_client().get("/admin/api/stats", headers=cookie)).status_code == 401

    async def refused_on_peer() -> bool:
        response = await peer.test_client().get("/admin/api/stats", headers=cookie)
        return response.status_code == 401

    await eventually(refused_on_peer, within=2.0, what="the peer refusing the cookie")


async def test_login_from_a_foreign_origin_is_refused(apps) -> None:
    client = (await apps()).test_client()
    response = await client.post(
        "/admin/login", form={"token": TOKEN}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403


async def test_configured_token_is_never_printed(capsys, apps) -> None:
    await apps()
    out, err = capsys.readouterr()
    assert TOKEN not in out + err


async def test_generated_token_is_printed_once(capsys) -> None:
    app = create_app({"TICKER_BROKER": "memory", "TICKER_SIM_RATE": "0"})
    _, err = capsys.readouterr()
    token = app.extensions["ticker"].settings.admin_token
    assert err.count(token) == 1
    assert "admin token" in err


# --- stats --------------------------------------------------------------------------------


async def test_stats_shape_follows_the_contract(apps) -> None:
    app = await apps()
    body = await stats(app)
    inst = body["instance"]
    assert set(inst) >= {"id", "connections", "by_transport", "symbols"}
    assert inst["by_transport"] == {"websocket": 0, "sse": 0, "longpoll": 0}
    assert body["cluster"]["connections"] == 0
    assert [i["id"] for i in body["cluster"]["instances"]] == [inst["id"]]
    assert {"p50", "p99"} <= set(inst["latency_ms"])
    assert inst["broker"]["kind"] == "memory"


async def test_websocket_clients_are_counted_per_transport_and_symbol(apps) -> None:
    app = await apps()
    client = app.test_client()
    async with client.websocket("/ws", headers=SAME_ORIGIN) as ws:
        await ws.send(json.dumps({"op": "subscribe", "symbols": ["AAPL", "MSFT"]}))
        assert json.loads(await ws.receive())["type"] == "subscribed"
        body = await stats(app)
        assert body["instance"]["by_transport"]["websocket"] == 1
        assert body["cluster"]["connections"] == 1
        assert body["cluster"]["symbols"] == {"AAPL": 1, "MSFT": 1}

    async def gone() -> bool:
        return (await stats(app))["cluster"]["connections"] == 0

    await eventually(gone, within=3.0, what="no connection counted")


async def test_instances_on_one_bus_see_each_other_and_goodbye_removes(apps) -> None:
    bus = MemoryBus()
    a, b = await apps(bus), await apps(bus)

    async with b.test_client().websocket("/ws", headers=SAME_ORIGIN) as ws:
        await ws.send(json.dumps({"op": "subscribe", "symbols": ["AAPL"]}))
        await ws.receive()

        async def a_counts_b() -> bool:
            cluster = (await stats(a))["cluster"]
            return len(cluster["instances"]) == 2 and cluster["connections"] == 1

        await eventually(a_counts_b, within=3.0, what="a counting b's client")
        assert (await stats(a))["cluster"]["symbols"] == {"AAPL": 1}

    b_id = (await stats(b))["instance"]["id"]
    await b.shutdown()  # says goodbye on the control topic

    async def b_left() -> bool:
        cluster = (await stats(a))["cluster"]
        return [d["id"] for d in cluster["departed"]] == [b_id] and len(cluster["instances"]) == 1

    await eventually(b_left, within=1.0, what="b departed from a's view")


async def test_history_collects_points(apps) -> None:
    app = await apps()

    async def has_points() -> bool:
        response = await app.test_client().get("/admin/api/history", headers=AUTH)
        return len((await response.get_json())["points"]) >= 2

    await eventually(has_points, within=3.0, what="two history points")


# --- the stream ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (SAME_ORIGIN, 401),  # right origin, no credentials
        ({**SAME_ORIGIN, "Authorization": "Bearer bad"}, 401),
        ({"Origin": "https://evil.example", **AUTH}, 403),
        ({}, 403),  # no Origin and no Bearer: a browser without its Origin? refuse
    ],
)
async def test_stream_refuses_before_accept(apps, headers, status) -> None:
    client = (await apps()).test_client()
    with pytest.raises(WebsocketResponseError) as refused:
        async with client.websocket("/admin/stream", headers=headers) as ws:
            await ws.receive()
    assert refused.value.response.status_code == status


async def test_stream_pushes_history_then_stats_every_sample(apps) -> None:
    app = await apps()
    client = app.test_client()
    async with client.websocket("/admin/stream", headers=AUTH) as ws:
        first = json.loads(await ws.receive())
        assert first["type"] == "history"
        for _ in range(3):
            message = json.loads(await asyncio.wait_for(ws.receive(), timeout(3)))
            assert message["type"] == "stats"
            assert message["stats"]["cluster"]["connections"] == 0


async def test_stream_with_login_cookie_from_same_origin(apps) -> None:
    client = (await apps()).test_client()
    await client.post("/admin/login", form={"token": TOKEN})
    async with client.websocket("/admin/stream", headers=SAME_ORIGIN) as ws:
        assert json.loads(await ws.receive())["type"] == "history"


async def _drain(ws: Any, within: float) -> None:
    async with asyncio.timeout(within):
        while True:
            await ws.receive()


async def test_logout_closes_open_streams_that_use_the_cookie(apps) -> None:
    bus = MemoryBus()
    here, peer = await apps(bus), await apps(bus)
    login = await here.test_client().post("/admin/login", form={"token": TOKEN})
    cookie = {"Cookie": login.headers["Set-Cookie"].split(";", 1)[0], **SAME_ORIGIN}
    async with peer.test_client().websocket("/admin/stream", headers=cookie) as ws:
        assert json.loads(await ws.receive())["type"] == "history"
        await here.test_client().post("/admin/logout", headers=cookie)
        with pytest.raises(WebsocketDisconnectError) as closed:
            await _drain(ws, timeout(5))  # the stream re-checks the cookie once a sample (1 s)
        assert closed.value.args == (1008,)


# --- /metrics -----------------------------------------------------------------------------


async def test_metrics_are_prometheus_text_and_per_app(apps) -> None:
    a, b = await apps(), await apps()
    async with a.test_client().websocket("/ws", headers=SAME_ORIGIN) as ws:
        await ws.send(json.dumps({"op": "subscribe", "symbols": ["AAPL"]}))
        await ws.receive()
        text_a = await (await a.test_client().get("/metrics")).get_data(as_text=True)
        text_b = await (await b.test_client().get("/metrics")).get_data(as_text=True)
    assert 'ticker_connections{transport="websocket"} 1.0' in text_a
    assert 'ticker_connections{transport="websocket"} 0.0' in text_b
    for name in (
        "ticker_ticks_received_total",
        "ticker_frames_sent_total",
        "ticker_direct_writes_total",
        "ticker_ticks_conflated_total",
        "ticker_publish_to_send_latency_seconds_bucket",
        "ticker_error_frames_total",
        "process_resident_memory_bytes",
    ):
        assert name in text_a, name


async def test_throttle_uses_the_forwarded_client_behind_a_proxy(apps) -> None:
    client = (await apps(TICKER_PROXY_HOPS="1")).test_client()
    proxy = {"client": ("10.1.2.3", 40000)}  # the front end's proxy, in a trusted network
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    for _ in range(5):
        await client.post("/admin/login", form={"token": "x"}, headers=attacker, scope_base=proxy)
    assert (
        await client.post("/admin/login", form={"token": "x"}, headers=attacker, scope_base=proxy)
    ).status_code == 429
    operator = {"X-Forwarded-For": "198.51.100.7"}  # another client behind the same proxy
    assert (
        await client.post("/admin/login", form={"token": "x"}, headers=operator, scope_base=proxy)
    ).status_code == 401


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(apps) -> None:
    client = (await apps(TICKER_PROXY_HOPS="1")).test_client()
    direct = {"client": ("198.51.100.50", 40000)}  # reached us directly, not via the proxy
    for i in range(5):
        spoofed = {"X-Forwarded-For": f"203.0.113.{i}"}
        await client.post("/admin/login", form={"token": "x"}, headers=spoofed, scope_base=direct)
    fresh = {"X-Forwarded-For": "203.0.113.99"}
    assert (
        await client.post("/admin/login", form={"token": "x"}, headers=fresh, scope_base=direct)
    ).status_code == 429  # one address whatever the header says

"""One Origin policy: the streams (`/ws`, `/poll`) and the admin area (`/admin/stream`, the login
form) give the same answer to the same request.

The rule (`ticker.core.admission.OriginPolicy`): a browser Origin must be on the exact allowlist,
or, with none configured, be the serving origin, scheme included; `X-Forwarded-Proto` names that
scheme only from a trusted proxy when a proxy is configured. Each case runs against all four
entries; before the policy was shared the admin area allowed `https://<host>` on a plain-HTTP
server and the serving host beside a configured allowlist.
"""

from __future__ import annotations

from typing import Any

import pytest
from quart.testing import WebsocketResponseError

from tests.service.streams import BASE_ENV, recv_type, serving

TOKEN = BASE_ENV["TICKER_ADMIN_TOKEN"]
TRUSTED = {"client": ("10.1.2.3", 40000)}  # a private address: in the default trusted proxies
DIRECT = {"client": ("198.51.100.50", 40000)}  # a public address: a client reaching us directly

CASES = [
    # (id, env, headers, scope_base, allowed)
    ("same-origin", {}, {"Origin": "http://localhost"}, {}, True),
    ("same-origin, normalised", {}, {"Origin": "HTTP://LOCALHOST:80"}, {}, True),
    ("other scheme", {}, {"Origin": "https://localhost"}, {}, False),
    ("other port", {}, {"Origin": "http://localhost:8080"}, {}, False),
    ("foreign", {}, {"Origin": "https://evil.example"}, {}, False),
    ("null", {}, {"Origin": "null"}, {}, False),
    (
        "on the allowlist",
        {"TICKER_ALLOWED_ORIGINS": "https://ticker.example"},
        {"Origin": "https://ticker.example"},
        {},
        True,
    ),
    (
        "serving host beside an allowlist",
        {"TICKER_ALLOWED_ORIGINS": "https://ticker.example"},
        {"Origin": "http://localhost"},
        {},
        False,
    ),
    (
        "https behind the trusted proxy",
        {"TICKER_PROXY_HOPS": "1"},
        {"Origin": "https://localhost", "X-Forwarded-Proto": "https"},
        TRUSTED,
        True,
    ),
    (
        "X-Forwarded-Proto from an untrusted peer",
        {"TICKER_PROXY_HOPS": "1"},
        {"Origin": "https://localhost", "X-Forwarded-Proto": "https"},
        DIRECT,
        False,
    ),
    (
        "X-Forwarded-Proto with no proxy configured",
        {},
        {"Origin": "https://localhost", "X-Forwarded-Proto": "https"},
        TRUSTED,
        False,
    ),
]


async def _ws_admitted(client: Any, path: str, headers: dict[str, str], base: Any) -> bool:
    """True when the handshake is accepted and the first frame arrives; False on a 403."""
    status = 101
    try:
        async with client.websocket(path, headers=headers, scope_base=base) as ws:
            if path == "/ws":
                await ws.send('{"op": "subscribe", "symbols": ["AAPL"]}')
                await recv_type(ws, "subscribed")
            else:
                await recv_type(ws, "history")
    except WebsocketResponseError as refused:
        status = refused.response.status_code
    assert status in (101, 403), status
    return status == 101


@pytest.mark.parametrize(
    ("env", "headers", "base", "allowed"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_streams_and_the_admin_area_share_one_origin_rule(
    env: dict[str, str], headers: dict[str, str], base: Any, allowed: bool
) -> None:
    async with serving(**env) as (client, _):
        poll = await client.get("/poll?symbols=AAPL", headers=headers, scope_base=base)
        answers = {
            "/ws": await _ws_admitted(client, "/ws", headers, base),
            "/poll": poll.status_code == 200,
            "/admin/stream": await _ws_admitted(
                client, "/admin/stream", {**headers, "Authorization": f"Bearer {TOKEN}"}, base
            ),
        }
        login = await client.post(
            "/admin/login", form={"token": TOKEN}, headers=headers, scope_base=base
        )
        answers["/admin/login"] = login.status_code == 303
        if not allowed:
            assert poll.status_code == 403
            assert (await poll.get_json())["code"] == "origin_not_allowed"
            assert login.status_code == 403
    assert answers == dict.fromkeys(answers, allowed)


async def test_no_origin_is_a_native_stream_client_but_not_an_admin_browser() -> None:
    # The contract: no Origin = a native client, accepted on the streams; the admin stream
    # then wants the Bearer token (cookies are ambient, the token is not).
    async with serving() as (client, _):
        assert await _ws_admitted(client, "/ws", {}, {})
        assert (await client.get("/poll?symbols=AAPL")).status_code == 200
        assert not await _ws_admitted(client, "/admin/stream", {}, {})
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert await _ws_admitted(client, "/admin/stream", bearer, {})

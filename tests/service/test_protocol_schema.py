"""`docs/asyncapi.yaml` against what the running app really sends (Quart's test client, in process).

Every kind of server frame (ticks, snapshot, subscribed, unsubscribed, error, reconnect, resync,
heartbeat, pong) is captured from `/ws`, `/sse` and `/poll` and validated with `jsonschema`; the
Pub/Sub message from the publisher's own encoder too. The last tests show the check has teeth:
a captured frame whose shape changes fails, and every error code the code can send is in the
document and in the README.
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
import typing
from typing import Any

import orjson
import pytest

from publisher import feed
from tests.conftest import tick
from tests.service.streams import recv, recv_type, serving
from tests.service.test_sse import Stream, _open
from tests.support.protocol import FRAME_SCHEMAS, assert_server_frame, document, problems
from tests.support.servers import REPO
from ticker.core.admission import RefusalCode
from ticker.core.codec import tick_to_bytes
from ticker.core.errors import ClientErrorCode

CLIENT_OPS = [
    ("SubscribeOp", {"op": "subscribe", "symbols": ["aapl"], "since": {"AAPL": 3}, "max_rate": 2}),
    ("UnsubscribeOp", {"op": "unsubscribe", "symbols": ["AAPL"]}),
    ("PingOp", {"op": "ping", "nonce": 7}),
]
BAD_OPS = ["{nope", "[]", '{"op":"explode"}', '{"op":"subscribe","symbols":["$"]}']


async def _ws_frames() -> list[dict[str, Any]]:
    """Every frame a /ws client gets through subscribe, snapshot, live, errors, gap, drain."""
    frames: list[dict[str, Any]] = []
    async with serving(TICKER_HEARTBEAT_INTERVAL="0.05") as (client, runtime):
        runtime.hub.ingest(tick("AAPL", seq=1))
        async with client.websocket("/ws") as ws:  # a native client: no Origin
            for _, op in CLIENT_OPS:
                await ws.send(orjson.dumps(op).decode())
            await ws.send('{"op":"ping"}')
            for bad in BAD_OPS:
                await ws.send(bad)
            await ws.send(orjson.dumps({"op": "subscribe", "symbols": ["MSFT"]}).decode())
            async with asyncio.timeout(5):
                while not any(f.get("symbols") == ["MSFT"] for f in frames):
                    frames.append(await recv(ws))
                runtime.hub.ingest(tick("MSFT", seq=1, price=10.0))
                runtime.hub.ingest(tick("MSFT", seq=5, price=11.0))  # a gap: resync
                while {"resync", "heartbeat", "ticks"} - {f["type"] for f in frames}:
                    frames.append(await recv(ws))
            for session in runtime.hub.sessions():
                session.end(1012, "server draining")
            frames.append(await recv_type(ws, "reconnect"))
    return frames


async def test_every_ws_frame_the_server_sends_matches_the_document():
    frames = await _ws_frames()
    for frame in frames:
        assert_server_frame(frame)
    assert {f["type"] for f in frames} == set(FRAME_SCHEMAS)  # all nine kinds were seen
    subscribed = [f for f in frames if f["type"] == "subscribed"]
    assert any("max_rate" in f for f in subscribed)
    assert any("max_rate" not in f for f in subscribed)
    snapshot = next(f for f in frames if f["type"] == "ticks")
    assert snapshot["ticks"][0]["seq"] == 1  # the snapshot is a ticks frame like any other
    codes = {f["code"] for f in frames if f["type"] == "error"}
    assert codes == {"bad_json", "bad_frame", "unknown_op", "bad_symbol"}


@pytest.mark.parametrize(("schema", "op"), CLIENT_OPS)
def test_the_client_ops_the_server_accepts_match_the_document(schema, op):
    assert not problems(schema, op)


async def test_sse_events_and_poll_answers_match_the_document():
    async with serving(TICKER_HISTORY_SIZE="16") as (client, runtime):
        for seq in range(1, 4):
            runtime.hub.ingest(tick("AAPL", seq=seq))
        conn = await _open(client, "symbols=AAPL&max_rate=5")
        stream = Stream(conn)
        events = [await stream.event("subscribed"), await stream.event("ticks")]
        runtime.hub.ingest(tick("AAPL", seq=9))  # a gap
        events.append(await stream.event("resync"))
        for session in runtime.hub.sessions():
            session.end(1000, "max connection age reached")
        events.append(await stream.event("reconnect"))
        await conn.disconnect()
        for event in events:
            assert_server_frame(orjson.loads(event["data"]))
        assert isinstance(events[1]["id"], str)

        answers = []
        first = await (await client.get("/poll?symbols=AAPL,MSFT")).get_json()
        answers.append(first)
        runtime.hub.ingest(tick("AAPL", seq=10))
        url = f"/poll?symbols=AAPL&max_rate=20&cursor={first['cursor']}"
        answers.append(await (await client.get(url)).get_json())
        for seq in range(11, 60):  # far beyond the 16-tick history: the first cursor is stale
            runtime.hub.ingest(tick("AAPL", seq=seq))
        answers.append(
            await (await client.get(f"/poll?symbols=AAPL&cursor={first['cursor']}")).get_json()
        )
        assert answers[-1]["resync"] is True
        for answer in answers:
            assert not problems("PollAnswer", answer), (answer, problems("PollAnswer", answer))
        assert answers[1]["max_rate"] == 20.0


async def test_http_error_bodies_are_error_frames_of_the_document():
    async with serving(TICKER_CONNECT_BURST="2", TICKER_CONNECT_RATE="0.01") as (client, _):
        bodies = []
        for path, headers in [
            ("/sse?symbols=$", {}),
            ("/poll?symbols=AAPL&cursor=x.y", {}),
            ("/poll?symbols=AAPL&max_rate=0", {}),
            ("/poll?symbols=AAPL", {"Origin": "https://evil.example"}),
            ("/poll?symbols=AAPL", {}),  # the burst of 2 new streams is spent by now
        ]:
            resp = await client.get(path, headers=headers)
            assert resp.status_code in (400, 403, 429)
            bodies.append(await resp.get_json())
    for body in bodies:
        assert_server_frame(body)
    assert [b["code"] for b in bodies] == [
        "bad_symbol",
        "bad_cursor",
        "bad_max_rate",
        "origin_not_allowed",
        "connecting_too_fast",
    ]


def test_pubsub_messages_from_the_publisher_encoder_match_the_document():
    rng = random.Random(1)
    prices = feed.start_prices(["AAPL", "MSFT", "BRK.B"], rng)
    walk = feed.random_walk(prices, rng, feed.SeqCounter(feed.seq_base(time.time())), _now_ms)
    ticks = [next(walk) for _ in range(10)]
    for t in ticks:
        assert not problems("PriceEvent", orjson.loads(tick_to_bytes(t)))
    packed = b'{"ticks":[' + b",".join(tick_to_bytes(t) for t in ticks) + b"]}"
    assert not problems("PackedPriceEvent", orjson.loads(packed))
    assert problems("PriceEvent", {"symbol": "AAPL", "price": 1.0, "ts": 1})  # seq is required


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


MUTATIONS = [
    ("ticks", lambda f: f["ticks"][0].pop("seq")),
    ("ticks", lambda f: f["ticks"][0].update(price=str(f["ticks"][0]["price"]))),
    ("ticks", lambda f: f["ticks"][0].update(sequence=1)),
    ("subscribed", lambda f: f.pop("recovered")),
    ("subscribed", lambda f: f.update(symbols="AAPL")),
    ("error", lambda f: f.update(code="made_up")),
    ("heartbeat", lambda f: f.update(interval="15s")),
    ("pong", lambda f: f.update(latency=3)),
    ("reconnect", lambda f: f.update(why=f.pop("reason"))),
    ("resync", lambda f: f.update(symbols=[])),
    ("unsubscribed", lambda f: f.update(type="unsubscribe")),
]


async def test_the_schema_check_fails_when_a_frame_changes_shape():
    frames = await _ws_frames()
    for kind, mutate in MUTATIONS:
        frame = copy.deepcopy(next(f for f in frames if f["type"] == kind))
        assert_server_frame(frame)  # as captured: valid
        mutate(frame)
        schema = FRAME_SCHEMAS.get(frame["type"], "ServerFrame")
        assert problems(schema, frame) or problems("ServerFrame", frame), (kind, frame)
        with pytest.raises(AssertionError):
            assert_server_frame(frame)


def test_every_error_code_the_code_can_send_is_documented_with_an_action():
    sent = set(typing.get_args(ClientErrorCode)) | set(typing.get_args(RefusalCode))
    sent |= {"origin_not_allowed", "origin_required"}  # the guard's 403s
    doc = document()
    assert set(doc["components"]["schemas"]["ErrorCode"]["enum"]) == sent
    table = {row["code"]: row for row in doc["info"]["x-error-codes"]}
    assert set(table) == sent
    assert all(row["action"] for row in table.values())
    readme = (REPO / "README.md").read_text()
    for code in sent:
        assert f"| `{code}` |" in readme, f"{code} is missing from the README's error-code table"
    closes = {str(row["code"]) for row in doc["info"]["x-close-codes"]}
    assert {"1000", "1001", "1008", "1009", "1012", "slow client"} <= closes


def test_every_ref_in_the_document_resolves():
    doc = document()
    assert doc["asyncapi"] == "3.0.0"

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target: Any = doc
                for part in ref.removeprefix("#/").split("/"):
                    assert part in target, f"unresolved $ref {ref}"
                    target = target[part]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)

"""`/ws` under the flush clock: several ticks per frame, every tick in order, no tick lost."""

from __future__ import annotations

import orjson
from quart.signals import websocket_sent

from tests.conftest import tick
from tests.service.streams import ORIGIN, recv, recv_type, serving

HEADERS = {"Origin": ORIGIN}


def _sub(*symbols: str) -> str:
    return orjson.dumps({"op": "subscribe", "symbols": list(symbols)}).decode()


async def test_a_fast_client_gets_every_tick_in_order_in_fewer_frames():
    async with (
        serving(TICKER_FLUSH_INTERVAL="0.05") as (client, runtime),
        client.websocket("/ws", headers=HEADERS) as ws,
    ):
        await ws.send(_sub("AAPL"))
        await recv_type(ws, "subscribed")
        for seq in range(1, 41):
            runtime.hub.ingest(tick("AAPL", seq=seq))
        seqs: list[int] = []
        frames = 0
        while len(seqs) < 40:
            frame = await recv(ws)
            if frame["type"] == "ticks":
                frames += 1
                seqs += [t["seq"] for t in frame["ticks"]]
        assert seqs == list(range(1, 41))
        assert frames < 40


async def test_tick_frames_skip_quarts_per_frame_layers():
    sent: list[object] = []

    async def on_sent(_sender: object, **kwargs: object) -> None:
        sent.append(kwargs)

    websocket_sent.connect(on_sent)
    try:
        async with serving() as (client, runtime), client.websocket("/ws", headers=HEADERS) as ws:
            await ws.send(_sub("MSFT"))
            await recv_type(ws, "subscribed")
            runtime.hub.ingest(tick("MSFT", seq=7))
            assert (await recv_type(ws, "ticks"))["ticks"][0]["seq"] == 7
    finally:
        websocket_sent.disconnect(on_sent)
    assert sent == []  # straight to the ASGI server: no Quart signal per frame

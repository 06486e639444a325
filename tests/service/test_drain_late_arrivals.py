"""A client that reaches an instance after its drain finished is sent away too.

Behind a front end with cookie affinity and readiness checks a few seconds apart (App Engine,
HAProxy in `make cluster`), clients keep arriving at a SIGTERMed instance until the checks
notice. Found by the cluster rehearsal: such a client was accepted, got no `reconnect` and no
ticks (the broker was closing), and sat there until Hypercorn's graceful timeout cut it 20 s
later.
"""

from __future__ import annotations

import orjson

from tests.service.streams import ORIGIN, recv_type, serving


async def test_a_websocket_arriving_after_the_drain_is_told_to_reconnect():
    async with serving() as (client, runtime):
        await runtime.drain(spread=0.0, wait=0.0)  # nobody connected: done at once
        async with client.websocket("/ws", headers={"Origin": ORIGIN}) as ws:
            await ws.send(orjson.dumps({"op": "subscribe", "symbols": ["AAPL"]}).decode())
            frame = await recv_type(ws, "reconnect")
            assert frame["reason"] == "server draining"

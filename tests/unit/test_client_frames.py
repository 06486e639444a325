"""ticker.client's frame handling: the seq gate, and the snapshot that follows a `resync`."""

from __future__ import annotations

from typing import Any

from ticker.client import Client, Resync
from ticker.core.ticks import Tick


def _ticks(*seqs: int, price: float = 100.0) -> dict[str, Any]:
    return {
        "type": "ticks",
        "ticks": [
            {"symbol": "AAPL", "price": price, "seq": s, "ts": 1_764_000_000_000} for s in seqs
        ],
    }


async def _feed(client: Client, *frames: dict[str, Any]) -> list[object]:
    out: list[object] = []
    for frame in frames:
        out += await client._handle(None, frame)  # type: ignore[arg-type]  # no heartbeat here
    return out


async def test_ticks_at_or_below_the_cursor_are_dropped():
    client = Client("ws://127.0.0.1:1/ws")
    events = await _feed(client, _ticks(1, 2), _ticks(2, 3), _ticks(1))
    assert [e.seq for e in events if isinstance(e, Tick)] == [1, 2, 3]
    assert client.cursor == {"AAPL": 3}


async def test_after_a_resync_the_snapshot_is_taken_even_below_the_cursor():
    # A foreign producer poisoned AAPL's seq; the server re-bases onto the real lineage (lower)
    # with a resync. Without taking that snapshot the client would stay frozen on the poison.
    client = Client("ws://127.0.0.1:1/ws")
    poison = 2**63 - 1
    events = await _feed(
        client,
        _ticks(1000),
        _ticks(poison, price=666.0),
        {"type": "resync", "symbols": ["AAPL"]},
        _ticks(1005, price=101.0),
        _ticks(1005, 1006),  # the gate works again from the snapshot on
    )
    ticks = [e for e in events if isinstance(e, Tick)]
    assert [t.seq for t in ticks] == [1000, poison, 1005, 1006]
    assert ticks[2].price == 101.0
    assert Resync(("AAPL",)) in events
    assert client.cursor == {"AAPL": 1006}

"""Presence: heartbeats between instances on one in-memory bus; untrusted input is dropped."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from dashboard.presence import FULL_EVERY, Presence, beat_period
from dashboard.stats import ClusterStats, LocalStats
from tests.conftest import FakeClock
from tests.support.timing import timeout
from ticker.broker.memory import InMemoryBroker, MemoryBus
from ticker.core.registry import InstanceRegistry
from ticker.server.runtime import Runtime
from ticker.server.settings import Settings


def make_presence(name: str, bus: MemoryBus, clock: FakeClock) -> Presence:
    runtime = Runtime.build(Settings(instance_id=name), broker=InMemoryBroker(bus=bus))
    registry = InstanceRegistry(ttl=7.0, clock=clock)
    cluster = ClusterStats(LocalStats(runtime, name, clock), registry, wall=clock)
    return Presence(InMemoryBroker("control", bus=bus), cluster, interval=0.5)


def beat(ident: str, number: int, connections: int = 1) -> bytes:
    stats = {
        "id": ident,
        "connections": connections,
        "by_transport": {"websocket": connections, "sse": 0, "longpoll": 0},
        "symbols": {},
    }
    return orjson.dumps({"v": 1, "kind": "beat", "id": ident, "beat": number, "stats": stats})


@pytest.fixture
def presence(clock: FakeClock) -> Presence:
    return make_presence("me", MemoryBus(), clock)


def test_peer_heartbeat_enters_the_registry(presence: Presence) -> None:
    presence.on_message(beat("peer", 1, connections=3), {})
    [peer] = presence.registry.live()
    assert peer.stats["connections"] == 3


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"v": 2, "kind": "beat", "id": "p", "beat": 1}',
        b'{"v": 1, "kind": "beat", "beat": 1}',
        b'{"v": 1, "kind": "beat", "id": "p", "beat": "1"}',
        b'{"v": 1, "kind": "beat", "id": "p", "beat": 1, "stats": {"id": "p"}}',
        b'{"v": 1, "kind": "dance", "id": "p", "beat": 1, "stats": null}',
        beat("someone-else", 1).replace(b'"beat","id":"someone-else"', b'"beat","id":"p"'),
    ],
)
def test_bad_control_messages_are_counted_and_dropped(presence: Presence, data: bytes) -> None:
    presence.on_message(data, {})
    assert presence.malformed == 1
    assert presence.registry.live() == []


def test_own_echo_is_ignored_without_counting(presence: Presence) -> None:
    presence.on_message(beat("me", 1), {})
    assert presence.registry.live() == []
    assert presence.malformed == 0


def test_goodbye_removes_the_peer(presence: Presence) -> None:
    presence.on_message(beat("peer", 1), {})
    presence.on_message(orjson.dumps({"v": 1, "kind": "leave", "id": "peer", "beat": 1}), {})
    assert presence.registry.live() == []
    assert presence.registry.departed()[0].reason == "left"


async def test_two_instances_on_one_bus_see_each_other(clock: FakeClock) -> None:
    bus = MemoryBus()
    a, b = make_presence("a", bus, clock), make_presence("b", bus, clock)
    await a.start()
    await b.start()  # announces itself at once: no waiting for the first interval
    try:
        async with asyncio.timeout(timeout(2)):
            while [p.id for p in a.registry.live()] != ["b"]:
                await a.next_sample()
        async with asyncio.timeout(timeout(3)):  # b hears a at a's next beat (0.5 s)
            while [p.id for p in b.registry.live()] != ["a"]:
                await b.next_sample()
    finally:
        await b.close()
    try:
        async with asyncio.timeout(timeout(2)):
            while a.registry.live():  # the goodbye arrives on a later loop iteration
                await a.next_sample()
        assert a.registry.departed()[0].id == "b"
    finally:
        await a.close()


async def test_draining_is_announced_at_once_and_wakes_the_peers_dashboards(
    clock: FakeClock,
) -> None:
    bus = MemoryBus()
    a = make_presence("a", bus, clock)
    runtime = Runtime.build(Settings(instance_id="b"), broker=InMemoryBroker(bus=bus))
    registry = InstanceRegistry(ttl=60.0, clock=clock)
    cluster = ClusterStats(LocalStats(runtime, "b", clock), registry, wall=clock)
    # A long interval: without the drain beat, a would not hear from b again for a minute.
    b = Presence(
        InMemoryBroker("control", bus=bus),
        cluster,
        interval=60.0,
        is_draining=lambda: runtime.draining,
    )
    await a.start()
    await b.start()
    try:
        async with asyncio.timeout(timeout(2)):
            while [p.stats["draining"] for p in a.registry.live()] != [False]:
                await a.next_sample()
        a.sample_period = 30.0  # from now on, only a heard drain wakes a's streams
        await a.next_sample()  # the sample a's loop was sleeping towards; the next is 30 s off
        runtime.draining = True
        async with asyncio.timeout(timeout(1)):
            await a.next_sample()  # woken by b's drain beat, long before a's next sample
        assert [p.stats["draining"] for p in a.registry.live()] == [True]
    finally:
        await b.close()
        await a.close()


def beat_v2(ident: str, number: int, ttl: object = 30.0, symbols: dict | None = None) -> bytes:
    stats: dict = {
        "id": ident,
        "connections": 2,
        "by_transport": {"websocket": 2, "sse": 0, "longpoll": 0},
    }
    if symbols is not None:
        stats["symbols"] = symbols
    message = {"v": 2, "kind": "beat", "id": ident, "beat": number, "ttl": ttl, "stats": stats}
    return orjson.dumps(message)


def test_the_beat_period_grows_with_the_cluster_past_the_budget() -> None:
    assert beat_period(0, 2.0) == 2.0  # alone
    assert beat_period(39, 2.0) == 2.0  # 40 instances x 1 beat / 2 s = 20 beats/s: the budget
    assert beat_period(199, 2.0) == 10.0  # 200 instances: still 20 beats/s into each
    assert beat_period(199, 2.0, budget=10) == 20.0


def test_a_slow_beat_is_kept_for_the_ttl_it_announces(presence: Presence, clock: FakeClock):
    presence.on_message(beat_v2("big", 1, ttl=35.0, symbols={"AAPL": 2}), {})
    clock.advance(20.0)  # far beyond the registry's own 7 s
    assert [p.id for p in presence.registry.live()] == ["big"]
    clock.advance(15.1)
    assert presence.registry.live() == []


@pytest.mark.parametrize("ttl", [None, "35", True, -1, 1e9])
def test_a_bad_ttl_falls_back_to_the_registry_s_own(presence: Presence, clock, ttl) -> None:
    presence.on_message(beat_v2("p", 1, ttl=ttl, symbols={}), {})
    clock.advance(7.1)
    assert presence.registry.live() == []
    assert presence.malformed == 0


def test_a_beat_without_symbols_keeps_the_map_already_held(presence: Presence) -> None:
    presence.on_message(beat_v2("p", 1, symbols={"AAPL": 2, "MSFT": 1}), {})
    presence.on_message(beat_v2("p", 2), {})  # unchanged: no map sent
    [peer] = presence.registry.live()
    assert (peer.beat, peer.stats["symbols"]) == (2, {"AAPL": 2, "MSFT": 1})
    presence.on_message(beat_v2("q", 1), {})  # unknown peer, no map yet: counted, no symbols
    q = presence.registry.get("q")
    assert q is not None
    assert q.stats["symbols"] == {}


def test_symbols_are_sent_only_when_changed_a_peer_joined_or_every_tenth_beat(
    presence: Presence,
) -> None:
    def sends_symbols() -> bool:
        has = "symbols" in presence.heartbeat_stats()
        presence._last_beat += 1  # what publishing the beat does
        return has

    assert sends_symbols()  # the first beat
    assert not sends_symbols()
    presence.on_message(beat_v2("newcomer", 1, symbols={}), {})
    assert sends_symbols()  # the newcomer has no map of ours yet
    assert [sends_symbols() for _ in range(FULL_EVERY)].count(True) == 1

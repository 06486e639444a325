"""Stats: rates from monotonic totals, peer payload checks, cluster aggregation, history."""

from __future__ import annotations

import pytest

from dashboard.stats import (
    ClusterStats,
    LocalStats,
    RateMeter,
    broker_health,
    cluster_view,
    sanitize,
)
from tests.conftest import FakeClock
from ticker.broker.memory import InMemoryBroker
from ticker.core.registry import Departure, InstanceRegistry, Peer
from ticker.server.runtime import Runtime
from ticker.server.settings import Settings
from ticker.stream.session import Session


def inst(ident: str, connections: int = 0, **extra: object) -> dict[str, object]:
    ws = connections
    return {
        "id": ident,
        "connections": connections,
        "by_transport": {"websocket": ws, "sse": 0, "longpoll": 0},
        "symbols": extra.pop("symbols", {}),
        **extra,
    }


def test_rate_meter_is_per_second_between_samples(clock: FakeClock) -> None:
    meter = RateMeter(clock)
    assert meter.update({"ticks": 100}) == {"ticks": 0.0}
    clock.advance(2.0)
    assert meter.update({"ticks": 300}) == {"ticks": 100.0}
    clock.advance(1.0)
    assert meter.update({"ticks": 50}) == {"ticks": 0.0}  # a reset never shows as negative
    assert meter.update({"ticks": 60}) == {"ticks": 0.0}  # no time passed: no rate


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {"id": "", "connections": 0, "by_transport": {}, "symbols": {}},
        inst("a", connections=-1),
        {**inst("a"), "connections": True},
        {**inst("a"), "by_transport": {"websocket": 1}},
        {**inst("a"), "symbols": {"AAPL": "many"}},
        {**inst("a"), "symbols": []},
        {**inst("a"), "id": "x" * 201},
    ],
)
def test_sanitize_rejects_bad_peer_payloads(payload: object) -> None:
    assert sanitize(payload) is None


def test_sanitize_keeps_extra_fields() -> None:
    payload = inst("a", 2, symbols={"AAPL": 2}, ticks_in_per_s=5.0)
    assert sanitize(payload) == payload


def test_cluster_view_sums_instances_and_symbols() -> None:
    local = inst("me", 2, symbols={"AAPL": 2}, ticks_in_per_s=10.0, latency_ms={"p50": 3, "p99": 9})
    peers = [
        Peer("peer", inst("peer", 3, symbols={"AAPL": 1, "MSFT": 2}, ticks_in_per_s=10.0,
                          latency_ms={"p50": 5, "p99": 7}), seen_at=98.0, beat=4),
        Peer("me", inst("me", 99), seen_at=99.0, beat=1),  # our own echo is ignored
    ]  # fmt: skip
    view = cluster_view(local, peers, [Departure("old", 40.0, "expired", 3)], now=100.0)
    assert view["connections"] == 5
    assert [i["id"] for i in view["instances"]] == ["me", "peer"]
    assert view["instances"][1]["age_s"] == 2.0
    assert view["symbols"] == {"AAPL": 3, "MSFT": 2}
    assert view["by_transport"] == {"websocket": 5, "sse": 0, "longpoll": 0}
    assert view["ticks_in_per_s"] == 20.0
    assert view["latency_ms"] == {"p50": 5.0, "p99": 9.0}
    assert view["departed"] == [{"id": "old", "reason": "expired", "ago_s": 60.0, "last": None}]


def test_cluster_latency_is_none_without_samples() -> None:
    assert cluster_view(inst("me"), [], [], 0.0)["latency_ms"] == {"p50": None, "p99": None}


@pytest.fixture
def runtime() -> Runtime:
    return Runtime.build(Settings(instance_id="host", boot_id="b00t"), broker=InMemoryBroker())


def test_local_snapshot_counts_sessions_and_sent_totals(runtime: Runtime, clock: FakeClock):
    local = LocalStats(runtime, "host-b00t", clock)
    session = Session("websocket", "1.2.3.4", outbox_limit=8)
    runtime.hub.attach(session)
    runtime.hub.subscribe(session, ["AAPL"], {})
    session.frames_sent, session.ticks_sent, session.direct_sent = 4, 10, 3
    clock.advance(2.0)
    local.sample()
    snap = local.snapshot()
    assert snap["id"] == "host-b00t"
    assert (snap["connections"], snap["symbols"]) == (1, {"AAPL": 1})
    assert snap["ticks_sent_per_s"] == 5.0
    assert snap["frames_sent_per_s"] == 2.0
    runtime.hub.detach(session)  # totals survive the session
    assert local.snapshot()["totals"]["ticks_sent"] == 10
    assert local.snapshot()["totals"]["direct_writes"] == 3
    assert sanitize(snap) == snap  # what we publish is what peers accept


def test_cluster_stats_history_is_bounded(runtime: Runtime, clock: FakeClock) -> None:
    registry = InstanceRegistry(ttl=7.0, clock=clock)
    cluster = ClusterStats(LocalStats(runtime, "me", clock), registry, wall=clock, history_points=3)
    registry.heard("peer", inst("peer", 4), beat=1)
    for _ in range(5):
        clock.advance(1.0)
        point = cluster.sample()
    assert len(cluster.history) == 3
    assert point["connections"] == 4
    assert point["instances"] == 2
    clock.advance(10.0)  # the peer misses its heartbeats
    assert cluster.sample()["instances"] == 1
    [gone] = cluster.view()["cluster"]["departed"]
    assert (gone["id"], gone["last"]["connections"]) == ("peer", 4)


async def test_broker_health_comes_from_the_broker_protocol(runtime: Runtime) -> None:
    assert broker_health(runtime) == {"kind": "memory", "healthy": False}  # not started
    await runtime.broker.start(lambda data, attributes: None)
    assert broker_health(runtime) == {"kind": "memory", "healthy": True}
    await runtime.broker.close()

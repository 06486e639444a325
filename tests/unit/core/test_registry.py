"""InstanceRegistry: peers expire after `ttl` of silence, late or repeated beats never win."""

from __future__ import annotations

import pytest

from tests.conftest import FakeClock as Clock
from ticker.core.registry import InstanceRegistry


@pytest.fixture
def registry(clock: Clock) -> InstanceRegistry:
    return InstanceRegistry(ttl=7.0, clock=clock, keep_departed=60.0, max_peers=3)


def test_peer_is_live_until_ttl_of_silence(registry: InstanceRegistry, clock: Clock) -> None:
    assert registry.heard("a", {"connections": 1}, beat=1)
    clock.now += 7.0
    assert [p.id for p in registry.live()] == ["a"]
    clock.now += 0.1
    assert registry.live() == []
    [gone] = registry.departed()
    assert (gone.id, gone.reason, gone.at) == ("a", "expired", clock.now)
    assert gone.stats == {"connections": 1}  # what it had when it went quiet


def test_each_heartbeat_extends_life_and_replaces_stats(registry: InstanceRegistry, clock: Clock):
    registry.heard("a", {"connections": 1}, beat=1)
    for beat in range(2, 6):
        clock.now += 2.0
        registry.heard("a", {"connections": beat}, beat=beat)
    [peer] = registry.live()
    assert peer.stats == {"connections": 5}
    assert peer.seen_at == clock.now


def test_old_or_repeated_beat_is_ignored(registry: InstanceRegistry) -> None:
    registry.heard("a", {"n": 2}, beat=2)
    assert not registry.heard("a", {"n": 1}, beat=1)
    assert not registry.heard("a", {"n": 2}, beat=2)
    assert registry.live()[0].stats == {"n": 2}


def test_goodbye_removes_at_once_and_echoes_stay_out(registry: InstanceRegistry) -> None:
    registry.heard("a", {}, beat=3)
    registry.left("a", beat=4)
    assert registry.live() == []
    assert registry.departed()[0].reason == "left"
    assert registry.departed()[0].stats == {}
    assert not registry.heard("a", {}, beat=5)  # a delayed heartbeat of a process that is gone
    assert registry.live() == []


def test_goodbye_from_unknown_peer_is_recorded(registry: InstanceRegistry) -> None:
    registry.left("ghost", beat=1)
    assert [(d.id, d.stats) for d in registry.departed()] == [("ghost", None)]


def test_expired_peer_returns_with_a_newer_beat(registry: InstanceRegistry, clock: Clock) -> None:
    registry.heard("a", {}, beat=1)
    clock.now += 10
    assert registry.prune()[0].id == "a"
    assert not registry.heard("a", {}, beat=1)  # redelivered old beat: still gone
    assert registry.heard("a", {}, beat=2)  # it was paused, not dead
    assert [p.id for p in registry.live()] == ["a"]
    assert registry.departed() == []


def test_departures_are_forgotten_after_keep_departed(registry: InstanceRegistry, clock: Clock):
    registry.heard("a", {}, beat=1)
    clock.now += 8
    assert registry.departed()
    clock.now += 60.1
    assert registry.departed() == []


def test_peer_count_is_bounded(registry: InstanceRegistry, clock: Clock) -> None:
    for name in "abc":
        assert registry.heard(name, {}, beat=1)
    assert not registry.heard("d", {}, beat=1)
    clock.now += 8  # everyone expires: room again
    assert registry.heard("d", {}, beat=1)
    assert [p.id for p in registry.live()] == ["d"]


def test_departure_memory_is_bounded(registry: InstanceRegistry, clock: Clock) -> None:
    for index, name in enumerate("abcde"):
        clock.now += 1
        registry.left(name, beat=index)
    assert [d.id for d in registry.departed()] == ["e", "d", "c"]


def test_ttl_must_be_positive(clock: Clock) -> None:
    with pytest.raises(ValueError, match="ttl"):
        InstanceRegistry(ttl=0, clock=clock)


def test_a_peer_is_kept_for_the_ttl_it_announced(registry: InstanceRegistry, clock: Clock):
    registry.heard("slow", {"n": 1}, beat=1, ttl=30.0)  # beats every ~9 s in a big cluster
    registry.heard("fast", {"n": 1}, beat=1)
    clock.now += 7.1
    assert [p.id for p in registry.live()] == ["slow"]
    assert registry.get("slow") is not None
    assert registry.get("fast") is None
    clock.now += 23.0
    assert registry.live() == []


def test_an_announced_ttl_never_shortens_the_registry_s_own(registry: InstanceRegistry, clock):
    registry.heard("a", {"n": 1}, beat=1, ttl=1.0)
    clock.now += 6.9
    assert [p.id for p in registry.live()] == ["a"]

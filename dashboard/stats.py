"""What an instance reports about itself, and how the cluster view is put together.

Rules:
- `INST` is the contract's per-instance object (`id`, `connections`, `by_transport`, `symbols`)
  plus extra fields (`dashboard/instance.py` types both); a peer's INST arrives as JSON, so
  `sanitize` checks the contract fields before anything sums them (a bad peer message must not
  break every dashboard).
- Rates are per second between two samples of monotonic totals (`RateMeter`), sampled about
  once a second by the presence loop, so reading stats never changes them.
- The 15-minute history is kept here, server-side and bounded, so a freshly opened dashboard
  draws the last 15 minutes at once.
- Clocks are injected: `clock` (monotonic) ages peers, `wall` stamps what browsers display.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from dashboard.instance import BrokerView, ContractStats, InstanceStats
from ticker.core.registry import Departure, InstanceRegistry, Peer
from ticker.server.runtime import Runtime
from ticker.stream.session import TRANSPORTS
from ticker.stream.totals import send_totals

Inst = Mapping[str, Any]  # an instance as the cluster view holds it: INST and its `age_s`
HISTORY_SECONDS = 15 * 60
MAX_SYMBOLS_PER_PEER = 10_000


class RateMeter:
    """Per-second rates of monotonic totals, between the last two `update`s."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last: tuple[float, dict[str, float]] | None = None
        self.rates: dict[str, float] = {}

    def update(self, totals: Mapping[str, float]) -> dict[str, float]:
        """Take a new sample of `totals`; return (and keep) the rates since the previous one."""
        now = self._clock()
        if self._last is None:
            self.rates = {name: 0.0 for name in totals}
        else:
            then, previous = self._last
            elapsed = now - then
            self.rates = {
                name: max(0.0, value - previous.get(name, value)) / elapsed if elapsed > 0 else 0.0
                for name, value in totals.items()
            }
        self._last = (now, dict(totals))
        return self.rates


class LocalStats:
    """This instance's INST, read from its `Runtime`."""

    def __init__(self, runtime: Runtime, instance_id: str, clock: Callable[[], float]) -> None:
        self.runtime = runtime
        self.id = instance_id
        self.rates = RateMeter(clock)
        self.rates.update(self._totals())

    def sample(self) -> None:
        """Update the per-second rates (about once a second)."""
        self.rates.update(self._totals())

    def _totals(self) -> dict[str, float]:
        counters = self.runtime.hub.counters
        sent = send_totals(self.runtime.hub).values()
        return {
            "ticks_in": counters.ticks_in,
            "ticks_accepted": counters.ticks_accepted,
            "frames_sent": sum(s.frames for s in sent),
            "ticks_sent": sum(s.ticks for s in sent),
        }

    def snapshot(self) -> InstanceStats:
        """The contract's INST for this instance, with every extra field."""
        runtime, hub = self.runtime, self.runtime.hub
        by_transport = dict(hub.connections_by_transport())
        symbols = Counter(hub.subscribers_by_symbol())
        for polled in runtime.pollers.waiting():  # long-poll clients between two polls
            by_transport["longpoll"] += 1
            symbols.update(polled)
        counters = hub.counters
        sent = send_totals(hub)
        rates = self.rates.rates
        p50, p99 = runtime.latency.percentile(50), runtime.latency.percentile(99)
        return {
            "id": self.id,
            "connections": sum(by_transport.values()),
            "by_transport": by_transport,
            "symbols": dict(sorted(symbols.items())),
            "host": runtime.settings.instance_id,
            "boot": runtime.settings.boot_id,
            "pid": os.getpid(),
            "started_at": runtime.started_at,
            "ready": runtime.ready(),
            "draining": runtime.draining,
            "ticks_in_per_s": round(rates.get("ticks_in", 0.0), 2),
            "ticks_accepted_per_s": round(rates.get("ticks_accepted", 0.0), 2),
            "frames_sent_per_s": round(rates.get("frames_sent", 0.0), 2),
            "ticks_sent_per_s": round(rates.get("ticks_sent", 0.0), 2),
            "totals": {
                "ticks_in": counters.ticks_in,
                "ticks_accepted": counters.ticks_accepted,
                "duplicates": counters.duplicates,
                "stale": counters.stale,
                "gaps": counters.gaps,
                "reordered": counters.order.reordered,
                "late": counters.stale,
                "malformed": counters.malformed,
                "malformed_ticks": counters.malformed_ticks,
                "frames_sent": sum(s.frames for s in sent.values()),
                "ticks_sent": sum(s.ticks for s in sent.values()),
                "conflated": sum(s.conflated for s in sent.values()),
                "direct_writes": sum(s.direct for s in sent.values()),
            },
            "errors_by_code": dict(counters.errors_by_code),
            "latency_ms": {"p50": _ms(p50), "p99": _ms(p99)},
            "broker": broker_health(runtime),
        }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def broker_health(runtime: Runtime) -> BrokerView:
    """The subscription's health as far as the broker tells (Pub/Sub reports more than memory)."""
    health = runtime.broker.health()
    view: BrokerView = {"kind": runtime.settings.broker, "healthy": health.healthy}
    if health.subscription is not None:
        view["subscription"] = health.subscription
    if health.resubscribes is not None:
        view["resubscribes"] = health.resubscribes
    if health.callback_errors is not None:
        view["callback_errors"] = health.callback_errors
    return view


def sanitize(payload: object) -> ContractStats | None:
    """A peer's INST if its contract fields are well-formed; None otherwise."""
    if not isinstance(payload, dict):
        return None
    ident, connections = payload.get("id"), payload.get("connections")
    by_transport, symbols = payload.get("by_transport"), payload.get("symbols")
    if not isinstance(ident, str) or not 0 < len(ident) <= 200:
        return None
    if not _count(connections) or not isinstance(by_transport, dict):
        return None
    if not all(_count(by_transport.get(t)) for t in TRANSPORTS):
        return None
    if not isinstance(symbols, dict) or len(symbols) > MAX_SYMBOLS_PER_PEER:
        return None
    if not all(isinstance(k, str) and _count(v) for k, v in symbols.items()):
        return None
    return cast(ContractStats, dict(payload))  # checked above; extra fields ride along


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def cluster_view(
    local: Inst,
    peers: Iterable[Peer],
    departed: Iterable[Departure],
    now: float,
    *,
    with_symbols: bool = True,
) -> dict[str, Any]:
    """The contract's `cluster` object: every live instance (this one first) and the totals.

    `with_symbols=False` skips summing every instance's symbols map (the once-a-second history
    point needs none of it, and with many instances it is most of the work).
    """
    instances = [{**local, "age_s": 0.0}]
    for peer in peers:
        if peer.id != local["id"]:
            instances.append({**peer.stats, "age_s": round(now - peer.seen_at, 1)})
    symbols: Counter[str] = Counter()
    by_transport: Counter[str] = Counter({t: 0 for t in TRANSPORTS})
    for inst in instances:
        if with_symbols:
            symbols.update(inst["symbols"])
        by_transport.update({t: inst["by_transport"][t] for t in TRANSPORTS})
    return {
        "connections": sum(inst["connections"] for inst in instances),
        "instances": instances,
        "by_transport": dict(by_transport),
        "symbols": dict(sorted(symbols.items())),
        "ticks_in_per_s": _total(instances, "ticks_in_per_s"),
        "ticks_sent_per_s": _total(instances, "ticks_sent_per_s"),
        "frames_sent_per_s": _total(instances, "frames_sent_per_s"),
        "latency_ms": {"p50": _worst(instances, "p50"), "p99": _worst(instances, "p99")},
        "departed": [_departure(d, now) for d in departed],
    }


def _departure(departure: Departure, now: float) -> dict[str, Any]:
    """A departed peer for the dashboard: who, why, how long ago, and its last known stats."""
    return {
        "id": departure.id,
        "reason": departure.reason,
        "ago_s": round(now - departure.at, 1),
        "last": dict(departure.stats) if departure.stats is not None else None,
    }


def _total(instances: Sequence[Inst], key: str) -> float:
    return round(sum(float(i.get(key) or 0.0) for i in instances), 2)


def _worst(instances: Sequence[Inst], key: str) -> float | None:
    """The worst instance's percentile: honest, since percentiles cannot be averaged."""
    values = [
        float(v)
        for i in instances
        if isinstance(i.get("latency_ms"), dict)
        and isinstance(v := i["latency_ms"].get(key), int | float)
    ]
    return max(values, default=None)


class ClusterStats:
    """This instance plus what the registry heard: the API's JSON and the 15-minute history."""

    def __init__(
        self,
        local: LocalStats,
        registry: InstanceRegistry,
        wall: Callable[[], float],
        history_points: int = HISTORY_SECONDS,
    ) -> None:
        self.local = local
        self.registry = registry
        self._wall = wall
        self.history: deque[dict[str, Any]] = deque(maxlen=history_points)

    def view(self) -> dict[str, Any]:
        """`{"instance": INST, "cluster": {...}}`, the shape of `GET /admin/api/stats`."""
        local = self.local.snapshot()
        now = self.registry.now()
        cluster = cluster_view(local, self.registry.live(), self.registry.departed(), now)
        return {"instance": local, "cluster": cluster, "time": self._wall()}

    def sample(self) -> dict[str, Any]:
        """Refresh local rates and append one history point of the cluster totals."""
        self.local.sample()
        now = self.registry.now()
        live, departed = self.registry.live(), self.registry.departed()
        cluster = cluster_view(self.local.snapshot(), live, departed, now, with_symbols=False)
        point = {
            "t": round(self._wall(), 3),
            "connections": cluster["connections"],
            "instances": len(cluster["instances"]),
            "ticks_in_per_s": cluster["ticks_in_per_s"],
            "ticks_sent_per_s": cluster["ticks_sent_per_s"],
            "p50": cluster["latency_ms"]["p50"],
            "p99": cluster["latency_ms"]["p99"],
        }
        self.history.append(point)
        return point

"""The shape of INST, what an instance reports about itself (`/admin/api/stats`, heartbeats).

Rules:
- `ContractStats` is the contract's per-instance object (`id`, `connections`, `by_transport`,
  `symbols`): all a peer's heartbeat is checked for (`stats.sanitize`), so all that code may rely
  on in a peer's stats. Anything else a peer sends is read with `.get` and checked where used.
- `InstanceStats` is what this instance publishes: the contract's fields and every extra one,
  each named and typed here once (the dashboard page and the history read them).
- JSON-ready: plain dicts, lists, numbers, strings and None, so orjson writes them as they are.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from ticker.stream.session import Transport


class ContractStats(TypedDict):
    """The contract's fields of INST."""

    id: str
    connections: int
    by_transport: dict[Transport, int]  # every transport present, long-poll clients included
    symbols: dict[str, int]  # symbol -> local subscribers


class Totals(TypedDict):
    """Monotonic counters since the process started."""

    ticks_in: int
    ticks_accepted: int
    duplicates: int
    stale: int
    gaps: int
    reordered: int
    late: int
    malformed: int
    malformed_ticks: int
    frames_sent: int
    ticks_sent: int
    conflated: int
    direct_writes: int  # ticks the fan-out wrote straight onto a socket (also in the two above)


class Percentiles(TypedDict):
    """Publish-to-send latency in ms over the recent window (None: no samples yet)."""

    p50: float | None
    p99: float | None


class BrokerView(TypedDict):
    """The broker's health as the dashboard shows it; Pub/Sub tells more than memory."""

    kind: str
    healthy: bool
    subscription: NotRequired[str]
    resubscribes: NotRequired[int]
    callback_errors: NotRequired[int]


class InstanceStats(ContractStats):
    """This instance's INST: the contract's fields and the extra ones."""

    host: str
    boot: str
    pid: int
    started_at: float
    ready: bool
    draining: bool
    ticks_in_per_s: float
    ticks_accepted_per_s: float
    frames_sent_per_s: float
    ticks_sent_per_s: float
    totals: Totals
    errors_by_code: dict[str, int]
    latency_ms: Percentiles
    broker: BrokerView

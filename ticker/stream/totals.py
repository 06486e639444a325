"""What each transport has sent since start: the read model behind `/metrics` and the dashboard.

Rule: monotonic over the process's life. A departed session's counts were folded into the hub's
`retired_*` counters when it detached; live sessions are added at read time, so nothing on the
hot path counts twice and a scrape never changes what it reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from ticker.stream.hub import Hub
from ticker.stream.session import TRANSPORTS


@dataclass(frozen=True, slots=True)
class SendTotals:
    """What one transport has sent since start, live and departed sessions together."""

    frames: int = 0
    ticks: int = 0
    conflated: int = 0
    direct: int = 0  # ticks written straight by the fan-out, one frame each (also in the above)


def send_totals(hub: Hub) -> dict[str, SendTotals]:
    """Per transport: frames, ticks, conflated ticks and direct writes, monotonic over the
    process's life (see `Session.sent` for what counts)."""
    counters = hub.counters
    frames = {t: counters.retired_frames[t] for t in TRANSPORTS}
    ticks = {t: counters.retired_ticks[t] for t in TRANSPORTS}
    conflated = {t: counters.retired_conflated[t] for t in TRANSPORTS}
    direct = {t: counters.retired_direct[t] for t in TRANSPORTS}
    for session in hub.sessions():
        frames[session.transport] += session.frames_sent
        ticks[session.transport] += session.ticks_sent
        conflated[session.transport] += session.outbox.conflated
        direct[session.transport] += session.direct_sent
    return {t: SendTotals(frames[t], ticks[t], conflated[t], direct[t]) for t in TRANSPORTS}

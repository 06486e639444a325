"""InstanceRegistry: what this process has heard from its peers, and who has gone quiet.

Rules (centrifuge's node registry, with the clock injected):
- A peer is live while its last heartbeat is younger than `ttl` (about three missed beats), or
  than the `ttl` that heartbeat announced: a sender that beats less often in a big cluster
  (dashboard/presence.py) says how long to keep it, so slower beats never look like deaths.
- Heartbeats carry a per-boot `beat` number; an older or repeated one (Pub/Sub redelivers and
  reorders) never overwrites a newer one, and never brings back a peer that said goodbye.
- Whoever leaves (expired or said goodbye) is remembered for `keep_departed` seconds so the
  dashboard can say so, then forgotten. Memory is bounded by `max_peers`.
Pure: no I/O, no asyncio; stats are opaque JSON-like mappings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

Reason = Literal["expired", "left"]


@dataclass(frozen=True, slots=True)
class Peer:
    """The latest stats one peer published, and when (by our clock) we heard them."""

    id: str
    stats: Mapping[str, object]
    seen_at: float
    beat: int
    ttl: float | None = None  # what the peer announced; None: the registry's own ttl


@dataclass(frozen=True, slots=True)
class Departure:
    """A peer that left the view: when, why, its last beat (to ignore late echoes), last stats."""

    id: str
    at: float
    reason: Reason
    beat: int
    stats: Mapping[str, object] | None = None


class InstanceRegistry:
    """Live peers keyed by id, expiring `ttl` seconds after their last heartbeat."""

    def __init__(
        self,
        ttl: float,
        clock: Callable[[], float],
        *,
        keep_departed: float = 300.0,
        max_peers: int = 1000,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self.keep_departed = keep_departed
        self.max_peers = max_peers
        self._clock = clock
        self._peers: dict[str, Peer] = {}
        self._departed: dict[str, Departure] = {}

    def now(self) -> float:
        """The registry's clock: peers' ages are measured against it."""
        return self._clock()

    def heard(
        self, peer_id: str, stats: Mapping[str, object], beat: int, ttl: float | None = None
    ) -> bool:
        """Record a heartbeat; False when it is older than what we have (or a goodbye's echo).

        `ttl`, when the peer announced one, is how long to keep it without news (never less
        than the registry's own).
        """
        current = self._peers.get(peer_id)
        if current is not None and beat <= current.beat:
            return False
        gone = self._departed.get(peer_id)
        if gone is not None:
            if gone.reason == "left" or beat <= gone.beat:
                return False
            del self._departed[peer_id]  # it was only late (a long pause): welcome back
        if current is None and len(self._peers) >= self.max_peers:
            self.prune()
            if len(self._peers) >= self.max_peers:
                return False
        keep = None if ttl is None else max(ttl, self.ttl)
        self._peers[peer_id] = Peer(peer_id, stats, self._clock(), beat, keep)
        return True

    def get(self, peer_id: str) -> Peer | None:
        """The live entry of `peer_id`, if any (without expiring anyone)."""
        return self._peers.get(peer_id)

    def left(self, peer_id: str, beat: int) -> None:
        """A peer said goodbye (graceful shutdown): drop it now rather than after `ttl`."""
        current = self._peers.pop(peer_id, None)
        last = max(beat, current.beat if current else beat)
        stats = current.stats if current else None
        self._depart(Departure(peer_id, self._clock(), "left", last, stats))

    def prune(self) -> list[Departure]:
        """Expire quiet peers and forget old departures; returns the peers that expired now."""
        now = self._clock()
        expired = [p for p in self._peers.values() if now - p.seen_at > (p.ttl or self.ttl)]
        gone = []
        for peer in expired:
            del self._peers[peer.id]
            departure = Departure(peer.id, now, "expired", peer.beat, peer.stats)
            self._depart(departure)
            gone.append(departure)
        for old in [d for d in self._departed.values() if now - d.at > self.keep_departed]:
            del self._departed[old.id]
        return gone

    def live(self) -> list[Peer]:
        """The peers heard within `ttl`, sorted by id (expires the others first)."""
        self.prune()
        return sorted(self._peers.values(), key=lambda p: p.id)

    def departed(self) -> list[Departure]:
        """Peers that left within `keep_departed`, most recent first."""
        self.prune()
        return sorted(self._departed.values(), key=lambda d: d.at, reverse=True)

    def _depart(self, departure: Departure) -> None:
        self._departed[departure.id] = departure
        if len(self._departed) > self.max_peers:
            oldest = min(self._departed.values(), key=lambda d: d.at)
            del self._departed[oldest.id]

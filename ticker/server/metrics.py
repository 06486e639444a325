"""`GET /metrics`: the instance's counters, gauges and latency histogram in Prometheus text.

Rules:
- One `CollectorRegistry` per app, never prometheus-client's global default: several apps in one
  test process (or one process per Hypercorn worker) must not collide or share numbers.
- Nothing is counted twice on the hot path. A custom collector reads the hub's own counters at
  scrape time; the only hot-path addition is `ticker.core.latency.LatencyHistogram.record`, an
  O(log buckets) bisect.
- Per-instance only: Prometheus scrapes every instance and sums; cluster totals here would be
  counted once per instance.
- Edge code: this module depends on the runtime, never the other way round. The runtime records
  into pure parts (`ticker.core.latency`, the hub's counters, `ticker.stream.totals`), so
  importing it loads neither prometheus-client nor Quart (`tests/unit/test_layering.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector
from quart import Blueprint, Quart, Response, current_app

from ticker.core.latency import LatencyHistogram
from ticker.server.runtime import Runtime
from ticker.stream.hub import Hub, HubCounters
from ticker.stream.session import TRANSPORTS
from ticker.stream.totals import send_totals

EXTENSION = "ticker.server.metrics"

bp = Blueprint("metrics", __name__)


class RuntimeCollector:
    """Reads a `Runtime` at scrape time (a prometheus-client custom collector)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        """Yield every metric family, freshly read."""
        runtime = self.runtime
        hub = runtime.hub
        yield from self._gauges(runtime)
        c = hub.counters
        for name, value, doc in (
            ("messages_received", c.messages_in, "Broker messages (one tick or a pack)."),
            ("packed_messages", c.packed_in, "Broker messages that were packed."),
            ("ticks_received", c.ticks_in, "Valid ticks received from the broker."),
            ("ticks_accepted", c.ticks_accepted, "Ticks accepted (new seq) and fanned out."),
            ("ticks_duplicate", c.duplicates, "Ticks dropped as duplicates."),
            ("ticks_stale", c.stale, "Ticks dropped as older than the latest seq."),
            ("seq_gaps", c.gaps, "Accepted ticks that skipped at least one seq."),
            ("ticks_reordered", c.order.reordered, "Ticks ahead of a hole released in order."),
            ("ticks_rebased", c.order.rebased, "Poison-seq recoveries onto a lower lineage."),
            ("symbols_evicted", c.evicted, "Symbols dropped by TICKER_MAX_TRACKED_SYMBOLS."),
            ("malformed_messages", c.malformed, "Broker messages unusable as a whole."),
            ("malformed_ticks", c.malformed_ticks, "Ticks refused, alone or in a pack."),
            ("deliveries", c.deliveries, "Tick offers that reached a client outbox."),
        ):
            yield CounterMetricFamily(f"ticker_{name}", doc, value=value)
        errors = CounterMetricFamily(
            "ticker_error_frames", "Error frames sent, by code.", labels=["code"]
        )
        for code, count in sorted(c.errors_by_code.items()):
            errors.add_metric([code], count)
        yield errors
        yield from self._admission(c)
        yield from self._sent(hub)
        yield self._latency(runtime.latency)

    def _gauges(self, runtime: Runtime) -> Iterable[Metric]:
        connections = GaugeMetricFamily(
            "ticker_connections", "Connected clients, by transport.", labels=["transport"]
        )
        for transport, count in runtime.hub.connections_by_transport().items():
            connections.add_metric([transport], count)
        yield connections
        yield GaugeMetricFamily(
            "ticker_symbols_subscribed",
            "Symbols with at least one local subscriber.",
            value=len(runtime.hub.subscribers_by_symbol()),
        )
        yield GaugeMetricFamily("ticker_ready", "1 when ready for traffic.", value=runtime.ready())
        yield GaugeMetricFamily(
            "ticker_symbols_tracked",
            "Symbols held in book, history and order state.",
            value=runtime.hub.tracked_symbols(),
        )
        yield GaugeMetricFamily(
            "ticker_ticks_held",
            "Ticks waiting in the reorder window for a missing seq.",
            value=runtime.hub.sequencer.held(),
        )
        lag = runtime.broker.stats().get("lag")
        if isinstance(lag, float | int):
            yield GaugeMetricFamily(
                "ticker_ingest_lag_seconds",
                "Publish-to-handling delay of the latest batch (Pub/Sub publish_time).",
                value=lag,
            )
        healthy = runtime.broker.healthy()
        yield GaugeMetricFamily("ticker_broker_healthy", "1 when the stream is up.", value=healthy)
        yield GaugeMetricFamily(
            "ticker_start_time_seconds", "Process start (epoch seconds).", value=runtime.started_at
        )

    def _admission(self, c: HubCounters) -> Iterable[Metric]:
        opened = CounterMetricFamily(
            "ticker_connections_opened",
            "Streams opened, by transport and client kind (browser, or native: no Origin).",
            labels=["transport", "client"],
        )
        for name in TRANSPORTS:
            for kind in ("browser", "native"):
                opened.add_metric([name, kind], c.opened[(name, kind)])
        yield opened
        refused = CounterMetricFamily(
            "ticker_connections_refused",
            "Streams refused before they opened, by transport and reason (403/429).",
            labels=["transport", "reason"],
        )
        for (where, reason), count in sorted(c.refused.items()):
            refused.add_metric([where, reason], count)
        yield refused

    def _sent(self, hub: Hub) -> Iterable[Metric]:
        families = {
            "frames": CounterMetricFamily(
                "ticker_frames_sent", "Frames sent to clients.", labels=["transport"]
            ),
            "ticks": CounterMetricFamily(
                "ticker_ticks_sent", "Ticks sent to clients.", labels=["transport"]
            ),
            "conflated": CounterMetricFamily(
                "ticker_ticks_conflated",
                "Ticks replaced by a newer one before a slow client got them.",
                labels=["transport"],
            ),
            "direct": CounterMetricFamily(
                "ticker_direct_writes",
                "Ticks written straight onto the socket by the fan-out, one frame each "
                "(also counted in frames and ticks sent).",
                labels=["transport"],
            ),
        }
        for transport, totals in send_totals(hub).items():
            families["frames"].add_metric([transport], totals.frames)
            families["ticks"].add_metric([transport], totals.ticks)
            families["conflated"].add_metric([transport], totals.conflated)
            families["direct"].add_metric([transport], totals.direct)
        return families.values()

    def _latency(self, latency: LatencyHistogram) -> Metric:
        family = HistogramMetricFamily(
            "ticker_publish_to_send_latency_seconds",
            "From the tick's producer timestamp to the frame being written to a client.",
        )
        buckets = [
            ("+Inf" if bound == float("inf") else repr(bound / 1000), float(count))
            for bound, count in latency.cumulative()
        ]
        family.add_metric([], buckets, latency.sum_ms / 1000)
        return family


def install(app: Quart, runtime: Runtime) -> CollectorRegistry:
    """Give `app` its own registry (runtime metrics plus process metrics) and `/metrics`."""
    registry = CollectorRegistry()
    registry.register(RuntimeCollector(runtime))
    ProcessCollector(registry=registry)
    app.extensions[EXTENSION] = registry
    app.register_blueprint(bp)
    return registry


@bp.get("/metrics")
async def metrics() -> Response:
    """Prometheus text exposition of this instance."""
    registry = current_app.extensions[EXTENSION]
    assert isinstance(registry, CollectorRegistry)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

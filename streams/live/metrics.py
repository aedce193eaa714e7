"""Prometheus metrics of the worker: the data-quality figures per instrument, read at scrape time.

A custom collector reads ``QualityMonitor`` when Prometheus scrapes, so the hot path only bumps
plain integers and the figures are exactly the ones ``tickwise status`` prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streams.operators.validation import QualityMonitor


class QualityCollector:
    """Expose a ``QualityMonitor``'s figures as Prometheus metric families."""

    def __init__(self, monitor: QualityMonitor) -> None:
        self.monitor = monitor

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        for _ in range(5):  # the event loop may add an instrument while we copy
            try:
                return self.monitor.figures()
            except RuntimeError:
                continue
        return self.monitor.figures()

    def collect(self) -> Iterator[Any]:
        """Yield the metric families (called by prometheus_client on every scrape)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        inst = ["instrument"]
        accepted = CounterMetricFamily(
            "tickwise_ticks_accepted", "Ticks passed to ticks.clean.", labels=inst
        )
        rejected = CounterMetricFamily(
            "tickwise_ticks_rejected",
            "Messages quarantined, by reason code.",
            labels=["instrument", "reason"],
        )
        gaps = CounterMetricFamily(
            "tickwise_event_time_gaps", "Event-time gaps longer than the gap limit.", labels=inst
        )
        late = CounterMetricFamily(
            "tickwise_late_accepted_ticks", "Ticks accepted behind the watermark.", labels=inst
        )
        max_gap = GaugeMetricFamily(
            "tickwise_max_event_time_gap_seconds", "Longest event-time gap seen.", labels=inst
        )
        max_late = GaugeMetricFamily(
            "tickwise_max_lateness_seconds", "Largest lateness of an accepted tick.", labels=inst
        )
        watermark = GaugeMetricFamily(
            "tickwise_event_time_watermark_seconds",
            "Highest event time accepted (Unix seconds).",
            labels=inst,
        )
        for name, f in self._snapshot().items():
            accepted.add_metric([name], f["accepted"])
            for reason, n in f["rejected_by_reason"].items():
                rejected.add_metric([name, reason], n)
            gaps.add_metric([name], f["gaps"])
            late.add_metric([name], f["late_accepted"])
            max_gap.add_metric([name], f["max_gap_s"])
            max_late.add_metric([name], f["max_lateness_s"])
            if f["watermark_ns"] >= 0:
                watermark.add_metric([name], f["watermark_ns"] / 1e9)
        yield from (accepted, rejected, gaps, late, max_gap, max_late, watermark)


def serve_metrics(monitor: QualityMonitor, port: int, addr: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; return the registry."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(QualityCollector(monitor))  # type: ignore[arg-type]
    start_http_server(port, addr=addr, registry=registry)
    return registry

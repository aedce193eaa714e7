"""Prometheus metrics of the worker: the data-quality figures per instrument, read at scrape time.

A custom collector reads ``QualityMonitor`` when Prometheus scrapes, so the hot path only bumps
plain integers and the figures are exactly the ones ``tickwise status`` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tickwise.schemas.decisions import Decision, Signal
from tickwise.streams.operators.validation import QualityMonitor


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


def serve_metrics(
    monitor: QualityMonitor, port: int, addr: str = "127.0.0.1", registry: Any = None
) -> Any:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; return the registry.

    ``registry`` (e.g. a ``PipelineMetrics.registry``) gets the quality figures added to it.
    """
    from prometheus_client import CollectorRegistry

    registry = registry if registry is not None else CollectorRegistry()
    registry.register(QualityCollector(monitor))  # type: ignore[arg-type]
    return serve_registry(registry, port, addr)


def serve_registry(registry: Any, port: int, addr: str = "127.0.0.1") -> Any:
    """Serve ``registry`` at ``/metrics`` on ``addr:port`` from a daemon thread; return it.

    The one way tickwise's processes without a web server of their own expose metrics.
    """
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=registry)
    return registry


# Every sample of a /metrics page: (name, sorted labels) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_samples(text: str) -> Samples:
    """Every sample of a ``/metrics`` page's text, by name and sorted labels."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> Samples:
    """Every sample ``/metrics`` on ``host:port`` serves; raises ``OSError`` if none answers.

    How the demo and the tests read a process's figures the way Prometheus would.
    """
    import urllib.request

    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as response:
        return parse_samples(response.read().decode())


# Wall-clock seconds from a raw tick's produce time to the commit of its outputs.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class AccuracyCollector:
    """Each model's rolling accuracy per instrument, read from the pipelines' monitors."""

    def __init__(self, monitors: Callable[[], list[Any]]) -> None:
        self.monitors = monitors

    def collect(self) -> Iterator[Any]:
        """Yield the accuracy gauge (called on every scrape, from the metrics thread)."""
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily(
            "tickwise_model_rolling_accuracy",
            "Share of scored signals whose direction was right, over the monitor's window.",
            labels=["instrument", "model"],
        )
        for monitor in self.monitors():
            for instrument in monitor.instruments():
                for _ in range(5):  # the pipeline thread may append while we read
                    try:
                        models = monitor.stats(instrument)["models"]
                        break
                    except RuntimeError:
                        continue
                else:
                    continue
                for model, m in models.items():
                    if m["accuracy"] is not None:
                        gauge.add_metric([instrument, model], m["accuracy"])
        yield gauge


class BatchHistogram:
    """A Prometheus histogram filled a batch of observations at a time.

    Why: ``prometheus_client.Histogram.observe`` takes a lock and walks the buckets once per
    value, about a microsecond; a worker observes every tick it commits.
    """

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = np.array(buckets, dtype=np.float64)
        self.counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # the last: above every bound
        self.total = 0.0

    def observe_many(self, values: np.ndarray) -> None:
        """Count each value in the first bucket whose upper bound holds it."""
        if values.size:
            at = np.searchsorted(self.bounds, values, side="left")
            self.counts += np.bincount(at, minlength=self.counts.size)
            self.total += float(values.sum())

    def collect(self) -> Iterator[Any]:
        """Yield the histogram family (called on every scrape, from the metrics thread)."""
        from prometheus_client.core import HistogramMetricFamily

        cumulative = np.cumsum(self.counts).tolist()
        bounds = [*(repr(float(b)) for b in self.bounds), "+Inf"]
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], list(zip(bounds, cumulative, strict=True)), self.total)
        yield family


class PipelineMetrics:
    """What the worker emits and how fast: counted from each output as it is produced.

    Signals, decisions and risk rejections by reason, raw ticks taken, the wall-clock latency
    from a tick's produce time (the Kafka timestamp its feed set) to the commit of its outputs,
    and the consumer lag of each raw partition. Wall clock here is for measurement only.
    """

    def __init__(self, monitors: Callable[[], list[Any]] | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        reg = self.registry
        self.ticks_in = Counter(
            "tickwise_ticks_in", "Raw messages taken from ticks.raw.", ["partition"], registry=reg
        )
        self.signals = Counter(
            "tickwise_signals", "Signals emitted.", ["instrument", "model", "stage"], registry=reg
        )
        self.decisions = Counter(
            "tickwise_decisions",
            "Decisions written, by action and whether risk approved them.",
            ["instrument", "action", "approved"],
            registry=reg,
        )
        self.rejections = Counter(
            "tickwise_risk_rejections",
            "Risk rejections, by reason code.",
            ["instrument", "reason"],
            registry=reg,
        )
        self.latency = BatchHistogram(
            "tickwise_tick_to_decision_seconds",
            "Wall clock from a raw tick's Kafka timestamp to the commit of its outputs.",
            LATENCY_BUCKETS,
        )
        reg.register(self.latency)  # type: ignore[arg-type]
        self.lag = Gauge(
            "tickwise_consumer_lag",
            "Raw messages behind the end of each assigned ticks.raw partition.",
            ["partition"],
            registry=reg,
        )
        if monitors is not None:
            reg.register(AccuracyCollector(monitors))  # type: ignore[arg-type]

    def on_output(self, out: Any) -> None:
        """Count one pipeline output (called from the partition runner's thread)."""
        message = out.message
        if isinstance(message, Decision):
            self.decisions.labels(
                message.instrument, message.action.value, str(message.approved).lower()
            ).inc()
            for reason in message.reject_reasons:
                self.rejections.labels(message.instrument, reason).inc()
        elif isinstance(message, Signal):
            self.signals.labels(message.instrument, message.model_id, message.stage).inc()

    def on_batch(
        self, partition: int, produced_s: list[float], committed_s: float, lag: int | None
    ) -> None:
        """Record a committed batch: its size, each tick's latency and the partition's lag."""
        self.ticks_in.labels(str(partition)).inc(len(produced_s))
        stamps = np.asarray(produced_s, dtype=np.float64)
        self.latency.observe_many(np.maximum(0.0, committed_s - stamps[stamps > 0]))
        if lag is not None:
            self.lag.labels(str(partition)).set(lag)

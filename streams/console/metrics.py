"""Prometheus metrics of the console: what it reads (per instrument and model) and what it does.

The topic-derived figures are read from the ``ConsoleView`` at scrape time, so the consumer only
updates plain counters; the console's own activity (pages open, controls sent, consumer lag)
uses ordinary prometheus_client instruments. Each console has its own registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tickwise.streams.console.view import ConsoleView


class ViewCollector:
    """Expose a ``ConsoleView``'s figures as metric families."""

    def __init__(self, view: ConsoleView) -> None:
        self.view = view

    def collect(self) -> Iterator[Any]:
        """Yield the families (called by prometheus_client on every scrape, on the loop)."""
        v = self.view
        decisions = CounterMetricFamily(
            "tickwise_console_decisions", "Decisions read, by instrument.", labels=["instrument"]
        )
        orders = CounterMetricFamily(
            "tickwise_console_orders", "Approved orders read, by instrument.", labels=["instrument"]
        )
        rejections = CounterMetricFamily(
            "tickwise_console_rejections", "Risk rejections read, by reason.", labels=["reason"]
        )
        quarantined = CounterMetricFamily(
            "tickwise_console_quarantined", "Quarantine records read, by reason.", labels=["reason"]
        )
        messages = CounterMetricFamily(
            "tickwise_console_messages", "Messages read, by topic.", labels=["topic"]
        )
        undecodable = CounterMetricFamily(
            "tickwise_console_undecodable", "Messages that did not decode.", labels=["topic"]
        )
        accuracy = GaugeMetricFamily(
            "tickwise_console_model_accuracy",
            "Rolling accuracy as the console scores signals (the worker's own is authoritative).",
            labels=["instrument", "model"],
        )
        pnl = GaugeMetricFamily(
            "tickwise_console_pnl", "Paper account P&L by instrument.", labels=["instrument"]
        )
        halted = GaugeMetricFamily(
            "tickwise_console_halted",
            "1 when the instrument's risk state is HALTED.",
            labels=["instrument"],
        )
        for name, inst in list(v.instruments.items()):
            decisions.add_metric([name], inst.decisions)
            orders.add_metric([name], inst.approved_orders)
            halted.add_metric([name], float(inst.risk_state == "HALTED"))
            value = v.pnl(inst)
            if value is not None:
                pnl.add_metric([name], value)
        for reason, n in list(v.rejections.items()):
            rejections.add_metric([reason], n)
        for reason, n in list(v.quality.items()):
            quarantined.add_metric([reason], n)
        for topic, n in list(v.counts.items()):
            messages.add_metric([topic], n)
        for topic, n in list(v.undecodable.items()):
            undecodable.add_metric([topic], n)
        for row in v.models():
            if row["accuracy"] is not None:
                accuracy.add_metric([row["instrument"], row["model"]], row["accuracy"])
        yield from (decisions, orders, rejections, quarantined, messages, undecodable)
        yield from (accuracy, pnl, halted)


class ConsoleMetrics:
    """The console's registry and its own instruments."""

    def __init__(self, view: ConsoleView) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ViewCollector(view))  # type: ignore[arg-type]
        self.pages = Gauge(
            "tickwise_console_pages", "Pages receiving live updates.", registry=self.registry
        )
        self.controls = Counter(
            "tickwise_console_controls",
            "Control commands sent from the console, by command and operator.",
            ["command", "operator"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "tickwise_console_consumer_lag",
            "Messages behind the end of each topic (console consumer).",
            ["topic"],
            registry=self.registry,
        )

    def set_lag(self, lag: dict[str, int]) -> None:
        """Record the console consumer's lag per catalogue topic."""
        for topic, n in lag.items():
            self.lag.labels(topic).set(n)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

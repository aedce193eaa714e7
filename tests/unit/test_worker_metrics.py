"""The worker's and the console's Prometheus figures, and the Grafana dashboard that reads them."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from stubs import IMPLS, Stream, decide, fast_config, threshold_rule

from tickwise.schemas.decisions import Decision, Signal
from tickwise.schemas.ticks import CleanTick
from tickwise.schemas.topics import CONTROL
from tickwise.streams.console.metrics import ConsoleMetrics
from tickwise.streams.console.view import CONTRACTS, ConsoleView
from tickwise.streams.live.metrics import PipelineMetrics, QualityCollector
from tickwise.streams.live.state import Output
from tickwise.streams.operators.validation import QualityMonitor
from tickwise.streams.sources import synthetic

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"


def outputs_of(count: int = 3000, impl: str = "engine") -> tuple[Stream, list[Output]]:
    """What a worker's partition publishes, and the stream (its state's monitor: what /metrics
    reads)."""
    # the threshold rule: the dashboard's rejection counters need orders that risk refuses
    records = synthetic(seed=21, count=count, bad_rate=0.02)
    stream = decide(impl, records, threshold_rule(fast_config()), finish=False)
    return stream, stream.outputs


@pytest.mark.parametrize("impl", IMPLS)
def test_signals_decisions_and_rejections_are_counted_from_the_outputs(impl: str) -> None:
    stream, outs = outputs_of(impl=impl)
    metrics = PipelineMetrics(lambda: [stream.state.monitor])
    for out in outs:
        metrics.on_output(out)
    value = metrics.registry.get_sample_value
    signals = Counter(
        (o.message.instrument, o.message.model_id) for o in outs if isinstance(o.message, Signal)
    )
    decisions = [o.message for o in outs if isinstance(o.message, Decision)]
    assert signals and decisions and any(d.reject_reasons for d in decisions)
    for (instrument, model), n in signals.items():
        labels = {"instrument": instrument, "model": model, "stage": "production"}
        assert value("tickwise_signals_total", labels) == n
    by_action = Counter((d.instrument, d.action.value, str(d.approved).lower()) for d in decisions)
    for (instrument, action, approved), n in by_action.items():
        labels = {"instrument": instrument, "action": action, "approved": approved}
        assert value("tickwise_decisions_total", labels) == n
    rejected = Counter((d.instrument, r) for d in decisions for r in d.reject_reasons)
    for (instrument, reason), n in rejected.items():
        labels = {"instrument": instrument, "reason": reason}
        assert value("tickwise_risk_rejections_total", labels) == n
    assert stream.state.monitor.instruments()
    for instrument in stream.state.monitor.instruments():
        for model, m in stream.state.monitor.stats(instrument)["models"].items():
            got = value(
                "tickwise_model_rolling_accuracy", {"instrument": instrument, "model": model}
            )
            assert got == m["accuracy"]


def test_a_batch_records_its_size_latency_and_lag() -> None:
    metrics = PipelineMetrics()
    metrics.on_batch(2, [100.0, 100.5, 0.0], committed_s=101.0, lag=7)
    value = metrics.registry.get_sample_value
    assert value("tickwise_ticks_in_total", {"partition": "2"}) == 3
    assert value("tickwise_tick_to_decision_seconds_count") == 2  # no timestamp: not timed
    assert value("tickwise_tick_to_decision_seconds_sum") == 1.5
    assert value("tickwise_tick_to_decision_seconds_bucket", {"le": "0.5"}) == 1
    assert value("tickwise_consumer_lag", {"partition": "2"}) == 7


def exported_names() -> set[str]:
    """Every sample name the worker's and the console's registries expose after a run."""
    stream, outs = outputs_of(2000)
    worker = PipelineMetrics(lambda: [stream.state.monitor])
    quality = QualityMonitor()
    worker.registry.register(QualityCollector(quality))
    view = ConsoleView(fast_config())
    console = ConsoleMetrics(view)
    console.set_lag({"signals": 0})
    for out in outs:
        worker.on_output(out)
        if out.topic.name in ("ticks.clean", "ticks.quarantine"):
            quality.on_verdict(out.message or CleanTick.model_validate_json(out.encoded()))
        if out.topic.name in CONTRACTS:
            view.apply(out.topic.name, out.encoded())
    view.apply(CONTROL.name, b"{}")
    worker.on_batch(0, [1.0], 1.5, 0)
    names = set()
    for registry in (worker.registry, console.registry):
        for family in registry.collect():
            names |= {sample.name for sample in family.samples}
    return names


def test_every_metric_on_the_dashboard_is_exported() -> None:
    exported = exported_names()
    dashboard = json.loads((DASHBOARD / "tickwise.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"tickwise_[a-z_]+", e)}
    assert used, "the dashboard queries tickwise metrics"
    assert used <= exported, used - exported

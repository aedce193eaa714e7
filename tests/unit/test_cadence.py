"""Decisions on an event-time cadence (``features.sample_ms``) change when the model is asked,
never what a label means: each decision's label still ends at the last price at or before its
horizon, seen on every tick, and decisions fall on the first tick of each bucket."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict

import pytest

from tests.oracle.pipeline import Pipeline
from tickwise.schemas.ticks import CleanTick, SourceRef
from tickwise.streams.config import load_config
from tickwise.streams.operators.labels import LabelQueue
from tickwise.streams.sources import synthetic

SAMPLE_MS = 250.0


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest) -> dict:
    """Every clean tick, every decision and every label the model learned, per instrument."""
    config = load_config(features={"sample_ms": SAMPLE_MS})
    pipeline = Pipeline(config)
    learned: dict[int, list] = defaultdict(list)
    original = LabelQueue.mature

    def spy(self: LabelQueue, now_ns: int) -> list:
        labels = original(self, now_ns)
        learned[id(self)].extend(labels)
        return labels

    mp = pytest.MonkeyPatch()
    mp.setattr(LabelQueue, "mature", spy)
    ticks, decided = defaultdict(list), defaultdict(list)
    try:
        for rec in synthetic(seed=3, count=9000):
            source = SourceRef(topic="t", partition=0, offset=rec.index)
            for verdict in pipeline.screen(rec.payload, source):
                if isinstance(verdict, CleanTick):
                    tick = verdict.tick
                    ticks[tick.instrument].append((tick.ts_event_ns, tick.reference_price))
                    if pipeline.decide(verdict).features is not None:
                        decided[tick.instrument].append((tick.ts_event_ns, tick.reference_price))
    finally:
        mp.undo()
    queues = {i: st.labels for i, st in pipeline.model._state.items()}
    labels = {i: learned[id(q)] for i, q in queues.items()}
    return {"config": config, "ticks": ticks, "decided": decided, "labels": labels}


def test_decisions_fall_on_the_first_tick_of_each_event_time_bucket(run: dict) -> None:
    bucket_ns = int(SAMPLE_MS * 1e6)
    for instrument, ticks in run["ticks"].items():
        expected, last = [], None
        for ts, price in ticks:  # synthetic ticks are in event-time order per instrument
            if ts // bucket_ns != last:
                expected.append((ts, price))
                last = ts // bucket_ns
        assert run["decided"][instrument] == expected
        assert len(expected) < len(ticks) / 3, "the cadence must skip most ticks here"


def test_each_label_ends_at_the_last_price_at_or_before_its_horizon(run: dict) -> None:
    horizon_ns = int(run["config"].label.horizon_s * 1e9)
    checked = 0
    for instrument, labels in run["labels"].items():
        ticks = run["ticks"][instrument]
        times = [ts for ts, _ in ticks]
        entries = dict(run["decided"][instrument])
        assert [lab.ts_event_ns for lab in labels] == sorted(entries)[: len(labels)]
        for lab in labels:
            end = bisect.bisect_right(times, lab.ts_event_ns + horizon_ns) - 1
            expected = (math.log(ticks[end][1]) - math.log(entries[lab.ts_event_ns])) * 1e4
            assert lab.forward_bps == expected
            checked += 1
    assert checked > 300

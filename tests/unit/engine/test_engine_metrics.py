"""The whole engine reports the model stage's prequential figures as the per-tick ``Pipeline``
does (what the backtest's report.json carries under ``prequential.model``), with the monitor's
policies acting on the same stream."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.oracle.pipeline import Pipeline
from tickwise.schemas.ticks import SourceRef
from tickwise.streams.config import DecisionConfig, MonitorConfig, TickwiseConfig
from tickwise.streams.engine.batch import decode
from tickwise.streams.engine.run import Engine
from tickwise.streams.sources import synthetic

BASE = TickwiseConfig()
ACTING = BASE.model_copy(
    update={
        "decision": DecisionConfig(rule="threshold"),
        "monitor": MonitorConfig(
            min_accuracy=0.55,
            accuracy_window=50,
            max_losing_streak=3,
            policies={"LOW_ACCURACY": "demote", "LOSING_STREAK": "halt_instrument"},
        ),
    }
)


@pytest.mark.parametrize("config", [BASE, ACTING], ids=["default", "policies that act"])
def test_the_engine_reports_the_model_stages_metrics(config: TickwiseConfig) -> None:
    raws = [r.payload for r in synthetic(11, 5_000, bad_rate=0.03, regime="volatile")]
    pipeline = Pipeline(config)
    for i, raw in enumerate(raws):
        pipeline.process(raw, SourceRef(topic="t", partition=0, offset=i))
    pipeline.finish()
    engine = Engine(config)
    for a, b in ((0, 1_700), (1_700, 1_701), (1_701, len(raws))):
        engine.run(decode(raws[a:b], engine.symbols, "t", 0, np.arange(a, b), 16_384))
    engine.finish()
    for name in engine.symbols.names:
        got, want = engine.model.metrics(name), pipeline.model.metrics(name)
        assert json.dumps(got) == json.dumps(want)
        assert got == want
        (figures,) = got.values()
        assert figures["n"] > 100

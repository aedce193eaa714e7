"""Deployments in the engine: several model versions, shadow, canary, promotion and rollback,
and river's zoo, publish what the per-tick ``Pipeline`` publishes, topic by topic and byte for
byte, whether the commands come before the first tick or in the middle of the stream (the
engine then hands its compiled kernel's state over to ``StagedModel``), and whatever the
batches."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_engine_run import TOPICS, assert_same, collect

from tests.oracle.pipeline import Pipeline
from tickwise.schemas.decisions import ControlCommand, FeatureVector
from tickwise.schemas.ticks import SourceRef
from tickwise.schemas.topics import (
    ALERTS,
    AUDIT,
    DECISIONS,
    SIGNALS,
    TICKS_CLEAN,
    TICKS_QUARANTINE,
)
from tickwise.streams.config import (
    DecisionConfig,
    LabelConfig,
    ModelConfig,
    MonitorConfig,
    SignalsConfig,
    TickwiseConfig,
)
from tickwise.streams.engine.batch import decode
from tickwise.streams.engine.models import BatchModel
from tickwise.streams.engine.run import Engine
from tickwise.streams.sources import synthetic

# the threshold rule and short horizons: every version warms up and trades on these streams
BASE = TickwiseConfig(
    model=ModelConfig(warmup_labels=10),
    label=LabelConfig(horizon_s=0.3),
    decision=DecisionConfig(rule="threshold"),
    monitor=MonitorConfig(max_losing_streak=4, policies={"LOSING_STREAK": "halt_instrument"}),
    signals=SignalsConfig(every="2 s"),
)
REGRESSION = BASE.model_copy(
    update={
        "model": ModelConfig(kind="linear", warmup_labels=10, threshold_bps=0.5),
        "label": LabelConfig(horizon_s=0.3, task="regression"),
    }
)
TREE = ModelConfig(model_id="tree", model_version=2, kind="hoeffding_tree", warmup_labels=10)
V2 = ModelConfig(model_id="logreg", model_version=2, warmup_labels=10, learning_rate=0.05)
LINEAR_V2 = ModelConfig(model_id="lin", model_version=2, kind="linear", warmup_labels=10, l2=0.01)
N = 6_000
RECORDS = list(synthetic(11, N, instruments=["ES", "NQ"], bad_rate=0.02, regime="volatile"))
RAWS = [r.payload for r in RECORDS]


def at(row: int) -> int:
    return RECORDS[row].ts_event_ns


def command(cid: str, kind: str = "promote", **fields: object) -> ControlCommand:
    return ControlCommand(
        command_id=cid, command=kind, scope="global", reason="test", operator="alice",
        ts_event_ns=1, **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def deploy(cid: str, model: ModelConfig, stage: str, row: int | None, **fields: object):
    return command(
        cid, model_id=model.model_id, model_version=model.model_version, stage=stage,
        model_spec=model.model_dump(), effective_ts_event_ns=None if row is None else at(row),
        **fields,
    )  # fmt: skip


# the commands each scenario gives, by the row they arrive before (0: before the first tick)
SCENARIOS: dict[str, tuple[TickwiseConfig, dict[int, list[ControlCommand]]]] = {
    "a river shadow from the start": (BASE, {0: [deploy("s", TREE, "shadow", 1_500)]}),
    "a canary arriving mid-stream": (
        BASE,
        {3_000: [deploy("c", V2, "canary", None, instruments=["NQ"], capital_fraction=0.25)]},
    ),
    "promoted, then rolled back, mid-stream": (
        BASE,
        {
            2_000: [deploy("p", V2, "production", 2_500)],
            4_000: [command("r", "rollback", model_id="logreg", effective_ts_event_ns=at(4_500))],
        },
    ),
    "river's tree configured": (BASE.model_copy(update={"model": TREE}), {}),
    "river's passive-aggressive regressor configured": (
        REGRESSION.model_copy(update={"model": ModelConfig(kind="pa", warmup_labels=10)}),
        {},
    ),
    "regression, a shadow mid-stream": (
        REGRESSION,
        {2_500: [deploy("l", LINEAR_V2, "shadow", None)]},
    ),
}


def pipeline_outputs(
    config: TickwiseConfig, commands: dict[int, list[ControlCommand]]
) -> tuple[dict[str, list[bytes]], Pipeline]:
    pipeline = Pipeline(config)
    outputs = []
    for i, raw in enumerate(RAWS):
        for c in commands.get(i, []):
            pipeline.on_control(c)
        outputs += pipeline.process(raw, SourceRef(topic="t", partition=0, offset=i))
    outputs += pipeline.finish()
    out: dict[str, list[bytes]] = defaultdict(list)
    for o in outputs:
        if o.topic in TOPICS:
            out[o.topic.name].append(o.encoded())
    return out, pipeline


def engine_outputs(
    config: TickwiseConfig, commands: dict[int, list[ControlCommand]], cuts: tuple[int, ...] = ()
) -> tuple[dict[str, list[bytes]], Engine]:
    """The engine's outputs, the stream cut into batches at ``cuts`` and where commands
    arrive (given between two batches)."""
    engine = Engine(config, commands=commands.get(0, []), live=True)
    out: dict[str, list[bytes]] = defaultdict(list)
    bounds = sorted({0, len(RAWS), *(c for c in (*cuts, *commands) if 0 < c < len(RAWS))})
    for a, b in pairwise(bounds):
        engine.on_control(commands.get(a, []) if a else [])
        batch = decode(RAWS[a:b], engine.symbols, "t", 0, np.arange(a, b), 16_384, None, True)
        collect(engine.run(batch), out)
    collect(engine.finish(), out)
    return out, engine


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_engine_deploys_as_the_pipeline(name: str) -> None:
    config, commands = SCENARIOS[name]
    want, pipeline = pipeline_outputs(config, commands)
    got, engine = engine_outputs(config, commands, cuts=(1_000, 4_321))
    assert_same(got, want)
    assert not isinstance(engine.model, BatchModel)  # the staged model ran it
    for instrument in ("ES", "NQ"):  # every version's prequential figures, carried over
        assert engine.model.metrics(instrument) == pipeline.model.metrics(instrument)
    signals = b"".join(want[SIGNALS.name])
    decisions = b"".join(want[DECISIONS.name])
    assert want[DECISIONS.name] and want[SIGNALS.name]
    if "shadow" in name:  # published, never decided on
        assert b'"stage":"shadow"' in signals
        assert b'"model_id":"tree"' not in decisions and b'"model_id":"lin"' not in decisions
    if "canary" in name:  # trades NQ only, at its fraction
        assert b'"stage":"canary"' in signals and b'"capital_fraction":0.25' in signals
        canary = [d for d in want[DECISIONS.name] if b'"model_version":2' in d]
        assert canary and all(b'"instrument":"NQ"' in d for d in canary)
    if "rolled back" in name:  # v2 decided, then v1 again; the audit says both changes
        assert b'"model_version":2' in decisions
        assert b"production logreg:v2 -> logreg:v1" in b"".join(want[AUDIT.name])
        assert b"CONTROL_APPLIED" in b"".join(want[ALERTS.name])


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(1, N - 1), max_size=6))
@example([])
@example([2_999, 3_001, 3_002])
def test_any_split_deploys_the_same(cuts: list[int]) -> None:
    config, commands = SCENARIOS["a canary arriving mid-stream"]
    whole, a = engine_outputs(config, commands)
    split, b = engine_outputs(config, commands, tuple(cuts))
    assert_same(split, whole)
    for x, y in zip(a.decide.state_arrays(), b.decide.state_arrays(), strict=True):
        assert np.array_equal(x, y, equal_nan=True)
    assert a.model.metrics("NQ") == b.model.metrics("NQ")


def test_the_compiled_kernel_keeps_what_it_can_run() -> None:
    """Promoting the version in production and a rollback with nothing to roll back to stay on
    the kernel; a deployment of another version hands over."""
    engine = Engine(BASE)
    engine.on_control([command("p1", model_id="logreg", model_version=1)])
    engine.on_control([command("r1", "rollback", model_id="logreg")])
    assert isinstance(engine.model, BatchModel)
    engine.on_control([deploy("s", TREE, "shadow", None)])
    assert not isinstance(engine.model, BatchModel)


@pytest.mark.parametrize(
    "spec, why",
    [
        ({"kind": "linear"}, "does not do classification"),
        ({"kind": "no_such_model"}, "kind"),
        ({"model_id": "other", "model_version": 2}, "names tree:v2"),
    ],
)
def test_a_bad_model_spec_is_refused_before_it_applies(spec: dict, why: str) -> None:
    engine = Engine(BASE)
    bad = command("bad", model_id="tree", model_version=2, stage="shadow", model_spec=spec)
    with pytest.raises(ValueError, match=why):
        engine.on_control([bad])
    assert isinstance(engine.model, BatchModel) and "bad" not in engine.decide.seen


@pytest.mark.parametrize(
    ("task", "kind"), [("regression", "logistic"), ("classification", "linear")]
)
def test_a_kind_that_cannot_do_the_task_fails_at_start_up(task: str, kind: str) -> None:
    config = BASE.model_copy(
        update={"model": ModelConfig(kind=kind), "label": LabelConfig(task=task)}  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError, match=f"does not do {task}"):
        Engine(config)


def test_a_model_that_raises_quarantines_its_tick_and_the_stream_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """River's stage raising on a tick (a model's bug) costs that tick's signal, not the
    worker: the tick is quarantined as OPERATOR_ERROR with what was raised, as per tick."""
    from tickwise.streams.operators.models.stage import ModelStage

    real = ModelStage.on_features
    failed: list[str] = []

    def flaky(self: ModelStage, fv: FeatureVector) -> object:
        if fv.tick_id.endswith("7"):
            failed.append(fv.tick_id)
            raise FloatingPointError("overflow in the tree")
        return real(self, fv)

    monkeypatch.setattr(ModelStage, "on_features", flaky)
    config, commands = SCENARIOS["river's tree configured"]
    got, _ = engine_outputs(config, commands, cuts=(1_000,))
    errors = [q for q in got[TICKS_QUARANTINE.name] if b'"OPERATOR_ERROR"' in q]
    assert failed and len(errors) == len(failed)
    assert all(b"model stage: FloatingPointError('overflow in the tree')" in q for q in errors)
    assert got[DECISIONS.name] and len(got[TICKS_CLEAN.name]) > len(failed)


def test_a_stage_change_at_a_tick_the_stage_raised_on_is_still_audited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stage applied a command and then raised at the same tick: the audit still records
    the command where it applied, and the stream goes on."""
    from tickwise.streams.operators.models.stage import ModelStage

    real = ModelStage.on_features

    def raises_once_applied(self: ModelStage, fv: FeatureVector) -> object:
        scored = real(self, fv)
        if scored.applied:
            raise ArithmeticError("after applying")
        return scored

    monkeypatch.setattr(ModelStage, "on_features", raises_once_applied)
    config, commands = SCENARIOS["a canary arriving mid-stream"]
    got, _ = engine_outputs(config, commands)
    assert b"at a tick the stage raised on" in b"".join(got[AUDIT.name])
    assert any(b'"OPERATOR_ERROR"' in q for q in got[TICKS_QUARANTINE.name])

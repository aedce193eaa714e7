"""A worker partition's state (``streams.live.state``): the columnar engine fed batches gives the
per-tick pipeline's outputs topic by topic, key and bytes, with operator commands taken between
batches; it pickles into a checkpoint and goes on exactly; it refuses what it cannot do, loudly."""

from __future__ import annotations

import pickle
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stubs import late_ticks

from tests.oracle.pipeline import Pipeline
from tickwise.schemas.decisions import ControlCommand, Stage
from tickwise.schemas.ticks import SourceRef
from tickwise.streams.checkpoint import Checkpoint, DirCheckpointStore
from tickwise.streams.config import (
    DEFAULT_FEATURES,
    ConfigError,
    DecisionConfig,
    FeatureConfig,
    LiveConfig,
    ModelConfig,
    MonitorConfig,
    RiskConfig,
    TickwiseConfig,
    ValidationConfig,
    load_config,
)
from tickwise.streams.live.partition import PartitionRunner
from tickwise.streams.live.reader import RangeReadError
from tickwise.streams.live.state import CommandRefused, EngineState, Output, same_layout
from tickwise.streams.operators.validation import QualityMonitor
from tickwise.streams.sources import synthetic

CONFIG = TickwiseConfig(
    decision=DecisionConfig(rule="threshold"),
    # returns over event-time horizons: rings of past prices a checkpoint carries mid-window
    features=FeatureConfig(feature_set=(*DEFAULT_FEATURES, "ret_1s_bps", "ret_30s_bps")),
    monitor=MonitorConfig(
        max_losing_streak=3,
        min_accuracy=0.55,
        accuracy_window=50,
        policies={"LOSING_STREAK": "halt_instrument", "LOW_ACCURACY": "demote"},
    ),
)
N = 5_000
REORDER = CONFIG.model_copy(
    update={
        "validation": ValidationConfig(
            out_of_order_policy="reorder", reorder_window_ms=15.0, reorder_max_ticks=20
        )
    }
)


def command(cid: str, what: str, scope: str = "global", **extra: object) -> ControlCommand:
    return ControlCommand(
        command_id=cid, command=what, scope=scope, reason="test", operator="op",
        ts_event_ns=1, **extra,
    )  # fmt: skip


# operator commands, by the raw offset before which they are taken
COMMANDS = {
    2_000: command("k-on", "kill_switch_on"),
    # a second version in shadow: the engine's model stage is handed over mid-stream
    2_300: command(
        "v2-shadow", "promote", model_id="logreg", model_version=2, stage=Stage.SHADOW,
        model_spec=ModelConfig(model_version=2, learning_rate=0.05).model_dump(),
    ),
    2_600: command("k-off", "kill_switch_off"),
}  # fmt: skip


def raws(seed: int = 3) -> list[bytes]:
    return [r.payload for r in synthetic(seed, N, bad_rate=0.03, regime="volatile")]


def by_topic(outputs: list[Output]) -> dict[str, list[tuple[str | None, bytes]]]:
    out: dict[str, list[tuple[str | None, bytes]]] = defaultdict(list)
    for o in outputs:
        out[o.topic.name].append((o.key, o.encoded()))
    return out


def per_tick(
    payloads: list[bytes], config: TickwiseConfig = CONFIG, quality: QualityMonitor | None = None
) -> dict[str, list[tuple[str | None, bytes]]]:
    pipeline = Pipeline(config)
    outputs: list[Output] = []
    for i, raw in enumerate(payloads):
        if i in COMMANDS:
            pipeline.on_control(COMMANDS[i])
        outputs += pipeline.process(raw, SourceRef(topic="ticks.raw", partition=2, offset=i))
    if quality is not None:
        for o in outputs:
            if o.topic.name in ("ticks.clean", "ticks.quarantine"):
                quality.on_verdict(o.message)
    return by_topic(outputs)


def columnar(
    payloads: list[bytes],
    cuts: list[int],
    state: EngineState | None = None,
    start: int = 0,
    config: TickwiseConfig = CONFIG,
    quality: QualityMonitor | None = None,
) -> tuple[list[Output], EngineState]:
    state = state or EngineState(config)
    inside = (c for c in (*cuts, *COMMANDS) if start < c < len(payloads))
    bounds = [*sorted({start, *inside}), len(payloads)]
    outputs: list[Output] = []
    for a, b in pairwise(bounds):
        if a in COMMANDS:
            assert state.on_control(COMMANDS[a])
        offsets = np.arange(a, b)
        flags = np.zeros(b - a, np.bool_)
        outputs += state.process(payloads[a:b], "ticks.raw", 2, offsets, flags, quality)
    if quality is not None:
        for o in outputs:
            if o.topic.name == "ticks.quarantine":
                quality.on_verdict(o.message)
    return outputs, state


@pytest.fixture(scope="module")
def stream() -> tuple[list[bytes], dict[str, list[tuple[str | None, bytes]]]]:
    payloads = raws()
    return payloads, per_tick(payloads)


def test_the_engine_state_publishes_what_the_pipeline_publishes(stream) -> None:
    payloads, want = stream
    got = by_topic(columnar(payloads, [700, 701, 4_000])[0])
    assert set(got) == set(want)
    for topic, messages in want.items():
        assert got[topic] == messages, topic
    assert len(want["ticks.clean"]) > 0.9 * N and want["decisions"] and want["alerts"]
    kill = [m for _, m in want["decisions"] if b"KILL_SWITCH" in m]
    assert kill, "the kill switch refused orders between its two commands"


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(1, N - 1), max_size=6), st.integers(100, N - 100))
def test_a_pickled_state_goes_on_like_an_uninterrupted_one(cuts: list[int], at: int) -> None:
    """What a checkpoint carries: the state after ``at`` raw messages, moved to another host."""
    payloads = raws(4)
    whole, _ = columnar(payloads, cuts)
    first, state = columnar(payloads[:at], cuts)
    moved = pickle.loads(pickle.dumps(state))
    rest, _ = columnar(payloads, cuts, moved, start=at)
    assert by_topic(first + rest) == by_topic(whole)


def test_a_reordering_state_publishes_what_the_pipeline_publishes_and_moves() -> None:
    """Under the ``reorder`` policy a batch's ticks may leave in a later batch: held in the
    state, its offsets committed with the batch's, as the per-tick worker holds them; a
    checkpoint taken with ticks held carries them to another host."""
    payloads = late_ticks(6, N)
    want_quality, got_quality = QualityMonitor(), QualityMonitor()
    want = per_tick(payloads, REORDER, want_quality)
    outputs, _ = columnar(payloads, [700, 701, 4_000], config=REORDER, quality=got_quality)
    assert by_topic(outputs) == want
    assert got_quality.figures() == want_quality.figures()
    first, state = columnar(payloads[:3_333], [1_000], config=REORDER)
    assert state.engine.validator.reorder.held is not None
    moved = pickle.loads(pickle.dumps(state))
    rest, _ = columnar(payloads, [4_000], moved, start=3_333, config=REORDER)
    assert by_topic(first + rest) == want
    assert want["decisions"] and any(b"already released" in m for _, m in want["ticks.quarantine"])


def test_quality_figures_count_what_the_pipeline_counts(stream) -> None:
    payloads, _ = stream
    engine_quality, pipeline_quality = QualityMonitor(), QualityMonitor()
    state, pipeline = EngineState(CONFIG), Pipeline(CONFIG)
    outputs = state.process(
        payloads, "ticks.raw", 0, np.arange(N), np.zeros(N, np.bool_), engine_quality
    )
    for o in outputs:
        if o.topic.name == "ticks.quarantine":
            engine_quality.on_verdict(o.message)
    for i, raw in enumerate(payloads):
        for o in pipeline.process(raw, SourceRef(topic="ticks.raw", partition=0, offset=i)):
            if o.topic.name in ("ticks.clean", "ticks.quarantine"):
                pipeline_quality.on_verdict(o.message)
    assert engine_quality.figures() == pipeline_quality.figures()


def test_commands_taken_once_and_refused_loudly() -> None:
    state = EngineState(CONFIG)
    assert state.on_control(COMMANDS[2_000]) and not state.on_control(COMMANDS[2_000])
    canary = command(
        "c1", "promote", model_id="logreg", model_version=1, stage=Stage.CANARY, instruments=["ES"]
    )
    assert state.on_control(canary)  # the engine hands its model stage over, and goes on
    staged = pickle.loads(pickle.dumps(state))
    assert same_layout(staged, EngineState(CONFIG))  # a worker restarting takes it over
    bad = command("c2", "promote", model_id="m", model_version=1, model_spec={"kind": "linear"})
    with pytest.raises(CommandRefused, match="does not do classification"):
        state.on_control(bad)


def test_a_restart_under_a_changed_config() -> None:
    """Sections the state does not depend on change freely; others stop the take-over."""
    state = EngineState(CONFIG)
    live = LiveConfig(checkpoint_interval_s=3.0)
    renamed = CONFIG.model_copy(update={"app_id": "other", "live": live})
    assert state.reconfigured(renamed) is state and state.config == renamed
    tighter = CONFIG.model_copy(update={"risk": RiskConfig(max_position=1.0)})
    with pytest.raises(ValueError, match=r"\[risk\]"):
        state.reconfigured(tighter)


def test_a_validation_fix_keeps_the_state_and_takes_the_new_rules() -> None:
    """The fix before re-injecting quarantined ticks: CL allowed from now on, and the ticks
    seen before are still known (the last one again is a duplicate)."""
    narrow = CONFIG.model_copy(update={"validation": ValidationConfig(instruments=("ES", "NQ"))})
    wide = CONFIG.model_copy(
        update={"validation": ValidationConfig(instruments=("ES", "NQ", "CL"))}
    )
    records = list(synthetic(5, 1_500))
    payloads = [r.payload for r in records]
    state = EngineState(narrow)
    first = state.process(payloads, "ticks.raw", 0, np.arange(1_500), np.zeros(1_500, np.bool_))
    refused = [o.message for o in first if o.topic.name == "ticks.quarantine"]
    assert any(q.reason.value == "UNKNOWN_INSTRUMENT" and q.instrument == "CL" for q in refused)
    state = pickle.loads(pickle.dumps(state)).reconfigured(wide)
    last_es = next(r.payload for r in reversed(records) if r.key == "ES" and r.injected is None)
    cl = next(r for r in records if r.key == "CL" and r.injected is None)
    again = state.process(
        [last_es, cl.payload], "ticks.raw", 0, np.arange(1_500, 1_502), np.zeros(2, np.bool_)
    )
    quarantined = [o.message for o in again if o.topic.name == "ticks.quarantine"]
    clean = [o.key for o in again if o.topic.name == "ticks.clean"]
    assert [q.reason.value for q in quarantined] == ["DUPLICATE"] and clean == ["CL"]
    resized = CONFIG.model_copy(update={"validation": ValidationConfig(dedup_window=7)})
    with pytest.raises(ValueError, match="windows"):
        EngineState(CONFIG).reconfigured(resized)


def test_a_config_still_choosing_an_engine_is_refused_by_name(tmp_path: Path) -> None:
    """The engine is the only way a worker decides: a config that still sets ``[live] engine``
    fails to load, naming the setting, rather than running as if it had been read."""
    path = tmp_path / "old.toml"
    for value in ("per-tick", "columnar", "auto"):
        path.write_text(f'[live]\nengine = "{value}"\n')
        with pytest.raises(ConfigError, match=r"live\.engine: Extra inputs are not permitted"):
            load_config(path)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50) | st.just(10**10)), max_size=40),
    st.integers(1, 40),
)
def test_quality_counted_from_columns_equals_tick_by_tick(
    ticks: list[tuple[int, int]], cut: int
) -> None:
    """Gaps, lateness and watermarks counted a batch at a time, any split, tick by tick's."""
    names = ["ES", "NQ", "CL", "6E"]
    by_tick, by_batch = QualityMonitor(gap_s=1e-8), QualityMonitor(gap_s=1e-8)
    for k, ts in ticks:
        by_tick.on_accepted(names[k], ts)
    inst = np.array([k for k, _ in ticks], np.int32)
    ts = np.array([t for _, t in ticks], np.int64)
    for part in (slice(0, cut), slice(cut, None)):
        by_batch.on_accepted_many(names, inst[part], ts[part])
    assert by_batch.figures() == by_tick.figures()
    assert {n: vars(f) for n, f in by_batch._state.items()} == {
        n: vars(f) for n, f in by_tick._state.items()
    }


def test_a_used_state_has_the_layout_of_a_fresh_one() -> None:
    """What a checkpoint carries must pass the layout check on the version that wrote it,
    under any config a worker may restart with (the reorder buffers present or not)."""
    payloads = raws(5)[:2_000]
    for config in (CONFIG, REORDER):
        _, used = columnar(payloads, [700], config=config)
        moved = pickle.loads(pickle.dumps(used))
        for fresh in (CONFIG, REORDER):
            assert same_layout(moved, EngineState(fresh)), (config.validation, fresh.validation)


def test_a_state_of_another_layout_is_refused_before_it_runs(tmp_path: Path) -> None:
    """A checkpoint of a state whose classes have changed since (an attribute gone, an array
    of another dtype) is refused with the remedy, not run into the middle of a batch."""
    _, used = columnar(raws(5)[:1_000], [])
    assert same_layout(used, EngineState(CONFIG))
    older = pickle.loads(pickle.dumps(used))
    del older.engine.features.lag_ts  # as a version before the lagged returns wrote it
    assert not same_layout(older, EngineState(CONFIG))
    other = pickle.loads(pickle.dumps(used))
    other.engine.model.n_trained = other.engine.model.n_trained.astype(np.int32)
    assert not same_layout(other, EngineState(CONFIG))

    store = DirCheckpointStore(tmp_path, key=b"k" * 32)
    store.save("ticks.raw", 2, Checkpoint(offset=999, state=older))
    runner = PartitionRunner(CONFIG, "127.0.0.1:9", "ticks.raw", 2, store)
    with pytest.raises(RangeReadError, match="laid out by another version of tickwise"):
        runner.recover(committed=1_500)

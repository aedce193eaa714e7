"""The engine under ``out_of_order_policy = "reorder"``: what the per-tick ``Pipeline``
publishes, topic by topic and byte for byte, over streams whose ticks arrive out of order
(within the window and beyond it), repeat, burst past the buffer's bound and jump in time, on
several instruments; the same bytes and the same state for any split into batches; a
validator pickled with ticks held goes on exactly."""

from __future__ import annotations

import json
import pickle
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from stubs import late_ticks
from test_engine_run import TOPICS, assert_same, collect, engine_outputs, pipeline_outputs

from tickwise.streams.config import (
    DecisionConfig,
    InstrumentRules,
    MonitorConfig,
    TickwiseConfig,
    ValidationConfig,
)
from tickwise.streams.engine.batch import SymbolTable, decode
from tickwise.streams.engine.run import Engine
from tickwise.streams.engine.validate import BatchValidator

RULES = {
    "dedup_window": 6,  # small: refused ticks leave it, held ones age out of it
    "outlier_k": 4.0,
    "outlier_min_jump_bps": 15.0,
    "outlier_window": 12,
    "max_future_s": 3.0,
    "max_past_s": 1.0,
    "time_confirm_ticks": 2,
}
TRADING = TickwiseConfig(
    decision=DecisionConfig(rule="threshold"),
    monitor=MonitorConfig(max_losing_streak=3, max_quarantine_rate=0.2, quarantine_window=50),
)


def with_rules(**rules: object) -> TickwiseConfig:
    return TRADING.model_copy(update={"validation": ValidationConfig(**{**RULES, **rules})})


CONFIGS = {
    "window": with_rules(out_of_order_policy="reorder", reorder_window_ms=15.0),
    # a long window: the bound releases, bursts overflow it
    "bound": with_rules(
        out_of_order_policy="reorder", reorder_window_ms=400.0, reorder_max_ticks=3
    ),
    "tolerance": with_rules(
        out_of_order_policy="reorder", reorder_window_ms=5.0, out_of_order_tolerance_ms=8.0
    ),
    # per instrument: ES quarantines, NQ holds nothing back, CL reorders with a bound of one
    "mixed": with_rules(
        out_of_order_tolerance_ms=2.0,
        per_instrument={
            "NQ": InstrumentRules(out_of_order_policy="reorder", reorder_window_ms=0.0),
            "CL": InstrumentRules(
                out_of_order_policy="reorder", reorder_window_ms=30.0, reorder_max_ticks=1
            ),
        },
    ),
}


def validator_state(engine: Engine) -> list[np.ndarray]:
    """The validator's whole state, the held ticks' rows included."""
    v = engine.validator
    arrays = [getattr(v.state, name) for name in v.state.__slots__]
    arrays += [getattr(v.reorder, n) for n in v.reorder.__slots__ if n != "held"]
    held = v.reorder.held
    if held is not None:
        arrays += [held.offsets, held.ts, np.array(held.payloads, dtype=object)]
    return arrays


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_reordering_publishes_what_the_pipeline_publishes(name: str) -> None:
    config, raws = CONFIGS[name], late_ticks(1)
    want = pipeline_outputs(config, raws)
    got, _ = engine_outputs(config, raws, cuts=(500, 501, 1_700))
    assert_same(got, want)
    # the stream reached every branch: refused late ticks, outliers refused on release,
    # duplicates, decisions taken on the reordered ticks
    quarantined = b"".join(want["ticks.quarantine"])
    for reason in (b"DUPLICATE", b"PRICE_OUTLIER", b"STALE_TIMESTAMP", b"FUTURE_TIMESTAMP"):
        assert reason in quarantined, reason
    assert b"behind a tick already released" in quarantined
    assert want["decisions"] and want["ticks.clean"]
    offsets = [json.loads(m)["source"]["offset"] for m in want["ticks.clean"]]
    assert offsets != sorted(offsets)  # ticks left in another order than they came


def test_what_is_held_at_the_end_is_flushed_in_time_order() -> None:
    """A window nothing reaches: ticks are held until a time jump or the end of the input,
    then released by instrument name and event time."""
    config = with_rules(out_of_order_policy="reorder", reorder_window_ms=10.0**9)
    raws = late_ticks(2, 400)
    want = pipeline_outputs(config, raws)
    engine = Engine(config, live=True)
    got: dict[str, list[bytes]] = {t.name: [] for t in TOPICS}
    for a, b in pairwise([0, 100, 250, len(raws)]):
        batch = decode(raws[a:b], engine.symbols, "t", 0, np.arange(a, b), 16_384, None, True)
        collect(engine.run(batch), got)
    end = engine.finish()
    keys = [(json.loads(m)["tick"]["instrument"], json.loads(m)["tick"]["ts_event_ns"])
            for _, m in end.clean]  # fmt: skip
    assert len(keys) > 100 and keys == sorted(keys)
    collect(end, got)
    assert_same(got, want)
    assert engine.validator.reorder.held is None and engine.validator.flush() is None


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(sorted(CONFIGS)), st.lists(st.integers(1, 2_999), max_size=8))
@example("bound", [])
@example("window", list(range(1, 200)))
def test_any_split_publishes_the_same_and_ends_in_the_same_state(
    name: str, cuts: list[int]
) -> None:
    config, raws = CONFIGS[name], late_ticks(3, 2_000)
    whole, a = engine_outputs(config, raws[:1_500])
    split, b = engine_outputs(config, raws[:1_500], tuple(cuts))
    assert_same(split, whole)
    for x, y in zip(validator_state(a), validator_state(b), strict=True):
        assert np.array_equal(x, y, equal_nan=x.dtype != object)
    for x, y in zip(a.decide.state_arrays(), b.decide.state_arrays(), strict=True):
        assert np.array_equal(x, y, equal_nan=True)


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 1_999), st.sampled_from(sorted(CONFIGS)))
def test_a_pickled_validator_holding_ticks_goes_on_exactly(at: int, name: str) -> None:
    """What a checkpoint carries to another host: the rules' state and the held ticks."""
    vc, raws = CONFIGS[name].validation, late_ticks(4, 2_000)

    def verdicts(validator: BatchValidator, start: int, stop: int) -> list[tuple[int, int]]:
        batch = decode(raws[start:stop], validator.symbols, "t", 0, np.arange(start, stop), 9**9)
        done, verdict, _ = validator.run(batch)
        return list(zip(done.offsets.tolist(), verdict.tolist(), strict=True))

    def flushed(validator: BatchValidator) -> list[tuple[int, int]]:
        out = validator.flush()
        return (
            [] if out is None else list(zip(out[0].offsets.tolist(), out[1].tolist(), strict=True))
        )

    whole = BatchValidator(vc, SymbolTable())
    want = verdicts(whole, 0, 2_000) + flushed(whole)
    first = BatchValidator(vc, SymbolTable())
    got = verdicts(first, 0, at)
    assert first.reorder.held is not None or name == "mixed"
    moved = pickle.loads(pickle.dumps(first))
    got += verdicts(moved, at, 2_000) + flushed(moved)
    assert got == want
    assert sorted(offset for offset, _ in got) == list(range(2_000))  # each once


def test_a_tick_held_across_origins_keeps_its_own() -> None:
    """Replay merges files, each batch of one origin: a tick held from one and released in
    another's batch names where it came from, as the pipeline's does."""
    config, raws = CONFIGS["window"], late_ticks(5, 600)
    origins = [f"file:{'ab'[(i // 50) % 2]}" for i in range(len(raws))]
    want = pipeline_outputs(config, raws, origins)
    got, _ = engine_outputs(config, raws, tuple(range(50, len(raws), 50)), origins)
    assert_same(got, want)
    sources = {json.loads(m)["source"]["topic"] for m in got["ticks.clean"][::7]}
    assert sources == {"file:a", "file:b"}


def test_reinjected_ticks_pass_the_buffer_as_the_pipeline_passes_them() -> None:
    """A tick put back from quarantine skips the history rules, the buffer included."""
    config, raws = CONFIGS["window"], late_ticks(7, 1_500)
    flags = np.arange(len(raws)) % 29 == 0
    want = pipeline_outputs(config, raws, reinjected=flags)
    got, _ = engine_outputs(config, raws, (400, 401, 1_100), reinjected=flags)
    assert_same(got, want)

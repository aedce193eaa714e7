"""The whole engine (``streams.engine.run.Engine``) publishes what the per-tick ``Pipeline``
publishes, topic by topic and byte for byte, with the monitor speaking: its alerts, the
commands its policies issue and what they change in later decisions; and the signals
``[signals] every`` publishes. Any split into batches gives the same bytes."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.oracle.pipeline import Pipeline
from tickwise.schemas.ticks import SourceRef
from tickwise.schemas.topics import (
    ALERTS,
    AUDIT,
    CONTROL,
    DECISIONS,
    FEATURES,
    FILLS,
    SIGNALS,
    TICKS_CLEAN,
    TICKS_QUARANTINE,
)
from tickwise.streams.config import (
    DEFAULT_FEATURES,
    DecisionConfig,
    FeatureConfig,
    MonitorConfig,
    SignalsConfig,
    TickwiseConfig,
)
from tickwise.streams.engine.batch import decode
from tickwise.streams.engine.decide import C_ROW, BatchDecide
from tickwise.streams.engine.run import BatchOutput, Engine
from tickwise.streams.sources import synthetic

TOPICS = (
    TICKS_CLEAN,
    TICKS_QUARANTINE,
    FEATURES,
    SIGNALS,
    DECISIONS,
    AUDIT,
    FILLS,
    ALERTS,
    CONTROL,
)
BASE = TickwiseConfig()
THRESHOLD = BASE.model_copy(update={"decision": DecisionConfig(rule="threshold")})
CONFIGS = {
    "default": BASE,
    # losing streaks halt the instrument, a loss stops everything, low accuracy demotes
    "policies that act": THRESHOLD.model_copy(
        update={
            "monitor": MonitorConfig(
                max_losing_streak=3,
                max_loss=400.0,
                min_accuracy=0.55,
                accuracy_window=50,
                max_quarantine_rate=0.02,
                quarantine_window=200,
                policies={
                    "LOSING_STREAK": "halt_instrument",
                    "PNL_LOSS": "global_kill",
                    "LOW_ACCURACY": "demote",
                    "DATA_QUALITY": "halt_instrument",
                    "MODEL_DRIFT": "demote",
                },
            ),
            "signals": SignalsConfig(every="2 s"),
        }
    ),
    "every signal": THRESHOLD.model_copy(
        update={
            "signals": SignalsConfig(every="decision"),
            "monitor": MonitorConfig(max_losing_streak=4),
        }
    ),
    "order signals": THRESHOLD.model_copy(update={"signals": SignalsConfig(every="order")}),
}
# returns over a second and over thirty (longer than a few gaps, shorter than the stream)
RETURNS = FeatureConfig(feature_set=("ret_1s_bps", *DEFAULT_FEATURES, "ret_30s_bps"))
CONFIGS["returns over horizons"] = CONFIGS["policies that act"].model_copy(
    update={"features": RETURNS}
)


def payloads(seed: int = 5, n: int = 6_000) -> list[bytes]:
    return [r.payload for r in synthetic(seed, n, bad_rate=0.03, regime="volatile")]


def pipeline_outputs(
    config: TickwiseConfig,
    raws: list[bytes],
    origins: list[str] | None = None,
    reinjected: np.ndarray | None = None,
) -> dict[str, list[bytes]]:
    """What ``Pipeline`` publishes for ``raws``; ``origins``: each row's source topic (``t``
    by default); ``reinjected``: which rows were put back from quarantine."""
    pipeline = Pipeline(config)
    outputs = []
    for i, raw in enumerate(raws):
        source = SourceRef(topic=origins[i] if origins else "t", partition=0, offset=i)
        again = reinjected is not None and bool(reinjected[i])
        outputs += pipeline.process(raw, source, reinjected=again)
    outputs += pipeline.finish()
    out: dict[str, list[bytes]] = defaultdict(list)
    for o in outputs:
        if o.topic in TOPICS:
            out[o.topic.name].append(o.encoded())
    return out


def engine_outputs(
    config: TickwiseConfig,
    raws: list[bytes],
    cuts: tuple[int, ...] = (),
    origins: list[str] | None = None,
    reinjected: np.ndarray | None = None,
) -> tuple[dict[str, list[bytes]], Engine]:
    """What the engine publishes for ``raws`` cut into batches at ``cuts`` (a batch has one
    origin: the first row's), and the engine after it."""
    engine = Engine(config, live=True)
    out: dict[str, list[bytes]] = defaultdict(list)
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(raws)}), len(raws)]
    for a, b in pairwise(bounds):
        origin = origins[a] if origins else "t"
        flags = None if reinjected is None else reinjected[a:b]
        batch = decode(raws[a:b], engine.symbols, origin, 0, np.arange(a, b), 16_384, flags, True)
        collect(engine.run(batch), out)
    collect(engine.finish(), out)
    return out, engine


def collect(o: BatchOutput, out: dict[str, list[bytes]]) -> None:
    """Each topic's bytes of one batch's outputs, in the order a worker publishes them."""
    out[TICKS_CLEAN.name] += [wire for _, wire in o.clean]
    out[FEATURES.name] += [f.to_bytes() for f in o.features]
    out[TICKS_QUARANTINE.name] += [o.quarantined[r].to_bytes() for r in sorted(o.quarantined)]
    out[SIGNALS.name] += [s.to_bytes() for s in o.signals]
    out[DECISIONS.name] += [d.to_bytes() for d in o.decided.decisions]
    out[AUDIT.name] += [wire for _, wire in o.decided.audit]
    out[FILLS.name] += [f.to_bytes() for f in o.decided.fills]
    out[ALERTS.name] += [a.to_bytes() for a in o.alerts]
    out[CONTROL.name] += [c.to_bytes() for c in o.commands]


def assert_same(got: dict[str, list[bytes]], want: dict[str, list[bytes]]) -> None:
    for topic in TOPICS:
        a, b = got.get(topic.name, []), want.get(topic.name, [])
        for n, (x, y) in enumerate(zip(a, b, strict=False)):
            assert x == y, f"{topic.name}[{n}]:\n{x!r}\n{y!r}"
        assert len(a) == len(b), f"{topic.name}: {len(a)} against {len(b)}"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_engine_publishes_what_the_pipeline_publishes(name: str) -> None:
    config, raws = CONFIGS[name], payloads()
    want = pipeline_outputs(config, raws)
    got, _ = engine_outputs(config, raws, cuts=(1_000, 1_001, 4_500))
    assert_same(got, want)
    assert want[DECISIONS.name] and want[SIGNALS.name] if name != "default" else True
    if name == "policies that act":  # the monitor spoke, and its policies acted
        assert len(want[CONTROL.name]) >= 2
        alerts = b"".join(want[ALERTS.name])
        for code in (b"LOW_ACCURACY", b"DATA_QUALITY"):
            assert code in alerts
    if name == "returns over horizons":  # published with the signals, as the model saw them
        assert all(b'"ret_30s_bps":' in f for f in want[FEATURES.name])


@pytest.mark.parametrize("name", ["policies that act", "returns over horizons"])
@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(1, 5_999), max_size=8))
@example([])
@example(list(range(1, 300)))
def test_any_split_into_batches_publishes_the_same(name: str, cuts: list[int]) -> None:
    config, raws = CONFIGS[name], payloads(7, 6_000)
    whole, engine_a = engine_outputs(config, raws)
    split, engine_b = engine_outputs(config, raws, tuple(cuts))
    assert_same(split, whole)
    features = zip(engine_a.features.state_arrays(), engine_b.features.state_arrays(), strict=True)
    for x, y in features:
        assert x.tobytes() == y.tobytes()
    for x, y in zip(engine_a.monitor.state_arrays(), engine_b.monitor.state_arrays(), strict=True):
        assert np.array_equal(x, y)
    for x, y in zip(engine_a.decide.state_arrays(), engine_b.decide.state_arrays(), strict=True):
        assert np.array_equal(x, y, equal_nan=True)


def test_going_back_for_a_policy_resumes_from_a_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the monitor stops a batch for a policy's command, the decide stage goes back to
    its last mark before that row, not to the batch's start; what it publishes is the same."""
    config, raws = CONFIGS["policies that act"], payloads()
    want = pipeline_outputs(config, raws)
    decide_to = BatchDecide._decide_to
    decided = []

    def counting(self, batch, clean, emit, model, buffers, cursor, stop):  # type: ignore[no-untyped-def]
        decided.append(stop - int(cursor[C_ROW]))
        return decide_to(self, batch, clean, emit, model, buffers, cursor, stop)

    monkeypatch.setattr(BatchDecide, "_decide_to", counting)
    rows = {}
    for every in (10**9, 97):
        monkeypatch.setattr(BatchDecide, "MARK_EVERY", every)
        decided.clear()
        got, _ = engine_outputs(config, raws, cuts=(4_500,))
        assert_same(got, want)
        rows[every] = sum(decided)
    assert len(want[CONTROL.name]) >= 2  # the monitor stopped batches for commands
    assert rows[97] < rows[10**9] - 1_000  # without marks, each stop decides its prefix again

"""The engine's decide kernel against ``Pipeline`` tick by tick (the oracle): the same clean ticks
and control commands give the same decisions, orders, fills and audit entries byte for byte;
and any split of the stream into batches gives the same outputs and state."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from itertools import islice, pairwise

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from stubs import ES_TRADES

from tests.oracle.pipeline import Pipeline
from tickwise.replay.engine import run_file
from tickwise.schemas.decisions import ControlCommand
from tickwise.schemas.ticks import SourceRef
from tickwise.schemas.topics import ALERTS, AUDIT, CONTROL, DECISIONS, FILLS
from tickwise.streams.config import (
    AuditConfig,
    DecisionConfig,
    ExecutionConfig,
    LabelConfig,
    ModelConfig,
    MonitorConfig,
    RiskConfig,
    TickwiseConfig,
)
from tickwise.streams.engine import run
from tickwise.streams.engine.batch import SymbolTable, decode
from tickwise.streams.sources import ColumnMap, read_csv, synthetic

# the monitor is not in the kernel yet: these configs keep it from raising any alert
QUIET = MonitorConfig(max_losing_streak=10**9, max_quarantine_rate=1.0, drift_grace=10**9)
BASE = TickwiseConfig(monitor=QUIET, model=ModelConfig(warmup_labels=20))
CONFIGS = {
    "edge": BASE,
    "edge, short hold summaries": BASE.model_copy(
        update={"audit": AuditConfig(hold_summary_s=1.5)}  # runs of holds cut within batches
    ),
    "edge, cheap entry, each hold": BASE.model_copy(
        update={
            "decision": DecisionConfig(entry_cost_multiple=0.05, min_hold_s=1.0),
            "audit": AuditConfig(holds="each"),
            "features": BASE.features.model_copy(update={"sample_ms": 200.0}),
        }
    ),
    "threshold, limits": BASE.model_copy(
        update={
            "decision": DecisionConfig(rule="threshold"),
            "risk": RiskConfig(
                sizing="vol_target",
                vol_target=400.0,
                lot_size=0.5,
                min_order_size=0.5,
                max_drawdown=300.0,
                max_daily_loss=200.0,
                max_orders=3,
                throttle_window_s=2.0,
                collar_bps=2.0,
            ),
            "execution": ExecutionConfig(multiplier=50.0, fee_per_unit=0.5, latency_ms=120.0),
        }
    ),
    "threshold, regression": BASE.model_copy(
        update={
            "decision": DecisionConfig(rule="threshold"),
            "model": ModelConfig(kind="linear", warmup_labels=10, l2=0.01, threshold_bps=0.2),
            "label": LabelConfig(horizon_s=1.5, task="regression"),
        }
    ),
}


@dataclass
class Outputs:
    decisions: list[bytes] = field(default_factory=list)
    orders: list[bytes] = field(default_factory=list)
    fills: list[bytes] = field(default_factory=list)
    audit: list[bytes] = field(default_factory=list)


def command(n: int, kind: str, at: int, scope: str = "global", **extra: object) -> ControlCommand:
    return ControlCommand(
        command_id=f"c{n}", command=kind, scope=scope, reason=f"test {n}", operator="tester",
        ts_event_ns=at, effective_ts_event_ns=at, **extra,
    )  # fmt: skip


def commands_for(payloads: list[bytes], instrument: str) -> list[ControlCommand]:
    """Kill switch on and off, an instrument halted and released, the model demoted and
    promoted, a rollback with nothing to roll back to: at chosen event times of the stream."""
    symbols = SymbolTable()
    ts = decode(payloads, symbols, "t", 0, np.arange(len(payloads)), 16_384).ts
    t = np.quantile(ts[ts > 0], [0.3, 0.36, 0.45, 0.5, 0.6, 0.68, 0.7, 0.8]).astype(np.int64)
    return [
        command(1, "kill_switch_on", int(t[0])),
        command(2, "kill_switch_off", int(t[1])),
        command(3, "kill_switch_on", int(t[2]), instrument),
        command(4, "kill_switch_off", int(t[3]), instrument),
        command(5, "demote", int(t[4]), model_id="logreg"),
        command(6, "promote", int(t[5]), model_id="logreg", model_version=1),
        command(7, "rollback", int(t[6]), model_id="logreg"),
        command(8, "demote", int(t[7]), instrument),
    ]


def oracle(
    config: TickwiseConfig, payloads: list[bytes], commands: list[ControlCommand]
) -> Outputs:
    pipeline = Pipeline(config)
    for c in commands:
        pipeline.on_control(c)
    out, outputs = Outputs(), []
    for i, raw in enumerate(payloads):
        outputs += pipeline.process(raw, SourceRef(topic="t", partition=0, offset=i))
    outputs += pipeline.finish()
    for o in outputs:
        if o.topic is DECISIONS:
            out.decisions.append(o.encoded())
        elif o.topic is FILLS:
            out.fills.append(o.encoded())
        elif o.topic is AUDIT:
            out.audit.append(o.encoded())
            order = getattr(o.message, "order", None)
            if order is not None:
                out.orders.append(order.to_bytes())
        elif o.topic is CONTROL or (o.topic is ALERTS and o.message.code != "CONTROL_APPLIED"):
            raise AssertionError(f"the monitor spoke, the comparison would not be honest: {o}")
    return out


class Engine:
    """``streams.engine.run.Engine`` with what it published so far, as bytes."""

    def __init__(self, config: TickwiseConfig, commands: list[ControlCommand]) -> None:
        self.engine = run.Engine(config, commands=commands)
        self.decide = self.engine.decide
        self.symbols = self.engine.symbols
        self.out = Outputs()

    def run(self, payloads: list[bytes], start: int) -> None:
        offsets = np.arange(start, start + len(payloads))
        self.take(self.engine.run(decode(payloads, self.symbols, "t", 0, offsets, 16_384)))

    def take(self, output: run.BatchOutput) -> None:
        r = output.decided
        self.out.decisions += [d.to_bytes() for d in r.decisions]
        self.out.orders += [o.to_bytes() for o in r.orders]
        self.out.fills += [f.to_bytes() for f in r.fills]
        self.out.audit += [wire for _, wire in r.audit]

    def finish(self) -> Outputs:
        self.take(self.engine.finish())
        return self.out


def engine_run(config, payloads, commands, cuts=(), events_capacity=64) -> Engine:
    engine = Engine(config, commands)
    engine.decide.events_capacity = events_capacity
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(payloads)}), len(payloads)]
    for a, b in pairwise(bounds):
        engine.run(payloads[a:b], a)
    engine.finish()
    return engine


def assert_same(got: Outputs, want: Outputs) -> None:
    for name in ("decisions", "orders", "fills", "audit"):
        a, b = getattr(got, name), getattr(want, name)
        assert len(a) == len(b), name
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            assert x == y, f"{name}[{n}]:\n{x!r}\n{y!r}"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_decisions_equal_the_pipeline(name: str) -> None:
    config = CONFIGS[name]
    payloads = [r.payload for r in synthetic(5, 6_000, bad_rate=0.02, regime="volatile")]
    commands = commands_for(payloads, "ES")
    want = oracle(config, payloads, commands)
    got = engine_run(config, payloads, commands).out
    assert_same(got, want)
    assert len(want.audit) > 20 and len(want.decisions) > 5
    if config.decision.rule == "threshold":
        assert len(want.fills) > 20  # it traded
    controls = b"".join(want.audit)
    for c in commands:  # every command reached the audit trail
        assert b'"command_id":"%s"' % c.command_id.encode() in controls, c.command_id


def test_real_es_trades_decide_as_the_pipeline() -> None:
    if not ES_TRADES.exists():
        pytest.skip(f"real ES trades not found at {ES_TRADES}")
    rows = read_csv(ES_TRADES, ColumnMap(symbol="ES", tz="America/Chicago"))
    payloads = [r.payload for r in islice(rows, 15_000)]
    commands = commands_for(payloads, "ES")
    for name in ("edge", "threshold, limits"):
        config = CONFIGS[name]
        want = oracle(config, payloads, commands)
        got = engine_run(config, payloads, commands, cuts=range(0, 15_000, 4_096)).out
        assert_same(got, want)
        assert len(want.audit) > 10


def test_a_file_runs_through_the_engine_as_through_the_pipeline(tmp_path) -> None:
    if not ES_TRADES.exists():
        pytest.skip(f"real ES trades not found at {ES_TRADES}")
    path = tmp_path / "es.csv"
    with gzip.open(ES_TRADES, "rt") as src:
        path.write_text("".join(islice(src, 6_001)))
    columns = ColumnMap(symbol="ES", tz="America/Chicago")
    rows = list(read_csv(path, columns))
    config = CONFIGS["threshold, limits"]
    want = oracle(config, [r.payload for r in rows], [])
    engine = Engine(config, [])
    for output in run_file(path, columns, config):
        engine.take(output)
    assert_same(engine.out, want)
    assert len(want.fills) > 10


PAYLOADS = [r.payload for r in synthetic(9, 1_500, bad_rate=0.03, regime="volatile")]
# an order nearly every decision, filled 0.9 s later: the order and throttle rings must grow
SPLIT_CONFIG = CONFIGS["threshold, limits"].model_copy(
    update={
        "model": ModelConfig(warmup_labels=5),
        "label": LabelConfig(horizon_s=1.0),
        "risk": RiskConfig(sizing="vol_target", vol_target=20.0, lot_size=0.1, max_orders=0),
        "execution": ExecutionConfig(latency_ms=900.0),
        "audit": AuditConfig(hold_summary_s=0.5),
    }
)
COMMANDS = commands_for(PAYLOADS, "NQ")
WHOLE = engine_run(SPLIT_CONFIG, PAYLOADS, COMMANDS)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, len(PAYLOADS)), max_size=12))
@example(list(range(len(PAYLOADS))))  # batches of one tick
@example([])  # the whole stream
def test_any_split_gives_the_same_outputs_and_state(cuts: list[int]) -> None:
    split = engine_run(SPLIT_CONFIG, PAYLOADS, COMMANDS, cuts, events_capacity=8)  # must grow
    assert len(WHOLE.out.fills) > 50
    assert WHOLE.decide.execution.state.o_due.shape[1] > 16  # the order rings grew
    assert WHOLE.decide.risk.state.orders.shape[1] > 32
    if not cuts:  # one batch applies more controls than 8 marks have room for
        assert split.decide.events_capacity > 8
    assert_same(split.out, WHOLE.out)
    for a, b in zip(split.decide.state_arrays(), WHOLE.decide.state_arrays(), strict=True):
        assert a.tobytes() == b.tobytes()

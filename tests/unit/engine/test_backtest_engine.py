"""``tickwise backtest`` on the engine (``replay.engine.run_engine_backtest``) writes what the
per-tick runner writes for the same input, file by file and byte for byte."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest
from stubs import ES_TRADES

from tests.oracle.backtest import run_per_tick_backtest
from tickwise.replay.backtest import FILES
from tickwise.replay.engine import record_batches, run_engine_backtest
from tickwise.replay.report import ReportSettings
from tickwise.schemas.decisions import ControlCommand
from tickwise.streams.config import (
    DecisionConfig,
    EvaluationConfig,
    ModelConfig,
    MonitorConfig,
    SignalsConfig,
    TickwiseConfig,
    ValidationConfig,
)
from tickwise.streams.sources import ColumnMap, RawRecord, read_file, synthetic
from tickwise.streams.sources.batches import read_batches

BASE = TickwiseConfig()
TRADING = BASE.model_copy(
    update={
        "decision": DecisionConfig(rule="threshold"),
        "signals": SignalsConfig(every="5 s"),
        "evaluation": EvaluationConfig(window_s=20.0),
        "monitor": MonitorConfig(
            max_losing_streak=3, policies={**MonitorConfig().policies, "LOSING_STREAK": "demote"}
        ),
    }
)
REORDERING = TRADING.model_copy(
    update={
        "validation": ValidationConfig(
            out_of_order_policy="reorder", reorder_window_ms=40.0, reorder_max_ticks=10
        )
    }
)
SETTINGS = ReportSettings(returns_period="1s", walk_forward="20s")
COMPARED = (*FILES.values(), "equity.csv", "report.html")


def compare(got: Path, want: Path) -> None:
    for name in COMPARED:
        assert (got / name).read_bytes() == (want / name).read_bytes(), name
    a, b = (json.loads((p / "report.json").read_text()) for p in (got, want))
    assert "model" in a["prequential"]  # the model stage's figures, the engine's too
    assert a == b
    sa, sb = (json.loads((p / "summary.json").read_text()) for p in (got, want))
    for s in (sa, sb):
        del s["seconds"], s["ticks_per_second"]
    assert sa == sb


@pytest.mark.parametrize(("config", "warmup_s"), [(BASE, 0), (TRADING, 3)], ids=["edge", "trading"])
def test_synthetic_backtest_writes_the_same_files(
    tmp_path: Path, config: TickwiseConfig, warmup_s: int
) -> None:
    def records() -> Iterator[RawRecord]:
        return synthetic(3, 8_000, bad_rate=0.02, regime="volatile")

    warmup_ns = warmup_s * 10**9
    want = run_per_tick_backtest(
        records(), config, tmp_path / "tick", settings=SETTINGS, warmup_ns=warmup_ns
    )
    max_bytes = config.validation.max_message_bytes
    got = run_engine_backtest(
        lambda symbols: record_batches(records(), symbols, max_bytes, size=1_500),
        config,
        tmp_path / "engine",
        settings=SETTINGS,
        warmup_ns=warmup_ns,
    )
    compare(tmp_path / "engine", tmp_path / "tick")
    assert got.decisions == want.decisions and got.ticks == want.ticks == 8_000
    if config is TRADING:
        assert (tmp_path / "tick" / "fills.jsonl").stat().st_size > 0
        assert (tmp_path / "tick" / "alerts.jsonl").stat().st_size > 0


def test_a_reordering_backtest_writes_the_same_files(tmp_path: Path) -> None:
    """The reorder policy on the engine, batches of the bulk decoder."""
    config = REORDERING
    kinds = ("OUT_OF_ORDER", "DUPLICATE", "PRICE_OUTLIER", "FUTURE_TIMESTAMP")

    def records() -> Iterator[RawRecord]:
        return synthetic(4, 6_000, bad_rate=0.05, regime="volatile", bad_kinds=kinds)

    want = run_per_tick_backtest(
        records(), config, tmp_path / "tick", settings=SETTINGS, warmup_ns=10**9
    )
    got = run_engine_backtest(
        lambda symbols: record_batches(records(), symbols, 16_384, size=700),
        config,
        tmp_path / "engine",
        settings=SETTINGS,
        warmup_ns=10**9,
    )
    compare(tmp_path / "engine", tmp_path / "tick")
    assert (
        got.clean == want.clean
        and b"already released" in (tmp_path / "tick" / "quarantine.jsonl").read_bytes()
    )


def test_real_es_file_backtest_writes_the_same_files(tmp_path: Path) -> None:
    if not ES_TRADES.exists():
        pytest.skip(f"real ES trades not found at {ES_TRADES}")
    path = tmp_path / "es.csv"
    with gzip.open(ES_TRADES, "rt") as src, open(path, "w") as dst:
        dst.writelines(islice(src, 12_001))
    columns = ColumnMap(symbol="ES", tz="America/Chicago")
    settings = ReportSettings(returns_period="1min", walk_forward="1h")
    for config in (BASE, TRADING, REORDERING):  # the reader's rows rendered on demand, reordered
        want, got = tmp_path / "tick", tmp_path / "engine"
        run_per_tick_backtest(
            read_file(path, columns), config, want, settings=settings, warmup_ns=60 * 10**9
        )
        run_engine_backtest(
            lambda symbols, mb=config.validation.max_message_bytes: read_batches(
                path, columns, symbols, mb, block_bytes=1 << 16
            ),
            config,
            got,
            settings=settings,
            warmup_ns=60 * 10**9,
        )
        compare(got, want)


def test_a_backtest_with_a_rollout_writes_the_same_files(tmp_path: Path) -> None:
    """Commands replayed from a file (``--controls``): a river tree in shadow from the start,
    then a second logistic version as a canary on one instrument; the report carries every
    version's prequential figures."""
    tree = ModelConfig(model_id="tree", model_version=2, kind="hoeffding_tree", warmup_labels=10)
    v3 = ModelConfig(model_version=3, learning_rate=0.05, warmup_labels=10)
    records = list(synthetic(6, 6_000, instruments=["ES", "NQ"], bad_rate=0.02))

    def promote(cid: str, m: ModelConfig, stage: str, row: int, **extra: object) -> ControlCommand:
        return ControlCommand(
            command_id=cid, command="promote", scope="global", reason="rollout", operator="q",
            ts_event_ns=1, model_id=m.model_id, model_version=m.model_version, stage=stage,
            model_spec=m.model_dump(), effective_ts_event_ns=records[row].ts_event_ns, **extra,
        )  # fmt: skip

    controls = [
        promote("shadow", tree, "shadow", 0),
        promote("canary", v3, "canary", 3_000, instruments=["NQ"], capital_fraction=0.5),
    ]
    want = run_per_tick_backtest(records, TRADING, tmp_path / "tick", controls, settings=SETTINGS)
    got = run_engine_backtest(
        lambda symbols: record_batches(iter(records), symbols, 16_384, size=1_000),
        TRADING,
        tmp_path / "engine",
        controls,
        settings=SETTINGS,
    )
    compare(tmp_path / "engine", tmp_path / "tick")
    assert got.decisions == want.decisions > 0
    signals = (tmp_path / "engine" / "signals.jsonl").read_bytes()
    assert b'"stage":"shadow"' in signals and b'"stage":"canary"' in signals

"""``model compare`` enters the pipeline as the backtest does, so every config it can run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickwise.replay.compare import evaluate_config
from tickwise.replay.engine import run_backtest
from tickwise.streams.cli import main
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.sources import RawRecord, synthetic

SMALL = {"label": {"horizon_s": 0.5}, "model": {"warmup_labels": 5}}


def late_records(count: int, every: int) -> list[RawRecord]:
    """Synthetic records where every ``every``-th one arrives after the next of its instrument."""
    records = list(synthetic(seed=5, count=count))
    for i in range(every, len(records) - 1, every):
        j = next((k for k in range(i + 1, len(records)) if records[k].key == records[i].key), None)
        if j is not None:
            records.insert(j, records.pop(i))
    return records


def test_compare_decides_what_the_backtest_decides_under_reordering(tmp_path: Path) -> None:
    records = late_records(3000, every=97)
    base = TickwiseConfig.model_validate(SMALL)
    reorder = TickwiseConfig.model_validate(
        {**SMALL, "validation": {"out_of_order_policy": "reorder", "reorder_window_ms": 200.0}}
    )
    dropped = run_backtest(records, base, tmp_path / "base")
    assert dropped.quarantined["OUT_OF_ORDER"] > 0, "the late records must be out of order"

    evaluated = evaluate_config(records, reorder, "reorder")
    backtest = run_backtest(records, reorder, tmp_path / "reorder")
    assert backtest.quarantined["OUT_OF_ORDER"] == 0, "the window takes every late record back"
    assert evaluated.decisions == backtest.decisions > dropped.decisions
    # put back in order, the stream is the one recorded in order: the same labels and figures
    in_order = evaluate_config(list(synthetic(seed=5, count=3000)), base, "in order")
    assert (evaluated.n, evaluated.metrics) == (in_order.n, in_order.metrics)


def test_model_compare_ranks_a_config_that_reorders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, reorder = tmp_path / "base.toml", tmp_path / "reorder.toml"
    base.write_text("[label]\nhorizon_s = 0.5\n[model]\nwarmup_labels = 5\n")
    reorder.write_text(
        base.read_text()
        + '[validation]\nout_of_order_policy = "reorder"\nreorder_window_ms = 200\n'
    )
    argv = ["model", "compare", "--synthetic", "--count", "1500", "--config"]
    assert main([*argv, str(base), str(reorder)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert {r[1] for r in rows} == {"base", "reorder"}
    assert len({r[4] for r in rows}) == 1 and int(rows[0][4]) > 0, "same labels on ordered input"

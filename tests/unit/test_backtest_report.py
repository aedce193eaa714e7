"""The backtest's report: figures equal an independent implementation run on its own outputs.

The real ES trades are used (a prefix, to keep CI short); the whole file is the example in
docs/BACKTESTING.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from reference import curve_figures, read_equity_csv

from tickwise.replay.engine import run_backtest
from tickwise.replay.report import ReportSettings
from tickwise.schemas.decisions import Fill
from tickwise.streams.cli import main
from tickwise.streams.config import load_config
from tickwise.streams.sources import ColumnMap, read_csv
from tickwise.streams.sources import synthetic as synthetic_records

ES = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "es_trades_2013-09-01T17_to_09-03T09.csv.gz"
)
ES_ROWS = 12_000


@pytest.fixture(scope="module")
def es_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    if not ES.exists():
        pytest.skip(f"{ES} is absent")
    out = tmp_path_factory.mktemp("es")
    records = read_csv(ES, ColumnMap(symbol="ES", tz="America/Chicago"))
    prefix = (rec for i, rec in zip(range(ES_ROWS), records, strict=False))
    settings = ReportSettings(returns_period="1min", walk_forward="1h")
    # the threshold rule: the figures are checked against fills, and on this prefix the edge
    # rule (rightly) trades nothing
    config = load_config(decision={"rule": "threshold"})
    result = run_backtest(prefix, config, out, settings=settings)
    assert result.decisions > 1000, "the prefix must be long enough for the model to trade"
    return out, json.loads((out / "report.json").read_text())


def test_headline_figures_match_pandas_on_equity_csv(es_run: tuple[Path, dict]) -> None:
    out, report = es_run
    equity = read_equity_csv(out / "equity.csv")
    ref = curve_figures(equity, report["returns_period"], report["periods_per_year"])
    assert report["periods_per_year"] == pytest.approx(365.25 * 24 * 60)
    for key in ("total_return", "max_drawdown", "sharpe", "sortino"):
        assert report[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-15), key
    assert report["start"].startswith(equity.index[0].strftime("%Y-%m-%dT%H:%M:%S"))
    assert report["warmup"]["end"] == report["start"]


def test_trade_figures_match_the_fills(es_run: tuple[Path, dict]) -> None:
    out, report = es_run
    fills = [Fill.model_validate_json(x) for x in (out / "fills.jsonl").read_bytes().splitlines()]
    assert report["n_trades"] == len(fills) > 0  # no fill can precede the first decision
    assert report["fees_paid"] == pytest.approx(sum(f.fee for f in fills), rel=1e-12)
    notional = sum(f.quantity * f.price for f in fills)
    assert report["turnover"] == pytest.approx(notional / report["initial_capital"], rel=1e-12)
    slip = sum(f.quantity * abs(f.price - f.reference_price) for f in fills)
    assert report["slippage_paid"] == pytest.approx(slip, rel=1e-12)
    assert 0.0 <= report["hit_rate"] <= 1.0 and 0.0 <= report["exposure"] <= 1.0
    assert 0.0 <= report["prequential"]["accuracy"] <= 1.0


def test_walk_forward_segments_chain_to_the_whole(es_run: tuple[Path, dict]) -> None:
    out, report = es_run
    segments = report["walk_forward"]["segments"]
    assert len(segments) >= 2
    growth = 1.0
    for seg in segments:
        growth *= 1.0 + seg["total_return"]
    assert growth - 1.0 == pytest.approx(report["total_return"], rel=1e-9, abs=1e-15)
    assert sum(s["n_trades"] for s in segments) == report["n_trades"]
    equity = read_equity_csv(out / "equity.csv")
    for seg in segments[1:]:  # a segment = its carried-in start plus the rows inside it
        start, end = pd.Timestamp(seg["start"]), pd.Timestamp(seg["end"])
        inside = equity[(equity.index > start) & (equity.index <= end)]
        before = equity[equity.index <= start].iloc[-1:]
        part = pd.concat([pd.Series(before.to_numpy(), index=[start]), inside])
        ref = curve_figures(part, report["returns_period"], report["periods_per_year"])
        assert seg["max_drawdown"] == pytest.approx(ref["max_drawdown"], abs=1e-15)
        if ref["sharpe"] is not None:
            assert seg["sharpe"] == pytest.approx(ref["sharpe"], rel=1e-9)


def test_baselines_are_in_the_report_and_random_turnover_tracks_the_model(
    es_run: tuple[Path, dict],
) -> None:
    _, report = es_run
    hold, rnd = report["baselines"]["buy_and_hold"], report["baselines"]["random"]
    assert hold["n_trades"] == 1 and hold["exposure"] > 0.9
    assert rnd["seed"] == 0
    assert rnd["turnover"] == pytest.approx(report["turnover"], rel=0.1)


def test_report_html_is_self_contained(es_run: tuple[Path, dict]) -> None:
    out, _ = es_run
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 5
    assert "<script" not in page and "src=" not in page and "href=" not in page
    for title in ("Equity", "Drawdown", "Rolling model accuracy", "Position", "Signal"):
        assert title in page


def test_cli_writes_every_output_and_refuses_a_calendar_period(tmp_path: Path) -> None:
    out = tmp_path / "bt"
    args = ["backtest", "--synthetic", "--count", "2500", "--out", str(out), "--no-progress"]
    assert main([*args, "--returns-period", "5s", "--walk-forward", "30s", "--warmup", "5s"]) == 0
    for name in ("decisions.jsonl", "audit.jsonl", "equity.csv", "report.json", "report.html"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["returns_period"] == "5s" and report["walk_forward"]["period"] == "30s"
    assert report["warmup"]["until"] is not None
    assert main([*args, "--returns-period", "1M"]) == 2


def test_equity_csv_is_iso_utc(tmp_path: Path) -> None:
    run_backtest(synthetic_records(seed=2, count=2500), load_config(), tmp_path)
    lines = (tmp_path / "equity.csv").read_text().splitlines()
    assert lines[0] == "time,equity"
    stamp = lines[1].split(",")[0]
    assert stamp.endswith("Z") and pd.Timestamp(stamp).tzinfo is not None

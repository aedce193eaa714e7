"""The report's ratios: annualised over the trading calendar, with the number of returns they
rest on, their standard error, and a flag when they rest on too few to mean anything."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from stubs import threshold_rule

from tickwise.replay import metrics
from tickwise.replay.engine import run_backtest
from tickwise.replay.report import ReportSettings
from tickwise.streams.cli import main
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.sources import synthetic


def test_named_and_custom_calendars_give_their_trading_periods() -> None:
    assert metrics.calendar_periods_per_year("1min", "cme_equity") == 23 * 60 * 252
    assert metrics.calendar_periods_per_year("1h", "us_equity") == 6.5 * 252
    assert metrics.calendar_periods_per_year("1D", "24x7") == 365.25
    assert metrics.calendar_periods_per_year("30min", "23x250") == 46 * 250
    for bad in ("nyse-ish", "25x252", "23x", "x252", "0x252"):
        with pytest.raises(ValueError, match="trading calendar"):
            metrics.calendar_hours_days(bad)


def test_settings_annualise_by_the_calendar_unless_given_a_factor() -> None:
    assert ReportSettings().ppy() == 365.25 * 24 * 60  # the documented default: 24/7
    assert ReportSettings(calendar="cme_equity").ppy() == 23 * 60 * 252
    assert ReportSettings(calendar="cme_equity", periods_per_year=252.0).ppy() == 252.0
    with pytest.raises(ValidationError, match="trading calendar"):
        ReportSettings(calendar="lunar")


def test_a_ratio_on_fewer_than_30_returns_is_flagged() -> None:
    assert metrics.MIN_RATIO_PERIODS == 30
    assert not metrics.ratios_meaningful(29) and metrics.ratios_meaningful(30)


def test_the_sharpe_standard_error_matches_its_spread_over_many_samples() -> None:
    rng = np.random.default_rng(3)
    n, ppy = 200, 252.0
    returns = rng.normal(0.001, 0.01, size=(4000, n))
    ratios = returns.mean(axis=1) / returns.std(axis=1, ddof=1) * math.sqrt(ppy)
    true_sharpe = 0.1 * math.sqrt(ppy)
    predicted = metrics.sharpe_standard_error(true_sharpe, n, ppy)
    assert float(np.std(ratios)) == pytest.approx(predicted, rel=0.05)
    # with no edge it is sqrt(periods per year / n): one over the square root of years covered
    assert metrics.sharpe_standard_error(0.0, 400, 100.0) == pytest.approx(0.5)
    assert metrics.sharpe_standard_error(None, 400, 100.0) is None


def run(tmp_path: Path, name: str, **settings: object) -> dict:
    """A trading run of 8000 synthetic ticks (about a minute of event time after warm-up)."""
    out = tmp_path / name
    config = threshold_rule(TickwiseConfig())  # the figures need a curve that moves
    run_backtest(synthetic(seed=4, count=8000), config, out, settings=ReportSettings(**settings))  # type: ignore[arg-type]
    return json.loads((out / "report.json").read_text())


def test_the_report_states_its_returns_and_flags_too_few(tmp_path: Path) -> None:
    few = run(tmp_path, "few", returns_period="5s", walk_forward=None)
    many = run(tmp_path, "many", returns_period="1s", walk_forward=None)
    assert 0 < few["n_returns"] < 30 <= many["n_returns"]
    assert few["ratios_meaningful"] is False and many["ratios_meaningful"] is True
    assert few["min_ratio_returns"] == 30
    assert many["sharpe_standard_error"] == pytest.approx(
        metrics.sharpe_standard_error(many["sharpe"], many["n_returns"], many["periods_per_year"])
    )
    page = (tmp_path / "few" / "report.html").read_text()
    assert f"(not meaningful: {few['n_returns']} returns)" in page
    assert f"rest on {few['n_returns']} returns" in page
    assert "not meaningful:" not in (tmp_path / "many" / "report.html").read_text()


def test_a_trading_calendar_rescales_the_same_curve(tmp_path: Path) -> None:
    around = run(tmp_path, "24x7", returns_period="1s", walk_forward=None)
    cme = run(tmp_path, "cme", returns_period="1s", walk_forward=None, calendar="cme_equity")
    assert cme["calendar"] == "cme_equity" and around["calendar"] == "24x7"
    assert cme["periods_per_year"] == 23 * 3600 * 252
    assert around["periods_per_year"] == 365.25 * 86_400
    scale = math.sqrt(cme["periods_per_year"] / around["periods_per_year"])
    assert cme["sharpe"] == pytest.approx(around["sharpe"] * scale, rel=1e-12)
    assert cme["n_returns"] == around["n_returns"]


def test_the_cli_takes_a_calendar_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    args = ["backtest", "--synthetic", "--count", "300", "--out", str(tmp_path), "--no-progress"]
    assert main([*args, "--calendar", "cme_equity"]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["periods_per_year"] == 347_760
    assert main([*args, "--calendar", "lunar"]) == 2

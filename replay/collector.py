"""What ``report.json`` says and how the report is written, from a collector's figures.

``replay.columnar`` keeps the figures over columns as the engine decides; this module turns
them into ``report.json`` (with the definition of every figure) and ``report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tickwise.replay import html, metrics
from tickwise.replay.report import Decimator, ReportSettings, iso_utc
from tickwise.streams.config import TickwiseConfig

SCORE_BINS = 40
MAX_PLOTTED_INSTRUMENTS = 6

DEFINITIONS = {
    "total_return": "last equity / first equity - 1",
    "max_drawdown": "most negative equity / running peak - 1 over the unresampled curve",
    "sharpe": "mean / std (ddof=1) of simple returns of equity resampled at returns_period "
    "(last value, carried forward) x sqrt(periods_per_year); risk-free rate 0",
    "sortino": "mean / sqrt(mean(min(r, 0)^2)) of the same returns x sqrt(periods_per_year)",
    "periods_per_year": "returns_period periods in a year of the trading calendar's hours "
    "(24x7: 365.25 days of 24 h, unless --calendar or --periods-per-year says otherwise)",
    "n_returns": "returns the Sharpe and Sortino rest on",
    "ratios_meaningful": f"n_returns >= {metrics.MIN_RATIO_PERIODS}: below it the standard "
    "deviation is itself too uncertain for a ratio to mean anything",
    "sharpe_standard_error": "sqrt((1 + s^2 / 2) / n_returns) x sqrt(periods_per_year), s the "
    "per-period Sharpe (Lo 2002, iid returns): about 1 / sqrt(years covered)",
    "n_trades": "fills",
    "hit_rate": "share of round trips (open to flat or reversal) with positive P&L after fees",
    "turnover": "traded notional (sum |quantity x price x multiplier|) / initial capital",
    "fees_paid": "sum of fill fees",
    "slippage_paid": "sum of quantity x |fill price - reference price| x multiplier "
    "(spread crossing and slippage)",
    "exposure": "share of event time with a non-zero position",
    "model_accuracy": "share of resolved signals whose score was on the side of the outcome",
}


def report_content(
    config: TickwiseConfig,
    settings: ReportSettings,
    run_summary: dict[str, Any],
    *,
    whole: dict[str, Any],
    segments: list[dict[str, Any]],
    baselines: dict[str, dict[str, Any]],
    score_counts: list[int],
    instruments: Iterable[str],
    warmup: tuple[int | None, int | None, int],
    late_ticks: int,
    model_metrics: Callable[[str], Any] | None,
    monitor_stats: Callable[[str], Any] | None,
) -> dict[str, Any]:
    """The content of ``report.json`` from a collector's figures, whichever collector kept them.

    ``warmup``: the end of the warm-up, the event time it was asked to last until, and the
    ticks before its end; ``model_metrics`` and ``monitor_stats``: the model stage's and the
    monitor's figures per instrument at the end, when the run has them.
    """
    warmup_end_ns, warmup_until_ns, ticks_in_warmup = warmup
    prequential: dict[str, Any] = {
        "accuracy": whole.pop("model_accuracy"),
        "log_loss": whole.pop("model_log_loss"),
        "n_outcomes": whole.pop("n_outcomes"),
        "horizon_s": config.label.horizon_s,
    }
    if model_metrics is not None:  # the model stage's prequential figures, per instrument
        prequential["model"] = {i: model_metrics(i) for i in sorted(instruments)}
    if monitor_stats is not None:  # the live monitor's view at the end (rolling window, drifts)
        prequential["monitor"] = {i: monitor_stats(i) for i in sorted(instruments)}
    for figures in baselines.values():
        for key in ("model_accuracy", "model_log_loss", "n_outcomes"):
            figures.pop(key)
    baselines["random"]["seed"] = settings.seed
    return {
        **whole,
        "returns_period": settings.returns_period,
        "periods_per_year": settings.ppy(),
        "calendar": settings.calendar,
        "min_ratio_returns": metrics.MIN_RATIO_PERIODS,
        "initial_capital": config.execution.initial_cash,
        "prequential": prequential,
        "warmup": {
            "end": iso_utc(warmup_end_ns) if warmup_end_ns is not None else None,
            "ticks": ticks_in_warmup,
            "until": iso_utc(warmup_until_ns) if warmup_until_ns else None,
            "model_warmup_labels": config.model.warmup_labels,
        },
        "walk_forward": {
            "period": settings.walk_forward,
            "segments": segments,
        },
        "baselines": baselines,
        "signals": {
            "score_bins": SCORE_BINS,
            "score_counts": score_counts,
        },
        "run": {**run_summary, "late_ticks_marked_at_latest_time": late_ticks},
        "definitions": DEFINITIONS,
    }


def write_report(
    out: Path,
    report: dict[str, Any],
    plots: dict[str, Decimator],
    positions: dict[str, Decimator],
    baseline_plots: dict[str, Decimator],
) -> None:
    """Write ``report.json`` and ``report.html`` into ``out``."""
    (out / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    page = html.render(
        report,
        {name: d.points() for name, d in plots.items()},
        {name: d.points() for name, d in sorted(positions.items())},
        {name: d.points() for name, d in baseline_plots.items()},
    )
    (out / "report.html").write_text(page)

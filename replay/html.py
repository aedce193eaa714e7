"""``report.html``: one self-contained page (inline SVG and CSS, no scripts, no network)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from tickwise.replay import svg

SUMMARY_KEYS = (
    "total_return",
    "sharpe",
    "sortino",
    "n_returns",
    "max_drawdown",
    "n_trades",
    "hit_rate",
    "turnover",
    "fees_paid",
    "slippage_paid",
    "exposure",
)
SEGMENT_KEYS = (
    "start",
    "end",
    "total_return",
    "sharpe",
    "n_returns",
    "max_drawdown",
    "n_trades",
    "hit_rate",
)
RATIOS = ("sharpe", "sortino")

CSS = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:900px}
table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;font-size:13px}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
h2{margin-top:28px;font-size:17px}.note{color:#555;font-size:13px}
"""


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6g}"
    return escape(str(value))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(figures: dict[str, Any], key: str) -> Any:
    """A figure for the page; a ratio on too few returns says so beside its value."""
    value = figures.get(key)
    if key in RATIOS and value is not None and figures.get("ratios_meaningful") is False:
        return f"{_cell(value)} (not meaningful: {figures.get('n_returns')} returns)"
    return value


def render(
    report: dict[str, Any],
    plots: dict[str, tuple[list[int], list[float]]],
    positions: dict[str, tuple[list[int], list[float]]],
    baseline_plots: dict[str, tuple[list[int], list[float]]],
) -> str:
    """The page: headline figures against the baselines, walk-forward segments, five plots."""
    base = report["baselines"]
    rows = [
        [key, _figure(report, key), *(_figure(base[name], key) for name in base)]
        for key in SUMMARY_KEYS
    ]
    segments = report["walk_forward"]["segments"]
    seg_rows = [[s["segment"], *(_figure(s, k) for k in SEGMENT_KEYS)] for s in segments]
    pre = report["prequential"]
    bins = report["signals"]["score_bins"]
    edges = [i / bins for i in range(bins + 1)]
    eq_t, eq_v = plots["equity"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>tickwise backtest</title>",
        f"<style>{CSS}</style></head><body><h1>tickwise backtest</h1>",
        f"<p class='note'>{_cell(report['start'])} to {_cell(report['end'])}; warm-up ended "
        f"{_cell(report['warmup']['end'])} after {report['warmup']['ticks']} ticks. Returns "
        f"resampled at {escape(report['returns_period'])}, "
        f"{report['periods_per_year']:.6g} periods per year (calendar "
        f"{escape(str(report.get('calendar')))}). The Sharpe and Sortino rest on "
        f"{report['n_returns']} returns, Sharpe standard error "
        f"{_cell(report.get('sharpe_standard_error'))}; on fewer than "
        f"{report.get('min_ratio_returns')} returns a ratio is marked not meaningful.</p>",
        "<h2>Model against baselines</h2>",
        _table(["figure", "model", *base], rows),
        f"<p class='note'>Prequential accuracy {_cell(pre['accuracy'])} over "
        f"{pre['n_outcomes']} resolved signals (horizon {pre['horizon_s']} s), log loss "
        f"{_cell(pre['log_loss'])}. Random baseline seed {base['random']['seed']}.</p>",
        "<h2>Equity</h2>",
        svg.line_chart(
            # baselines first so the model's line is drawn on top of them
            [*((n, t, v) for n, (t, v) in baseline_plots.items()), ("model", eq_t, eq_v)],
            "Equity",
            "equity",
        ),
        "<h2>Drawdown</h2>",
        svg.line_chart([("drawdown", *plots["drawdown"])], "Drawdown", "equity/peak - 1"),
        "<h2>Rolling model accuracy</h2>",
        svg.line_chart([("accuracy", *plots["accuracy"])], "Rolling accuracy", "share correct"),
        "<h2>Position</h2>",
        svg.line_chart(
            [(name, t, v) for name, (t, v) in positions.items()],
            "Position",
            "units",
            step=True,
            zero_line=True,
        ),
        "<h2>Signal distribution</h2>",
        svg.histogram(edges, report["signals"]["score_counts"], "Signal scores"),
        f"<h2>Walk-forward segments ({escape(str(report['walk_forward']['period']))})</h2>",
        _table(["segment", *SEGMENT_KEYS], seg_rows),
        "<h2>Definitions</h2>",
        _table(["figure", "definition"], [[k, v] for k, v in report["definitions"].items()]),
        "<h2>Run</h2>",
        f"<pre>{escape(json.dumps(report['run'], indent=2))}</pre>",
        "</body></html>\n",
    ]
    return "".join(parts)

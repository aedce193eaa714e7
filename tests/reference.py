"""Independent reference implementations (pandas) that report figures are checked against.

Written the way an analyst re-checking a report would write them, and kept apart from
``replay.metrics`` on purpose: nothing here is imported by the package.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd


def curve_figures(equity: pd.Series, returns_period: str, periods_per_year: float) -> dict:
    """Total return, max drawdown, Sharpe and Sortino of an equity series with a UTC index."""
    levels = equity.resample(returns_period).last().ffill()
    r = levels.pct_change().dropna()
    sd = r.std(ddof=1) if len(r) > 1 else math.nan
    downside = math.sqrt(float((r.clip(upper=0.0) ** 2).mean())) if len(r) else math.nan
    ok = len(r) > 1
    return {
        "total_return": float(equity.iloc[-1] / equity.iloc[0] - 1.0),
        "max_drawdown": float((equity / equity.cummax() - 1.0).min()),
        "sharpe": float(r.mean() / sd * math.sqrt(periods_per_year)) if ok and sd else None,
        "sortino": float(r.mean() / downside * math.sqrt(periods_per_year))
        if ok and downside
        else None,
        "levels": levels.to_numpy(),
    }


def series(times_ns: list[int], values: list[float]) -> pd.Series:
    """An equity series indexed by UTC timestamps."""
    return pd.Series(values, index=pd.to_datetime(np.asarray(times_ns, dtype=np.int64), utc=True))


def read_equity_csv(path: Path) -> pd.Series:
    """``equity.csv`` as a series indexed by its ISO-8601 UTC times."""
    frame = pd.read_csv(path)
    return pd.Series(
        frame["equity"].to_numpy(), index=pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    )

"""Report figures against an independent implementation (pandas, used in tests only).

pandas is the tool analysts would reach for to check our numbers, so the reference here is
written the way they would write it: ``resample(period).last().ffill()``, ``pct_change``,
``std(ddof=1)``, ``cummax``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import curve_figures, series

from tickwise.replay import metrics
from tickwise.replay.report import CurveAccumulator, ReportSettings

T0 = 1_378_072_800_083_000_000  # 2013-09-01T22:00:00.083Z


def reference(times_ns: list[int], equity: list[float], alias: str, ppy: float) -> dict:
    return curve_figures(series(times_ns, equity), alias, ppy)


def figures(
    times_ns: list[int],
    equity: list[float],
    alias: str,
    ppy: float,
    holding: list[bool] | None = None,
) -> dict:
    """The report's figures of a curve, fed point by point as a backtest feeds them."""
    curve = CurveAccumulator(ReportSettings(returns_period=alias, periods_per_year=ppy), 1.0, 1.0)
    for t, v, h in zip(times_ns, equity, holding or [False] * len(equity), strict=True):
        curve.on_equity(t, v, h)
    return curve.figures()


def levels(times_ns: list[int], equity: list[float], alias: str) -> list[float]:
    r = metrics.Resampler(metrics.period_ns(alias))
    for t, v in zip(times_ns, equity, strict=True):
        r.add(t, v)
    return r.values()


def random_curve(seed: int, n: int, mean_gap_s: float) -> tuple[list[int], list[float]]:
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(mean_gap_s * 1e9, size=n).astype(np.int64)
    gaps[rng.random(n) < 0.02] *= 500  # long silences: periods with no observation at all
    times = (T0 + np.cumsum(gaps)).tolist()
    equity = (100_000.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-4, size=n)))).tolist()
    return times, equity


@pytest.mark.parametrize(
    ("seed", "alias", "gap_s"),
    [(1, "1min", 2.0), (2, "1h", 30.0), (3, "1D", 600.0), (4, "15s", 1.0), (5, "7min", 5.0)],
)
def test_figures_match_pandas(seed: int, alias: str, gap_s: float) -> None:
    times, equity = random_curve(seed, 3000, gap_s)
    ppy = metrics.calendar_periods_per_year(alias)
    ref = reference(times, equity, alias, ppy)
    ours = figures(times, equity, alias, ppy)

    np.testing.assert_allclose(levels(times, equity, alias), ref["levels"])
    assert ours["n_returns"] == len(ref["levels"]) - 1
    assert ours["total_return"] == pytest.approx(ref["total_return"], rel=1e-12)
    assert ours["max_drawdown"] == pytest.approx(ref["max_drawdown"], rel=1e-12)
    assert ours["sharpe"] == pytest.approx(ref["sharpe"], rel=1e-9)
    assert ours["sortino"] == pytest.approx(ref["sortino"], rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 5 * 10**9),  # gap between points, including equal timestamps
            st.floats(50.0, 200.0, allow_nan=False),
        ),
        min_size=1,
        max_size=80,
    ),
    alias=st.sampled_from(["1s", "3s", "1min", "250ms"]),
)
def test_resampling_matches_pandas_on_any_curve(steps: list, alias: str) -> None:
    times = (T0 + np.cumsum([g for g, _ in steps])).tolist()
    equity = [v for _, v in steps]
    ref = reference(times, equity, alias, 1.0)
    np.testing.assert_allclose(levels(times, equity, alias), ref["levels"])
    got = figures(times, equity, alias, 1.0)
    assert got["max_drawdown"] == pytest.approx(ref["max_drawdown"], abs=1e-15)
    ours = got["sharpe"]
    if ref["sharpe"] is None or not math.isfinite(ref["sharpe"]):
        assert ours is None
    else:
        assert ours == pytest.approx(ref["sharpe"], rel=1e-9, abs=1e-12)


def test_undefined_figures_are_none_not_nan() -> None:
    flat = figures([T0, T0 + 10**9, T0 + 5 * 10**9], [1.0, 1.0, 1.0], "1s", 1.0)
    assert flat["sharpe"] is None and flat["sortino"] is None
    assert flat["total_return"] == 0.0 and flat["max_drawdown"] == 0.0
    one = figures([T0], [1.0], "1s", 1.0)
    assert one["sharpe"] is None and one["n_returns"] == 0


@pytest.mark.parametrize("bad", ["1W", "1M", "BD", "0s", "min5", ""])
def test_calendar_or_malformed_periods_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="returns period"):
        metrics.period_ns(bad)


def test_exposure_and_turnover_by_hand() -> None:
    # held from 10 to 30 of a 0..40 span: half the time
    half = figures(
        [T0, T0 + 10, T0 + 30, T0 + 40], [1.0] * 4, "1s", 1.0, [False, True, False, False]
    )
    assert half["exposure"] == 0.5
    assert figures([T0, T0 + 10, T0 + 20], [1.0] * 3, "1s", 1.0)["exposure"] == 0.0
    assert figures([T0], [1.0], "1s", 1.0)["exposure"] is None and half["hit_rate"] is None
    assert metrics.turnover(250_000.0, 100_000.0) == 2.5


def test_backwards_time_is_an_error() -> None:
    r = metrics.Resampler(10**9)
    r.add(T0, 1.0)
    with pytest.raises(ValueError, match="backwards"):
        r.add(T0 - 2 * 10**9, 1.0)

"""Features: causal, finite, event-time decayed, safe on ticks that share a timestamp."""

from __future__ import annotations

import itertools
import math

import pytest
import stubs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwise.schemas.ticks import QuoteTick
from tickwise.streams.config import FeatureConfig
from tickwise.streams.operators.features import FEATURE_NAMES, FeatureEngine

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
S = stubs.S

prices = st.floats(min_value=1e-2, max_value=1e6, allow_nan=False)
gaps = st.integers(min_value=0, max_value=120 * S)


@st.composite
def tick_paths(draw: st.DrawFn, min_size: int = 1, max_size: int = 40) -> list:
    """Trades and quotes (with or without sizes) of one instrument with non-decreasing
    timestamps (gaps may be 0)."""
    n = draw(st.integers(min_value=min_size, max_value=max_size))
    ts, out = stubs.T0_NS, []
    for i in range(n):
        ts += draw(gaps)
        price = draw(prices)
        if draw(st.booleans()):
            out.append(stubs.trade_tick(i, price, ts))
        else:
            bid_size, ask_size = draw(stubs.book_sizes)
            out.append(
                QuoteTick(
                    tick_id=f"q{i}",
                    instrument="ES",
                    ts_event_ns=ts,
                    bid=price,
                    ask=price * (1 + draw(st.floats(min_value=0.0, max_value=0.01))),
                    bid_size=bid_size,
                    ask_size=ask_size,
                )
            )
    return out


def run(ticks, config: FeatureConfig | None = None) -> list:
    engine = FeatureEngine(config or FeatureConfig())
    return [engine.on_tick(t) for t in ticks]


@PROPERTY
@given(data=st.data(), path=tick_paths(min_size=2))
def test_features_at_tick_i_ignore_later_ticks(data: st.DataObject, path: list) -> None:
    cut = data.draw(st.integers(min_value=1, max_value=len(path) - 1))
    other_tail = data.draw(tick_paths(min_size=1, max_size=10))
    shift = path[cut - 1].ts_event_ns - stubs.T0_NS  # keep the other tail after the prefix
    other = [t.model_copy(update={"ts_event_ns": t.ts_event_ns + shift}) for t in other_tail]
    full = run(path)
    changed = run(path[:cut] + other)
    assert changed[:cut] == full[:cut]
    assert run(path[:cut]) == full[:cut]


@PROPERTY
@given(path=tick_paths(), noise=tick_paths(max_size=10))
def test_instruments_do_not_share_state(path: list, noise: list) -> None:
    others = [t.model_copy(update={"instrument": "NQ"}) for t in noise]
    engine = FeatureEngine(FeatureConfig())
    mixed = []
    for i, tick in enumerate(path):
        if i < len(others):
            engine.on_tick(others[i])
        mixed.append(engine.on_tick(tick))
    assert mixed == run(path)


@PROPERTY
@given(path=tick_paths())
def test_outputs_are_finite_and_named(path: list) -> None:
    for fv, tick in zip(run(path), path, strict=True):
        assert tuple(fv.values) == FEATURE_NAMES
        assert all(math.isfinite(v) for v in fv.values.values()), fv.values
        assert -10.0 <= fv.values["z_ret"] <= 10.0
        assert fv.values["vol_bps"] >= 0.0 and fv.values["log_gap_s"] >= 0.0
        assert -1.0 <= fv.values["imbalance"] <= 1.0
        assert (fv.tick_id, fv.ts_event_ns, fv.price) == (
            tick.tick_id,
            tick.ts_event_ns,
            tick.reference_price,
        )


@PROPERTY
@given(ps=st.lists(prices, min_size=2, max_size=20))
def test_same_timestamp_ticks_are_averaged_not_divided_by_zero(ps: list[float]) -> None:
    ticks = [stubs.trade_tick(i, p, stubs.T0_NS) for i, p in enumerate(ps)]
    out = run(ticks)
    rets = [0.0] + [math.log(b / a) * 1e4 for a, b in itertools.pairwise(ps)]
    for k, fv in enumerate(out):
        mean = sum(rets[: k + 1]) / (k + 1)
        assert fv.values["log_gap_s"] == 0.0
        assert fv.values["ret_bps"] == pytest.approx(rets[k], rel=1e-9, abs=1e-9)
        assert fv.values["mom_fast_bps"] == pytest.approx(mean, rel=1e-9, abs=1e-6)
        assert fv.values["mom_slow_bps"] == pytest.approx(mean, rel=1e-9, abs=1e-6)


def test_first_tick_has_no_return() -> None:
    (fv,) = run([stubs.trade_tick(0, 4700.0)])
    assert fv.values["ret_bps"] == fv.values["mom_fast_bps"] == fv.values["vol_bps"] == 0.0
    assert fv.values["z_ret"] == 0.0


def test_momentum_decays_in_event_time() -> None:
    config = FeatureConfig(fast_tau_s=2.0, slow_tau_s=30.0)
    dt_s = 3.0
    ticks = [stubs.trade_tick(0, 100.0), stubs.trade_tick(1, 101.0, stubs.T0_NS + int(dt_s * S))]
    fv = run(ticks, config)[1]
    r = math.log(101.0 / 100.0) * 1e4
    assert fv.values["ret_bps"] == pytest.approx(r)
    assert fv.values["mom_fast_bps"] == pytest.approx(r / (1 + math.exp(-dt_s / 2.0)))
    assert fv.values["mom_slow_bps"] == pytest.approx(r / (1 + math.exp(-dt_s / 30.0)))
    assert fv.values["log_gap_s"] == pytest.approx(math.log1p(dt_s))


def test_features_do_not_depend_on_tick_ids_or_sizes() -> None:
    a = [stubs.trade_tick(i, 100.0 + i) for i in range(5)]
    b = [t.model_copy(update={"tick_id": f"x{i}", "size": 99.0}) for i, t in enumerate(a)]
    assert [fv.values for fv in run(a)] == [fv.values for fv in run(b)]


def test_quote_spread_and_imbalance_persist_through_trades() -> None:
    q = QuoteTick(
        tick_id="q",
        instrument="ES",
        ts_event_ns=stubs.T0_NS,
        bid=99.0,
        ask=101.0,
        bid_size=30.0,
        ask_size=10.0,
    )
    t = stubs.trade_tick(1, 100.5)
    fq, ft = run([q, t])
    assert fq.price == 100.0
    assert fq.values["spread_bps"] == pytest.approx(2.0 / 100.0 * 1e4)
    assert fq.values["imbalance"] == pytest.approx(0.5)
    assert (ft.values["spread_bps"], ft.values["imbalance"]) == (
        fq.values["spread_bps"],
        fq.values["imbalance"],
    )


def test_empty_book_sizes_give_zero_imbalance() -> None:
    q = QuoteTick(
        tick_id="q",
        instrument="ES",
        ts_event_ns=0,
        bid=1.0,
        ask=1.0,
        bid_size=0.0,
        ask_size=0.0,
    )
    assert run([q])[0].values["imbalance"] == 0.0


def fx_quote(i: int, bid: float, ask: float, **sizes: float) -> QuoteTick:
    return QuoteTick(
        tick_id=f"q{i}",
        instrument="EURUSD",
        ts_event_ns=stubs.T0_NS + i * S,
        bid=bid,
        ask=ask,
        **sizes,
    )


BOOK = FeatureConfig(feature_set=("spread_bps", "imbalance", "microprice_bps"))


def test_a_quote_without_sizes_leans_to_no_side_and_its_microprice_is_the_mid() -> None:
    sized, sizeless = run(
        [fx_quote(0, 1.1, 1.1004, bid_size=9.0, ask_size=1.0), fx_quote(1, 1.1, 1.1004)], BOOK
    )
    assert sized.values["imbalance"] == pytest.approx(0.8)
    assert sized.values["microprice_bps"] > 0.0
    # the last quote had no sizes: nothing left over from the sized quote before it
    assert sizeless.values["imbalance"] == sizeless.values["microprice_bps"] == 0.0
    assert sizeless.values["spread_bps"] == pytest.approx(0.0004 / 1.1002 * 1e4)


@PROPERTY
@given(
    bid=prices,
    spread=st.floats(min_value=0.0, max_value=0.05),
    bid_size=st.floats(min_value=1e-3, max_value=1e6),
    ask_size=st.floats(min_value=1e-3, max_value=1e6),
)
def test_microprice_is_the_size_weighted_price(
    bid: float, spread: float, bid_size: float, ask_size: float
) -> None:
    ask = bid * (1.0 + spread)
    (fv,) = run([fx_quote(0, bid, ask, bid_size=bid_size, ask_size=ask_size)], BOOK)
    micro = (bid * ask_size + ask * bid_size) / (bid_size + ask_size)
    mid = 0.5 * (bid + ask)
    assert fv.values["microprice_bps"] == pytest.approx((micro / mid - 1.0) * 1e4, abs=1e-6)
    assert abs(fv.values["microprice_bps"]) <= 0.5 * fv.values["spread_bps"] + 1e-9


def test_a_step_back_in_time_counts_as_no_gap() -> None:
    ticks = [stubs.trade_tick(0, 100.0, stubs.T0_NS + S), stubs.trade_tick(1, 100.0, stubs.T0_NS)]
    assert run(ticks)[1].values["log_gap_s"] == 0.0


def test_one_extreme_tick_does_not_poison_the_instrument() -> None:
    engine = FeatureEngine(FeatureConfig())
    engine.on_tick(stubs.trade_tick(0, 1e-10))
    # both prices are positive and finite, so the validator passes them: the features must
    # stay finite rather than overflow on the ratio of the two
    extreme = engine.on_tick(stubs.trade_tick(1, 1e300))
    assert all(math.isfinite(v) for v in extreme.values.values())
    engine.on_tick(stubs.trade_tick(2, 100.0))
    fv = engine.on_tick(stubs.trade_tick(3, 101.0))
    assert all(math.isfinite(v) for v in fv.values.values())


@PROPERTY
@given(path=tick_paths(min_size=1, max_size=60), sample_ms=st.sampled_from([1.0, 9e4, 6e5]))
def test_a_sampled_engine_emits_the_per_tick_vector_at_each_buckets_first_tick(
    path: list, sample_ms: float
) -> None:
    """The decision cadence only chooses which vectors leave: a sampled vector is bit for bit
    the one an every-tick engine computes at that tick, so no tick is skipped by the state."""
    every = run(path)
    sampled = run(path, FeatureConfig(sample_ms=sample_ms))
    bucket_ns, last, expected = int(sample_ms * 1e6), None, []
    for tick, fv in zip(path, every, strict=True):
        bucket = tick.ts_event_ns // bucket_ns
        expected.append(fv if bucket != last else None)
        last = bucket
    assert sampled == expected
    assert sampled[0] is not None  # an instrument's first tick always decides


def test_a_late_tick_inside_an_earlier_bucket_does_not_decide_again() -> None:
    """Out-of-order ticks (within tolerance) fall in a bucket already decided: no second
    vector, so a late tick cannot buy a bucket two decisions."""
    engine = FeatureEngine(FeatureConfig(sample_ms=1000.0))
    t0 = stubs.T0_NS - stubs.T0_NS % S
    assert engine.on_tick(stubs.trade_tick(0, 100.0, t0)) is not None
    assert engine.on_tick(stubs.trade_tick(1, 100.5, t0 + S + 10)) is not None
    assert engine.on_tick(stubs.trade_tick(2, 100.2, t0 + S - 10)) is None  # late, old bucket
    assert engine.on_tick(stubs.trade_tick(3, 100.1, t0 + S + 20)) is None
    assert engine.on_tick(stubs.trade_tick(4, 100.3, t0 + 2 * S)) is not None

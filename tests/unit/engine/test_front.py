"""The columnar engine's validation and features against the per-message operators (the
oracle), and batch invariance: any split of a stream into batches gives the same bytes."""

from __future__ import annotations

import json
import math
import statistics
from itertools import islice, pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stubs import ES_TRADES, MS, T0_NS, S

from tests.oracle.validator import Validator
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import CleanTick, SourceRef
from tickwise.streams.config import FeatureConfig, InstrumentRules, ValidationConfig
from tickwise.streams.engine import features as features_module
from tickwise.streams.engine.batch import SymbolTable, TickBatch, clean_tick_bytes, decode
from tickwise.streams.engine.features import BASE, BatchFeatures
from tickwise.streams.engine.validate import BatchValidator, _median
from tickwise.streams.operators.features.engine import FeatureEngine
from tickwise.streams.sources import BAD_KINDS, REGIMES, ColumnMap, read_csv, synthetic

# every catalogue feature and three returns over event-time horizons, one of them first
ALL_FEATURES = FeatureConfig(feature_set=("ret_1s_bps", *BASE, "ret_0.05s_bps", "ret_30s_bps"))
FULL = ValidationConfig(reject_locked_quotes=True, instruments=("ES", "NQ", "CL"))
TIGHT = ValidationConfig(
    dedup_window=3,
    outlier_window=4,
    outlier_min_jump_bps=5.0,
    outlier_k=2.0,
    max_future_s=2.0,
    max_past_s=1.0,
    out_of_order_tolerance_ms=5.0,
    per_instrument={"NQ": InstrumentRules(outlier_confirm_ticks=1, time_confirm_ticks=1)},
)


def oracle(
    payloads: list[bytes], vc: ValidationConfig, fc: FeatureConfig
) -> tuple[list[CleanTick | QuarantineRecord], list[list[float] | None]]:
    """What the per-message validator and feature engine make of the stream."""
    validator, features = Validator(vc), FeatureEngine(fc)
    verdicts, vectors = [], []
    for i, raw in enumerate(payloads):
        (verdict,) = validator.on_raw(raw, SourceRef(topic="ticks.raw", partition=0, offset=i))
        verdicts.append(verdict)
        if isinstance(verdict, CleanTick):
            fv = features.on_tick(verdict.tick)
            vectors.append(None if fv is None else list(fv.values.values()))
    return verdicts, vectors


class Engine:
    """The engine's front half, fed batch by batch."""

    def __init__(self, vc: ValidationConfig, fc: FeatureConfig) -> None:
        self.vc = vc
        self.symbols = SymbolTable()
        self.validator = BatchValidator(vc, self.symbols)
        self.features = BatchFeatures(fc, self.symbols)

    def run(
        self, payloads: list[bytes], start: int
    ) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
        verdict, records, emit, vectors, _ = self.run_batch(payloads, start)
        return verdict, records, emit, vectors

    def run_batch(
        self, payloads: list[bytes], start: int
    ) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray, TickBatch]:
        offsets = np.arange(start, start + len(payloads))
        max_bytes = self.vc.max_message_bytes
        batch = decode(payloads, self.symbols, "ticks.raw", 0, offsets, max_bytes, None, True)
        batch, verdict, aux = self.validator.run(batch)
        records = self.validator.records(batch, verdict, aux)
        emit, vectors = self.features.run(batch, verdict == 0)
        return verdict, records, emit, vectors, batch

    def state_bytes(self) -> bytes:
        s = self.validator.state
        parts = [getattr(s, name) for name in s.__slots__] + self.features.state_arrays()
        return b"".join(np.ascontiguousarray(p).tobytes() for p in parts)


def run_split(payloads: list[bytes], cuts: list[int], vc: ValidationConfig, fc: FeatureConfig):
    engine = Engine(vc, fc)
    verdicts, records, emits, vectors = [], {}, [], []
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(payloads))), len(payloads)]
    for a, b in pairwise(bounds):
        verdict, recs, emit, vecs = engine.run(payloads[a:b], a)
        verdicts.append(verdict)
        records.update({a + row: r for row, r in recs.items()})
        emits.append(emit)
        vectors.append(vecs)
    return (
        np.concatenate(verdicts),
        records,
        np.concatenate(emits),
        np.concatenate(vectors) if vectors else np.zeros((0, len(fc.feature_set))),
        engine.state_bytes(),
    )


def assert_equals_oracle(payloads: list[bytes], vc: ValidationConfig, fc: FeatureConfig) -> None:
    """Verdicts, quarantine records, the clean ticks' bytes (what a worker publishes on
    ``ticks.clean``) and feature vectors all equal the per-message operators'."""
    verdicts, vectors = oracle(payloads, vc, fc)
    verdict, records, emit, vecs, batch = Engine(vc, fc).run_batch(payloads, 0)
    clean_vectors = iter(vectors)
    rows = iter(vecs)
    for i, expected in enumerate(verdicts):
        if isinstance(expected, QuarantineRecord):
            assert records.get(i) == expected, (i, payloads[i])
            continue
        assert verdict[i] == 0, (i, payloads[i], records.get(i))
        assert clean_tick_bytes(batch, [i]) == [expected.to_bytes()], payloads[i]
        want = next(clean_vectors)
        assert emit[i] == (want is not None)
        if want is not None:
            got = next(rows)
            assert got.tobytes() == np.array(want).tobytes(), (i, got, want)
    assert next(rows, None) is None


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_synthetic_streams_equal_the_per_message_operators(regime: str) -> None:
    payloads = [r.payload for r in synthetic(11, 6_000, bad_rate=0.08, regime=regime,
                                             bad_kinds=BAD_KINDS)]  # fmt: skip
    assert_equals_oracle(payloads, FULL, ALL_FEATURES)


def test_decision_cadence_samples_the_same_ticks() -> None:
    payloads = [r.payload for r in synthetic(5, 4_000, bad_rate=0.02)]
    cadence = ALL_FEATURES.model_copy(update={"sample_ms": 250.0})
    assert_equals_oracle(payloads, ValidationConfig(), cadence)


# A stream meant to hit every branch: ids from a small pool (duplicates and evictions),
# sequence numbers, time jumps back and forth, price jumps, quotes with odd sizes.
def _message(draw: st.DrawFn, i: int) -> bytes:
    name = draw(st.sampled_from(["ES", "NQ"]))
    ts = T0_NS + draw(st.integers(-3 * S, 3 * S)) if draw(st.booleans()) else T0_NS + i * 10 * MS
    msg: dict[str, object] = {
        "tick_id": f"t{draw(st.integers(0, 12))}",
        "instrument": name,
        "ts_event_ns": ts,
    }
    if draw(st.booleans()):
        msg["seq"] = draw(st.integers(0, 8) | st.sampled_from([-3, 2**63 + 5, 2**70]))
    if draw(st.integers(0, 5)) == 0:
        msg["ts_recv_ns"] = ts + draw(st.integers(0, 10**9))
    price = draw(st.sampled_from([100.0, 100.01, 99.99, 101.0, 98.0, 130.0, 100.0, -1.0]))
    if draw(st.integers(0, 3)) == 0:
        spread = draw(st.sampled_from([0.0, 0.01, -0.01]))
        msg |= {"kind": "quote", "bid": price, "ask": price + spread}
        sizes = draw(st.sampled_from(["both", "none", "bid only", "null ask", "version 1"]))
        if sizes != "none":
            msg["bid_size"] = draw(st.sampled_from([0.0, 1.0, 5.0, -1.0]))
        if sizes in ("both", "version 1"):
            msg["ask_size"] = 2.0
        if sizes == "null ask":
            msg["ask_size"] = None
        if sizes == "version 1":
            msg["schema_version"] = 1
    else:
        msg |= {"kind": "trade", "price": price, "size": draw(st.sampled_from([1.0, 0.0, 3]))}
    if draw(st.integers(0, 30)) == 0:
        return json.dumps(msg)[:-3].encode()  # cut short: malformed
    return json.dumps(msg).encode()


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    n = draw(st.integers(1, 80))
    return [_message(draw, i) for i in range(n)]


@settings(max_examples=150, deadline=None)
@given(streams())
def test_odd_streams_equal_the_per_message_operators(payloads: list[bytes]) -> None:
    assert_equals_oracle(payloads, TIGHT, ALL_FEATURES)


@settings(max_examples=60, deadline=None)
@given(streams(), st.lists(st.integers(0, 80), max_size=10))
def test_any_split_into_batches_gives_the_same_bytes(
    payloads: list[bytes], cuts: list[int]
) -> None:
    whole = run_split(payloads, [], TIGHT, ALL_FEATURES)
    ones = run_split(payloads, list(range(len(payloads))), TIGHT, ALL_FEATURES)
    split = run_split(payloads, cuts, TIGHT, ALL_FEATURES)
    for other in (ones, split):
        assert other[0].tobytes() == whole[0].tobytes()
        assert other[1] == whole[1]
        assert other[2].tobytes() == whole[2].tobytes()
        assert other[3].tobytes() == whole[3].tobytes()
        assert other[4] == whole[4]


# Returns over 0.25 s and 1 s, on clocks that stand still, step a millisecond, land a hair
# before, on and after a horizon, jump past both, and go back a little (within tolerance).
RETURNS = FeatureConfig(feature_set=("ret_0.25s_bps", "rsi", "ret_1s_bps"))
LENIENT = ValidationConfig(out_of_order_tolerance_ms=5.0, outlier_k=0.0)
STEPS = [0, 0, 0, MS, MS, MS, MS, 249 * MS, 250 * MS, 251 * MS, S, 3 * S, -2 * MS]


@st.composite
def lagged_streams(draw: st.DrawFn) -> list[bytes]:
    ts, out = T0_NS, []
    for i in range(draw(st.integers(1, 120))):
        ts += draw(st.sampled_from(STEPS))
        msg = {
            "kind": "trade", "tick_id": f"r{i}", "ts_event_ns": ts, "size": 1.0,
            "instrument": draw(st.sampled_from(["ES", "NQ", "CL"])),
            "price": draw(st.sampled_from([100.0, 100.25, 99.75, 101.5])),
        }  # fmt: skip
        out.append(json.dumps(msg).encode())
    return out


@settings(max_examples=150, deadline=None)
@given(lagged_streams(), st.lists(st.integers(0, 120), max_size=6))
def test_returns_over_horizons_equal_the_per_tick_window_under_any_split(
    payloads: list[bytes], cuts: list[int]
) -> None:
    """The base price at or before ``now - H`` (the first tick's before one exists), with
    rings starting at one pair so that they grow under every split."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(features_module, "START_CAPACITY", 1)
        assert_equals_oracle(payloads, LENIENT, RETURNS)
        whole = run_split(payloads, [], LENIENT, RETURNS)
        ones = run_split(payloads, list(range(len(payloads))), LENIENT, RETURNS)
        split = run_split(payloads, cuts, LENIENT, RETURNS)
    for other in (ones, split):
        assert other[2].tobytes() == whole[2].tobytes()
        assert other[3].tobytes() == whole[3].tobytes()
        assert other[4] == whole[4]


def test_a_return_before_its_horizon_starts_at_the_first_tick() -> None:
    """What the per-tick window gives, spelled out: the first price until a tick lies at or
    before ``now - H``, then the last such one (a tick exactly H back counts)."""
    prices = [100.0, 101.0, 102.0, 103.0, 104.0]
    times = [0, 0, 400 * MS, 1_000 * MS, 1_400 * MS]
    payloads = [
        json.dumps({"kind": "trade", "tick_id": f"f{i}", "instrument": "ES",
                    "ts_event_ns": T0_NS + t, "price": p, "size": 1.0}).encode()
        for i, (p, t) in enumerate(zip(prices, times, strict=True))
    ]  # fmt: skip
    engine = Engine(LENIENT, FeatureConfig(feature_set=("ret_1s_bps",)))
    _, _, _, vectors = engine.run(payloads, 0)
    bases = [100.0, 100.0, 100.0, 101.0, 102.0]
    want = [(math.log(p) - math.log(b)) * 1e4 for p, b in zip(prices, bases, strict=True)]
    assert vectors[:, 0].tolist() == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=70), min_size=1, max_size=5))
def test_any_instrument_name_gets_the_contracts_verdict(names: list[str]) -> None:
    """Names the contract's pattern refuses ("ES\\n", spaces, 65 characters) are refused alike."""
    payloads = [
        json.dumps({"kind": "trade", "tick_id": f"n{i}", "instrument": name,
                    "ts_event_ns": T0_NS + i * MS, "price": 100.0, "size": 1.0}).encode()
        for i, name in enumerate([*names, "ES\n", "E S", "x" * 65])
    ]  # fmt: skip
    assert_equals_oracle(payloads, ValidationConfig(), ALL_FEATURES)


def test_real_es_trades_equal_the_per_message_operators() -> None:
    if not ES_TRADES.exists():
        pytest.skip(f"real ES trades not found at {ES_TRADES}")
    rows = read_csv(ES_TRADES, ColumnMap(symbol="ES", tz="America/Chicago"))
    payloads = [r.payload for r in islice(rows, 20_000)]
    assert_equals_oracle(payloads, ValidationConfig(), ALL_FEATURES)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from([-2.5, -1.0, -0.0, 0.0, 1e-9, 0.5, 3.0]) | st.floats(-1, 1),
        min_size=1,
        max_size=300,
    )
)
def test_the_kernels_median_is_statistics_median(values: list[float]) -> None:
    """The outlier rule's median (a heap sort in place, no allocation) is the oracle's."""
    a = np.array([*values, 99.0])  # a value past n stays where it is
    assert _median(a, len(values)) == statistics.median(values)
    assert a[: len(values)].tolist() == sorted(values) and a[-1] == 99.0


def test_the_id_table_grows_and_forgets_exactly() -> None:
    """Thousands of distinct ids through a window of 3: only the last three are duplicates."""
    vc = ValidationConfig(dedup_window=3, outlier_k=0.0)
    payloads = [
        json.dumps({"kind": "trade", "tick_id": f"id{i}", "instrument": "ES",
                    "ts_event_ns": T0_NS + i, "price": 100.0, "size": 1.0}).encode()
        for i in range(5_000)
    ]  # fmt: skip
    again = [payloads[i] for i in (4_999, 4_998, 4_997, 4_996, 0)]
    engine = Engine(vc, ALL_FEATURES)
    engine.run(payloads, 0)
    _verdict, records, _, _ = engine.run(again, 5_000)
    reasons = [records[i].reason.value if i in records else "clean" for i in range(5)]
    assert reasons[:3] == ["DUPLICATE"] * 3
    assert reasons[3:] == ["OUT_OF_ORDER", "OUT_OF_ORDER"]  # forgotten ids, old times
    assert int(engine.validator.state.table_size[0]) == 3

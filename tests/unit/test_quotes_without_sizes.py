"""Quotes without sizes (FX, indicative): a bid/ask file gives clean ticks and finite features.

Crossed, locked and out-of-order quotes are still quarantined with their reasons. The recorded
file is built from the real USD/CHF rates in ../shared/data (a bid and an ask two pips either side
of each rate, no size columns); a small synthetic file does the same where that folder is absent.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections import Counter
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest
import stubs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.oracle.validator import Validator
from tickwise.schemas.decisions import Action, AuditRecord, Fill
from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import CleanTick, QuoteTick
from tickwise.streams.cli import main
from tickwise.streams.config import FeatureConfig, ValidationConfig
from tickwise.streams.operators.features import CATALOGUE, FeatureEngine
from tickwise.streams.sources import ColumnMap, SourceError, read_csv

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
USDCHF = SHARED / "usdchf_30min_1996-2001.csv.gz"
HALF_SPREAD = 0.0002  # two pips either side of the rate, as a bank's indicative quote
HEADER = ["timestamp", "usdchf_bid", "usdchf_ask"]  # names no alias knows: mapped by option
FEATURES = (*CATALOGUE, "ret_5s_bps")
BOOK = ("imbalance", "microprice_bps")


def quote_rows(
    points: list[tuple[datetime, float]], back: timedelta
) -> tuple[list[list[object]], dict[int, str]]:
    """Bid/ask rows around each rate, some crossed, locked or late; row -> its expected reason."""
    rows: list[list[object]] = []
    expected: dict[int, str] = {}
    for i, (when, rate) in enumerate(points):
        bid, ask = round(rate - HALF_SPREAD, 6), round(rate + HALF_SPREAD, 6)
        if i % 50 == 11:
            bid, ask = ask, bid
            expected[i] = "CROSSED_QUOTE"
        elif i % 50 == 27:
            ask = bid
            expected[i] = "LOCKED_QUOTE"
        elif i % 50 == 43:
            when = points[i - 1][0] - back
            expected[i] = "OUT_OF_ORDER"
        rows.append([when.isoformat(sep=" "), bid, ask])
    return rows, expected


def usdchf_points(count: int) -> list[tuple[datetime, float]]:
    if not USDCHF.exists():
        pytest.skip(f"real USD/CHF file not found at {USDCHF} (the shared data folder is absent)")
    with gzip.open(USDCHF, "rt", newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["timestamp", "USDCHF"]
        return [(datetime.fromisoformat(t), float(p)) for t, p in islice(reader, count)]


def synthetic_points(count: int) -> list[tuple[datetime, float]]:
    start = datetime(2024, 3, 4, 8, 0, 0)
    return [
        (start + timedelta(seconds=i), 1.1 + 5e-4 * math.sin(i / 13) + 3e-4 * math.cos(i / 7))
        for i in range(count)
    ]


def backtest(tmp_path: Path, rows: list[list[object]], horizon_s: float) -> Path:
    """Run ``tickwise backtest`` on the rows as a user would, bid and ask mapped by option."""
    data = stubs.write_csv(tmp_path / "quotes.csv.gz", HEADER, rows)
    config = tmp_path / "fx.toml"
    names = ", ".join(f'"{n}"' for n in FEATURES)
    config.write_text(
        f"[validation]\nreject_locked_quotes = true\n[label]\nhorizon_s = {horizon_s}\n"
        f"[features]\nfeature_set = [{names}]\n[execution]\nslippage_bps = 0.0\n"
        '[audit]\nholds = "each"\n'  # a record per decision: the features each one saw
    )
    out = tmp_path / "out"
    args = ["backtest", "--data", str(data), "--out", str(out), "--config", str(config)]
    args += ["--time-col", "timestamp", "--bid-col", "usdchf_bid", "--ask-col", "usdchf_ask"]
    assert main([*args, "--symbol", "USDCHF", "--tz", "UTC", "--no-progress"]) == 0
    return out


def check_backtest(out: Path, rows: int, expected: dict[int, str]) -> None:
    """Every quote not broken on purpose is clean; every broken one is quarantined for its
    reason; the features every decision saw are finite and lean to no side."""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clean"] == rows - len(expected)
    assert summary["quarantined_by_reason"] == dict(Counter(expected.values()))
    records = [
        QuarantineRecord.model_validate_json(line)
        for line in (out / "quarantine.jsonl").read_bytes().splitlines()
    ]
    assert {r.source.offset: r.reason.value for r in records} == expected
    audit = [
        AuditRecord.model_validate_json(line)
        for line in (out / "audit.jsonl").read_bytes().splitlines()
    ]
    assert audit, "no decision was reached"
    for record in audit:
        assert list(record.features) == list(FEATURES)
        assert all(math.isfinite(v) for v in record.features.values())
        assert [record.features[name] for name in BOOK] == [0.0, 0.0]
        assert record.features["spread_bps"] > 0.0


@pytest.mark.slow
def test_a_month_of_recorded_fx_quotes_without_sizes(tmp_path: Path) -> None:
    points = usdchf_points(1500)  # 30-minute rates: a month, weekends included
    rows, expected = quote_rows(points, back=timedelta(minutes=10))
    assert Counter(expected.values()) == {
        "CROSSED_QUOTE": 30,
        "LOCKED_QUOTE": 30,
        "OUT_OF_ORDER": 30,
    }
    out = backtest(tmp_path, rows, horizon_s=3600.0)
    check_backtest(out, len(rows), expected)
    fills = [
        Fill.model_validate_json(line) for line in (out / "fills.jsonl").read_bytes().splitlines()
    ]
    assert fills, "execution filled nothing on quotes without sizes"
    for fill in fills:  # a buy lifts the quote's ask, a sell hits its bid (no slippage set)
        _, bid, ask = rows[int(fill.tick_id.rsplit(":", 1)[1])]
        assert fill.price == (ask if fill.side is Action.BUY else bid)


def test_a_synthetic_quotes_file_without_sizes(tmp_path: Path) -> None:
    rows, expected = quote_rows(synthetic_points(400), back=timedelta(seconds=1))
    check_backtest(backtest(tmp_path, rows, horizon_s=5.0), len(rows), expected)


def test_quotes_without_sizes_read_validate_and_feature_every_row(tmp_path: Path) -> None:
    rows, expected = quote_rows(synthetic_points(200), back=timedelta(seconds=1))
    path = stubs.write_csv(tmp_path / "q.csv", ["time", "bid", "ask"], rows)
    validator = Validator(ValidationConfig(reject_locked_quotes=True))
    engine = FeatureEngine(FeatureConfig(feature_set=FEATURES))
    reasons = {}
    for record in read_csv(path, ColumnMap(symbol="USDCHF", tz="UTC")):
        assert b"size" not in record.payload
        (verdict,) = validator.on_raw(record.payload, stubs.src(record.index))
        if isinstance(verdict, QuarantineRecord):
            reasons[record.index] = verdict.reason.value
            continue
        assert isinstance(verdict.tick, QuoteTick)
        assert verdict.tick.bid_size is verdict.tick.ask_size is None
        values = engine.on_tick(verdict.tick).values
        assert all(math.isfinite(v) for v in values.values())
        assert values["imbalance"] == values["microprice_bps"] == 0.0
    assert reasons == expected


def test_a_size_on_one_side_only_is_quarantined(tmp_path: Path) -> None:
    rows = [
        ["2024-03-04 08:00:00", 1.1, 1.1002, 5, ""],
        ["2024-03-04 08:00:01", 1.1, 1.1002, "", ""],
    ]
    path = stubs.write_csv(tmp_path / "q.csv", ["time", "bid", "ask", "bid_size", "ask_size"], rows)
    validator = stubs.OneVerdictValidator(ValidationConfig())
    one_side, neither = (
        validator.on_raw(r.payload, stubs.src(r.index))
        for r in read_csv(path, ColumnMap(symbol="X", tz="UTC"))
    )
    assert isinstance(one_side, QuarantineRecord)
    assert one_side.reason is ReasonCode.INVALID_SIZE and "one side" in one_side.detail
    assert isinstance(neither, CleanTick)  # empty cells on both sides: a quote without sizes


def test_a_size_column_for_one_side_only_is_refused_before_reading(tmp_path: Path) -> None:
    path = stubs.write_csv(tmp_path / "q.csv", ["time", "bid", "ask", "bid_size"], [])
    with pytest.raises(SourceError, match="--ask-size-col"):
        next(read_csv(path, ColumnMap(symbol="X", tz="UTC")))


def test_a_version_1_quote_still_needs_its_sizes() -> None:
    validator = stubs.OneVerdictValidator(ValidationConfig())
    old = validator.on_raw(stubs.quote(schema_version=1), stubs.src(0))
    assert isinstance(old, CleanTick) and old.tick.schema_version == 1
    bare = stubs.quote(schema_version=1, tick_id="q-2", bid_size=None, ask_size=None)
    verdict = validator.on_raw(bare, stubs.src(1))
    assert isinstance(verdict, QuarantineRecord)
    assert verdict.reason is ReasonCode.SCHEMA_VIOLATION and "schema_version 1" in verdict.detail


# --- any quote, with or without sizes -------------------------------------------------------

ABSENT = object()  # the key is left out of the message
junk = st.one_of(
    st.floats(),  # NaN, infinities, negatives, subnormals, the largest floats
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from(["", "1.5", "abc", [], {}]),
    st.none(),
)
prices = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False) | junk
sizes = st.just(ABSENT) | st.floats(min_value=0.0, max_value=1e12) | junk


@st.composite
def quote_messages(draw: st.DrawFn) -> bytes:
    """A quote as a feed might send it: any prices, sizes on both, one or no sides, any time."""
    bid = draw(prices)
    ask = draw(prices)
    if isinstance(bid, float) and draw(st.booleans()):  # near the bid: fine, locked or crossed
        ask = bid * draw(st.sampled_from([1.0, 1.0001, 0.9999, 2.0]))
    msg: dict[str, object] = {
        "kind": "quote",
        "tick_id": draw(st.sampled_from(["a", "b", "c"]) | st.text(max_size=8)),
        "instrument": "USDCHF",
        "ts_event_ns": stubs.T0_NS + draw(st.integers(min_value=-(10**13), max_value=10**13)),
        "bid": bid,
        "ask": ask,
    }
    for side in ("bid_size", "ask_size"):
        value = draw(sizes)
        if value is not ABSENT:
            msg[side] = value
    if draw(st.booleans()):
        msg["schema_version"] = draw(st.sampled_from([1, 2, 3]))
    return json.dumps(msg).encode()  # NaN and Infinity as the JSON literals a feed might send


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(quote_messages(), min_size=1, max_size=30), locked=st.booleans())
def test_any_quote_is_clean_with_finite_features_or_quarantined_with_a_reason(
    messages: list[bytes], locked: bool
) -> None:
    validator = stubs.OneVerdictValidator(ValidationConfig(reject_locked_quotes=locked))
    engine = FeatureEngine(FeatureConfig(feature_set=FEATURES))
    for offset, raw in enumerate(messages):
        verdict = validator.on_raw(raw, stubs.src(offset))
        if isinstance(verdict, QuarantineRecord):
            assert verdict.reason in ReasonCode and verdict.detail
            assert verdict.reason is not ReasonCode.OPERATOR_ERROR
            continue
        tick = verdict.tick
        assert isinstance(tick, QuoteTick)
        assert 0.0 < tick.bid <= tick.ask and (tick.bid < tick.ask or not locked)
        assert (tick.bid_size is None) == (tick.ask_size is None)
        values = engine.on_tick(tick).values
        assert all(math.isfinite(v) for v in values.values()), values
        assert -1.0 <= values["imbalance"] <= 1.0
        if tick.bid_size is None:
            assert values["imbalance"] == values["microprice_bps"] == 0.0

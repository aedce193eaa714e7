"""CSV sources: column mapping and aliases, gzip, time zones and epochs, bad rows kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import stubs

from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import CleanTick, QuoteTick, TradeTick
from tickwise.streams.config import ValidationConfig
from tickwise.streams.sources import ColumnMap, SourceError, TimeParser, read_csv

ES_FILE = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "es_trades_2013-09-01T17_to_09-03T09.csv.gz"
)


def ns(*args: int) -> int:
    """UTC nanoseconds of a datetime given as (y, m, d, H, M, S, us), computed independently."""
    delta = datetime(*args, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000


def validate(records) -> list[CleanTick | QuarantineRecord]:
    v = stubs.OneVerdictValidator(ValidationConfig())
    return [v.on_raw(r.payload, stubs.src(r.index, topic=r.origin)) for r in records]


def clean_ticks(records) -> list[TradeTick | QuoteTick]:
    out = validate(records)
    assert all(isinstance(c, CleanTick) for c in out), [getattr(c, "detail", "") for c in out]
    return [c.tick for c in out]


# --- columns ------------------------------------------------------------------------------


def test_trades_found_by_aliases(tmp_path: Path) -> None:
    path = stubs.write_csv(
        tmp_path / "t.csv",
        ["Timestamp", "Last", "Qty", "Ticker"],
        [
            ["2024-01-02T14:30:00Z", "4700.25", "3", "ES"],
            ["2024-01-02T14:30:01Z", "4700.5", "1", "NQ"],
        ],
    )
    records = list(read_csv(path))
    ticks = clean_ticks(records)
    assert [type(t) for t in ticks] == [TradeTick, TradeTick]
    assert [(t.instrument, t.price, t.size) for t in ticks] == [
        ("ES", 4700.25, 3.0),
        ("NQ", 4700.5, 1.0),
    ]
    assert [t.ts_event_ns for t in ticks] == [ns(2024, 1, 2, 14, 30, 0), ns(2024, 1, 2, 14, 30, 1)]
    assert [r.key for r in records] == ["ES", "NQ"]
    assert [r.index for r in records] == [0, 1]
    assert [r.ts_event_ns for r in records] == [t.ts_event_ns for t in ticks]
    assert len({t.tick_id for t in ticks}) == 2


def test_quotes_found_by_aliases(tmp_path: Path) -> None:
    path = stubs.write_csv(
        tmp_path / "q.csv",
        ["ts", "symbol", "bid_px", "offer", "bid_qty", "ask_sz"],
        [["2024-01-02T14:30:00+00:00", "ES", "4700", "4700.25", "10", "12"]],
    )
    (tick,) = clean_ticks(read_csv(path))
    assert isinstance(tick, QuoteTick)
    assert (tick.bid, tick.ask, tick.bid_size, tick.ask_size) == (4700.0, 4700.25, 10.0, 12.0)


def test_explicit_column_mapping_wins_over_aliases(tmp_path: Path) -> None:
    path = stubs.write_csv(
        tmp_path / "m.csv",
        ["when", "px", "price", "n"],
        [["2024-01-02T14:30:00Z", "10.5", "999", "7"]],
    )
    columns = ColumnMap(time_col="when", price_col="px", size_col="n", symbol="CL")
    (tick,) = clean_ticks(read_csv(path, columns))
    assert (tick.instrument, tick.price, tick.size) == ("CL", 10.5, 7.0)


def test_fixed_symbol_overrides_the_symbol_column(tmp_path: Path) -> None:
    path = stubs.write_csv(
        tmp_path / "s.csv", ["time", "price", "symbol"], [["2024-01-02T14:30:00Z", "1", "XX"]]
    )
    (record,) = read_csv(path, ColumnMap(symbol="ES"))
    assert record.key == "ES"
    assert json.loads(record.payload)["instrument"] == "ES"


def test_missing_size_column_defaults_to_one(tmp_path: Path) -> None:
    path = stubs.write_csv(tmp_path / "p.csv", ["time", "price"], [["2024-01-02T14:30:00Z", "5"]])
    (tick,) = clean_ticks(read_csv(path, ColumnMap(symbol="ES")))
    assert tick.size == 1.0


@pytest.mark.parametrize(
    ("header", "columns", "message"),
    [
        (["price", "size"], ColumnMap(symbol="ES"), "time"),
        (["time", "size"], ColumnMap(symbol="ES"), "price"),
        (["time", "price"], ColumnMap(), "symbol"),
        (["time", "price"], ColumnMap(symbol="ES", price_col="px"), "px"),
    ],
)
def test_unusable_header_is_a_source_error(
    tmp_path: Path, header: list[str], columns: ColumnMap, message: str
) -> None:
    path = stubs.write_csv(tmp_path / "h.csv", header, [["1"] * len(header)])
    with pytest.raises(SourceError, match=message):
        list(read_csv(path, columns))


def test_empty_file_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(SourceError, match="empty"):
        list(read_csv(tmp_path / "e.csv"))


def test_gzip_reads_the_same_ticks(tmp_path: Path) -> None:
    rows = [[f"2024-01-02T14:30:0{i}Z", f"{100 + i}.25", str(i + 1)] for i in range(5)]
    plain = stubs.write_csv(tmp_path / "d.csv", ["time", "price", "size"], rows)
    packed = stubs.write_csv(tmp_path / "d.csv.gz", ["time", "price", "size"], rows)
    columns = ColumnMap(symbol="ES")
    a, b = clean_ticks(read_csv(plain, columns)), clean_ticks(read_csv(packed, columns))
    assert len(a) == 5
    strip = [t.model_dump(exclude={"tick_id"}) for t in a]
    assert strip == [t.model_dump(exclude={"tick_id"}) for t in b]
    assert {t.tick_id.split(":")[0] for t in b} == {"d.csv.gz"}


# --- time -------------------------------------------------------------------------------


def test_naive_timestamps_need_a_zone(tmp_path: Path) -> None:
    path = stubs.write_csv(tmp_path / "n.csv", ["time", "price"], [["2024-01-02 09:30:00", "1"]])
    with pytest.raises(SourceError, match="--tz"):
        list(read_csv(path, ColumnMap(symbol="ES")))
    (tick,) = clean_ticks(read_csv(path, ColumnMap(symbol="ES", tz="America/New_York")))
    assert tick.ts_event_ns == ns(2024, 1, 2, 14, 30, 0)  # EST is UTC-5


def test_explicit_offsets_need_no_zone_and_ignore_tz(tmp_path: Path) -> None:
    path = stubs.write_csv(
        tmp_path / "o.csv", ["time", "price"], [["2024-07-01T09:30:00.250-04:00", "1"]]
    )
    expected = ns(2024, 7, 1, 13, 30, 0, 250_000)
    for tz in (None, "Asia/Tokyo"):
        (tick,) = clean_ticks(read_csv(path, ColumnMap(symbol="ES", tz=tz)))
        assert tick.ts_event_ns == expected


def test_daylight_saving_time_is_applied() -> None:
    chicago = TimeParser("auto", "America/Chicago")
    assert chicago("2013-01-15 12:00:00") == ns(2013, 1, 15, 18, 0, 0)  # CST, UTC-6
    assert chicago("2013-07-15 12:00:00") == ns(2013, 7, 15, 17, 0, 0)  # CDT, UTC-5


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("epoch_s", "1704205800", 1_704_205_800 * 10**9),
        ("epoch_ms", "1704205800123", 1_704_205_800_123 * 10**6),
        ("epoch_us", "1704205800123456", 1_704_205_800_123_456 * 10**3),
        ("epoch_ns", "1704205800123456789", 1_704_205_800_123_456_789),
        ("epoch_ms", "1500.5", 1_500_500_000),
        ("epoch_s", "0", 0),
    ],
)
def test_epoch_formats(fmt: str, text: str, expected: int) -> None:
    assert TimeParser(fmt, None)(text) == expected


def test_epoch_and_strptime_time_formats_in_files(tmp_path: Path) -> None:
    path = stubs.write_csv(tmp_path / "ep.csv", ["ts", "price"], [["1704205800000", "1"]])
    (tick,) = clean_ticks(read_csv(path, ColumnMap(symbol="ES", time_format="epoch_ms")))
    assert tick.ts_event_ns == ns(2024, 1, 2, 14, 30, 0)
    path2 = stubs.write_csv(tmp_path / "sp.csv", ["ts", "price"], [["02/01/2024 14:30:00", "1"]])
    columns = ColumnMap(symbol="ES", time_format="%d/%m/%Y %H:%M:%S", tz="UTC")
    (tick2,) = clean_ticks(read_csv(path2, columns))
    assert tick2.ts_event_ns == tick.ts_event_ns


def test_fractional_epoch_seconds_are_exact_to_the_nanosecond() -> None:
    assert TimeParser("epoch_s", None)("1378072800.083") == 1_378_072_800_083_000_000


# --- bad rows still reach the validator ----------------------------------------------------


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["2024-01-02T14:30:00Z", "abc", "1"], ReasonCode.INVALID_PRICE),
        (["2024-01-02T14:30:00Z", "nan", "1"], ReasonCode.INVALID_PRICE),
        (["2024-01-02T14:30:00Z", "-3", "1"], ReasonCode.INVALID_PRICE),
        (["2024-01-02T14:30:00Z", "", "1"], ReasonCode.INVALID_PRICE),
        (["2024-01-02T14:30:00Z"], ReasonCode.INVALID_PRICE),
        (["2024-01-02T14:30:00Z", "5", "many"], ReasonCode.INVALID_SIZE),
        (["not a time", "5", "1"], ReasonCode.SCHEMA_VIOLATION),
    ],
)
def test_bad_rows_become_records_the_validator_quarantines(
    tmp_path: Path, row: list[str], reason: ReasonCode
) -> None:
    good = ["2024-01-02T14:29:59Z", "5", "1"]
    path = stubs.write_csv(tmp_path / "b.csv", ["time", "price", "size"], [good, row, good])
    records = list(read_csv(path, ColumnMap(symbol="ES")))
    assert len(records) == 3  # nothing dropped
    first, bad, last = validate(records)
    assert isinstance(first, CleanTick) and isinstance(last, CleanTick)
    assert isinstance(bad, QuarantineRecord) and bad.reason is reason, bad.detail
    assert bad.source.offset == 1
    assert stubs.quarantined_bytes(bad) == records[1].payload


def test_empty_symbol_is_quarantined(tmp_path: Path) -> None:
    path = stubs.write_csv(
        tmp_path / "y.csv", ["time", "price", "symbol"], [["2024-01-02T14:30:00Z", "5", ""]]
    )
    (verdict,) = validate(read_csv(path))
    assert verdict.reason is ReasonCode.SCHEMA_VIOLATION


def test_empty_time_on_the_first_row_is_quarantined(tmp_path: Path) -> None:
    path = stubs.write_csv(tmp_path / "z.csv", ["time", "price"], [["", "5"]])
    (verdict,) = validate(read_csv(path, ColumnMap(symbol="ES", tz="UTC")))
    assert isinstance(verdict, QuarantineRecord)


# --- the real ES file ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def es_head() -> list:
    if not ES_FILE.exists():
        pytest.skip(f"real ES data file not found at {ES_FILE} (the shared data folder is absent)")
    records = []
    for rec in read_csv(ES_FILE, ColumnMap(symbol="ES", tz="America/Chicago")):
        records.append(rec)
        if len(records) == 500:
            break
    return records


def test_es_file_first_rows_parse_to_utc(es_head: list) -> None:
    ticks = clean_ticks(es_head)
    # first row: "2013-09-01 17:00:00.083,1640.25,8", Chicago on CDT (UTC-5)
    assert ticks[0].ts_event_ns == ns(2013, 9, 1, 22, 0, 0, 83_000)
    assert (ticks[0].price, ticks[0].size, ticks[0].instrument) == (1640.25, 8.0, "ES")
    assert all(t.ts_event_ns % 10**6 == 0 for t in ticks)  # millisecond stamps
    assert [t.ts_event_ns for t in ticks] == sorted(t.ts_event_ns for t in ticks)
    assert all(abs(t.price / 0.25 - round(t.price / 0.25)) < 1e-9 for t in ticks)  # tick size
    assert ticks[-1].ts_event_ns - ticks[0].ts_event_ns < 24 * 3600 * 10**9

"""The columnar file reader gives exactly the ticks the row reader publishes, batch for batch."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stubs import ES_TRADES

from tickwise.streams.engine.batch import ARRAYS, SymbolTable, TickBatch, decode
from tickwise.streams.sources import ColumnMap, SourceError, read_file
from tickwise.streams.sources.batches import LazyRows, read_batches


def concat(batches: Sequence[TickBatch]) -> TickBatch:
    """One batch of several of the same partition, rows in order (to compare readers)."""
    first = batches[0]
    detail: dict[int, str] = {}
    start = 0
    for b in batches:
        detail.update({start + i: d for i, d in b.detail.items()})
        start += len(b)
    arrays = {name: np.concatenate([getattr(b, name) for b in batches]) for name in ARRAYS}
    return TickBatch(
        **arrays,
        payloads=[p for b in batches for p in b.payloads],
        tick_ids=[t for b in batches for t in b.tick_ids],
        topic=first.topic,
        partition=first.partition,
        detail=detail,
    )


def by_rows(path: Path, columns: ColumnMap, limit: int | None = None) -> TickBatch:
    records = list(islice(read_file(path, columns), limit))
    offsets = np.array([r.index for r in records], dtype=np.int64)
    payloads = [r.payload for r in records]
    return decode(payloads, SymbolTable(), f"file:{path.name}", 0, offsets, 16_384)


def by_columns(path: Path, columns: ColumnMap, block_bytes: int = 1 << 22) -> TickBatch:
    batches = list(read_batches(path, columns, SymbolTable(), 16_384, block_bytes))
    return concat(batches)


def read_by_columns(path: Path, columns: ColumnMap) -> bool:
    """Whether every batch came from the columnar path (its rows rendered lazily)."""
    batches = read_batches(path, columns, SymbolTable(), 16_384, 256)
    return all(isinstance(b.payloads, LazyRows) for b in batches)


def assert_same(a: TickBatch, b: TickBatch) -> None:
    for name in ARRAYS:
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert list(a.payloads) == list(b.payloads)
    assert list(a.tick_ids) == list(b.tick_ids)
    assert a.detail == b.detail
    assert a.topic == b.topic


def write(tmp_path: Path, text: str, name: str = "ticks.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_real_es_trades_read_as_the_row_reader_does(tmp_path: Path) -> None:
    if not ES_TRADES.exists():
        pytest.skip(f"real ES trades not found at {ES_TRADES}")
    with gzip.open(ES_TRADES, "rt") as fh:
        head = "".join(islice(fh, 30_001))
    path = write(tmp_path, head, "es.csv")
    columns = ColumnMap(symbol="ES", tz="America/Chicago")
    assert_same(by_columns(path, columns, block_bytes=1 << 16), by_rows(path, columns))
    assert read_by_columns(path, columns)


def test_quotes_with_a_symbol_column(tmp_path: Path) -> None:
    text = "time,symbol,bid,ask,bid_size,ask_size\n"
    text += "1700000000000,EURUSD,1.1,1.1002,5,7\n1700000000001,GBPUSD,1.3,1.2999,1,1\n"
    text += "1700000000002,EURUSD,1.1001,1.1003,0,2\n"
    path = write(tmp_path, text)
    columns = ColumnMap(time_format="epoch_ms")
    assert_same(by_columns(path, columns), by_rows(path, columns))
    assert read_by_columns(path, columns)


def test_quotes_without_size_columns(tmp_path: Path) -> None:
    text = "time,bid,ask\n1700000000000,0.91,0.9102\n1700000000001,0.92,0.9199\n"
    path = write(tmp_path, text)
    columns = ColumnMap(time_format="epoch_ms", symbol="USDCHF")
    batch = by_columns(path, columns)
    assert_same(batch, by_rows(path, columns))
    assert np.isnan(batch.bid_size).all() and read_by_columns(path, columns)


@pytest.mark.parametrize(
    "bad_row",
    [
        "2024-01-02 09:30:00.5,nan,1",  # text the row reader keeps as text
        "2024-01-02 09:30:00.5,,1",  # an empty cell
        "not a time,100,1",
        "2024-01-02T09:30:00+01:00,100,1",  # a zone in the text
        "2024-03-10 02:30:00,100,1",  # a time the zone skips
    ],
)
def test_rows_the_columns_cannot_promise_go_through_the_row_reader(
    tmp_path: Path, bad_row: str
) -> None:
    rows = [f"2024-01-02 09:30:0{i}.25,{100 + i},2" for i in range(6)]
    rows.insert(4, bad_row)
    path = write(tmp_path, "time,price,size\n" + "\n".join(rows) + "\n")
    columns = ColumnMap(symbol="ES", tz="America/New_York")
    assert_same(by_columns(path, columns, block_bytes=64), by_rows(path, columns))


def test_naive_times_without_a_zone_are_refused_in_the_row_readers_words(tmp_path: Path) -> None:
    path = write(tmp_path, "time,price,size\n2024-01-02 09:30:00,100,1\n")
    with pytest.raises(SourceError, match="--tz"):
        list(read_batches(path, ColumnMap(symbol="ES"), SymbolTable(), 16_384))


cells = st.one_of(
    st.sampled_from(["100", "100.25", "-3", "0", "1e3", "nan", "inf", "", "x", " 7", "1,5"]),
    st.floats(min_value=1e-3, max_value=1e6).map(repr),
)
times = st.one_of(
    st.integers(1_600_000_000_000, 1_600_000_100_000).map(str),
    st.sampled_from(["", "1.5", "-1", "abc"]),
)
symbols = st.sampled_from(["ES", "NQ", "", "bad symbol", "CL"])


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(times, symbols, cells, cells), min_size=1, max_size=30), st.integers(40, 400)
)
def test_any_csv_reads_the_same_both_ways(
    tmp_path: Path, rows: list[tuple[str, str, str, str]], block: int
) -> None:
    body = "\n".join(",".join(f'"{c}"' if "," in c else c for c in row) for row in rows)
    path = write(tmp_path, "ts,symbol,price,size\n" + body + "\n")
    columns = ColumnMap(time_format="epoch_ms")
    assert_same(by_columns(path, columns, block_bytes=block), by_rows(path, columns))


def _parquet(tmp_path: Path, **cols: object) -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "ticks.parquet"
    pq.write_table(pa.table(cols), path, row_group_size=3)
    return path


T = 1_704_205_800_000_000  # microseconds


@pytest.mark.parametrize(
    ("time", "columns"),
    [
        ("naive_us", ColumnMap(symbol="ES", tz="America/Chicago")),
        ("utc_ns", ColumnMap(symbol="ES")),
        ("epoch_ms", ColumnMap(symbol="ES", time_format="epoch_ms")),
        ("naive_us", ColumnMap(symbol="ES")),  # no zone: the row reader's refusal
        ("ns_digits", ColumnMap(symbol="ES", tz="UTC")),  # below a microsecond
    ],
)
def test_parquet_reads_as_the_row_reader_does(
    tmp_path: Path, time: str, columns: ColumnMap
) -> None:
    pa = pytest.importorskip("pyarrow")
    n = 10
    stamps = {
        "naive_us": pa.array([T + i * 250 for i in range(n)], pa.timestamp("us")),
        "utc_ns": pa.array([(T + i) * 1_000 for i in range(n)], pa.timestamp("ns", tz="UTC")),
        "epoch_ms": pa.array([T // 1_000 + i for i in range(n)], pa.int64()),
        "ns_digits": pa.array([T * 1_000 + i for i in range(n)], pa.timestamp("ns")),
    }
    price = pa.array([4700.25 + i for i in range(n)], pa.float64())
    path = _parquet(tmp_path, time=stamps[time], price=price, size=pa.array(range(1, n + 1)))
    if time == "naive_us" and columns.tz is None:
        with pytest.raises(SourceError, match="--tz"):
            by_columns(path, columns)
        return
    assert_same(by_columns(path, columns, block_bytes=120), by_rows(path, columns))
    assert read_by_columns(path, columns) == (time != "ns_digits")


def test_parquet_with_text_prices_goes_through_the_row_reader(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    path = _parquet(
        tmp_path,
        time=pa.array([1, 2, 3], pa.int64()),
        symbol=pa.array(["ES", "NQ", "ES"]),
        price=pa.array(["100", "x", "101"]),
    )
    columns = ColumnMap(time_format="epoch_s")
    assert_same(by_columns(path, columns), by_rows(path, columns))


def test_json_lines_go_through_the_row_reader_and_the_decoder(tmp_path: Path) -> None:
    lines = [
        '{"time": 1700000000, "symbol": "ES", "price": 100.5, "size": 2}',
        "not json",
        '{"time": 1700000001, "symbol": "ES", "price": -1, "size": 2}',
    ]
    path = write(tmp_path, "\n".join(lines) + "\n", "ticks.jsonl")
    columns = ColumnMap(time_format="epoch_s")
    batch = by_columns(path, columns)
    assert_same(batch, by_rows(path, columns))
    assert sorted(batch.detail) == [1]  # the line that is not JSON is refused while decoding


@settings(max_examples=60, deadline=None)
@given(
    bounds=st.tuples(st.integers(0, 50), st.integers(0, 50)).map(sorted),
    index=st.integers(-120, 120),
    cut=st.tuples(st.none() | st.integers(-60, 60), st.none() | st.integers(-60, 60)),
)
def test_lazy_rows_index_as_a_list_does(
    bounds: list[int], index: int, cut: tuple[int | None, int | None]
) -> None:
    start, stop = bounds
    rows = LazyRows(lambda i: f"row-{i}", start, stop)
    made = [f"row-{i}" for i in range(start, stop)]
    if -len(made) <= index < len(made):
        assert rows[index] == made[index]
    else:
        with pytest.raises(IndexError):
            rows[index]
    part = rows[slice(*cut)]
    assert list(part) == made[slice(*cut)]
    if len(part):
        assert part[0] == made[slice(*cut)][0] and part[-1] == made[slice(*cut)][-1]

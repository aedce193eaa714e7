"""File adapters: CSV, JSON Lines and Parquet of the same ticks publish the same messages."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stubs import write_csv

from tests.oracle.validator import Validator
from tickwise.schemas.quarantine import ReasonCode
from tickwise.schemas.ticks import QuoteTick, SourceRef
from tickwise.streams.config import ValidationConfig
from tickwise.streams.sources import ColumnMap, RawRecord, read_file, sorted_by_event_time

QUOTES = ["time", "symbol", "bid", "ask", "bid_size", "ask_size"]
rows = st.lists(
    st.tuples(
        st.integers(1_600_000_000_000, 1_700_000_000_000),  # epoch ms
        st.sampled_from(["ES", "NQ"]),
        st.floats(1.0, 1e5),
        st.floats(1.0, 1e5),
        st.integers(0, 100),
        st.integers(0, 100),
    ),
    min_size=1,
    max_size=30,
)


def without_id(records: list[RawRecord]) -> list[dict[str, object]]:
    out = []
    for r in records:
        msg = json.loads(r.payload)
        msg.pop("tick_id")
        out.append(msg)
    return out


def write_all(tmp: Path, data: list[tuple], header: list[str] = QUOTES) -> list[Path]:
    csv_path = write_csv(tmp / "q.csv.gz", header, data)
    jsonl = tmp / "q.jsonl"
    jsonl.write_text("".join(json.dumps(dict(zip(header, r, strict=True))) + "\n" for r in data))
    parquet = tmp / "q.parquet"
    table = pa.table({name: [r[i] for r in data] for i, name in enumerate(header)})
    pq.write_table(table, parquet)
    return [csv_path, jsonl, parquet]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows)
def test_every_format_gives_the_same_messages(tmp_path: Path, data: list[tuple]) -> None:
    columns = ColumnMap(time_format="epoch_ms")
    outputs = [without_id(list(read_file(p, columns))) for p in write_all(tmp_path, data)]
    assert outputs[0] == outputs[1] == outputs[2]
    assert [m["ts_event_ns"] for m in outputs[0]] == [r[0] * 10**6 for r in data]


def test_a_broken_json_line_is_published_and_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    good = {"time": "2024-01-02T14:30:00+00:00", "symbol": "ES", "price": 1.5, "size": 2}
    path.write_text(json.dumps(good) + "\n{not json\n" + json.dumps(good | {"price": None}) + "\n")
    records = list(read_file(path))
    v = Validator(ValidationConfig())
    reasons = [
        getattr(v.on_raw(r.payload, SourceRef(topic="f", partition=0, offset=i))[0], "reason", None)
        for i, r in enumerate(records)
    ]
    assert reasons == [None, ReasonCode.MALFORMED_JSON, ReasonCode.INVALID_PRICE]


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=40))
def test_sort_puts_an_unsorted_file_in_event_time_order(times: list[int]) -> None:
    records = [RawRecord("ES", b"{}", "f", i, t) for i, t in enumerate(times)]
    assert [r.ts_event_ns for r in sorted_by_event_time(iter(records))] == sorted(times)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows, st.booleans())
def test_every_format_reads_quotes_without_sizes_the_same(
    tmp_path: Path, data: list[tuple], null_sizes: bool
) -> None:
    """No size columns, or sizes that are empty (CSV) or null (JSON Lines, Parquet), are quotes
    without sizes: the same messages from every format, with no size fields."""
    data = [(*r[:4], None, None) if null_sizes else r[:4] for r in data]
    header = QUOTES if null_sizes else QUOTES[:4]
    paths = write_all(tmp_path, data, header)
    outputs = [without_id(list(read_file(p, ColumnMap(time_format="epoch_ms")))) for p in paths]
    assert outputs[0] == outputs[1] == outputs[2]
    for msg, row in zip(outputs[0], data, strict=True):
        tick = QuoteTick.model_validate_json(json.dumps(msg | {"tick_id": "x"}))
        assert (tick.bid, tick.ask, tick.bid_size, tick.ask_size) == (row[2], row[3], None, None)

"""File formats beyond CSV: JSON Lines and Parquet, read into the same ``RawRecord``s.

Each format is turned into a header and rows of text, then goes through the CSV reader's column
mapping and time parsing (``streams.sources.table_layout`` and ``_row_record``), so a column,
a time format or a zone means the same thing in every format. A JSON line that cannot be read is
still published with its text, so the validator quarantines it with a reason.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from streams.sources import (
    ColumnMap,
    RawRecord,
    SourceError,
    TimeParser,
    _row_record,
    read_csv,
    table_layout,
)

DEFAULT_COLUMNS = ColumnMap()


def _text(value: Any) -> str:
    """One cell as the text a CSV would hold (None as empty, datetimes in ISO 8601)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float | int | str):
        return str(value)
    return json.dumps(value, default=str)


def read_jsonl(path: str | Path, columns: ColumnMap = DEFAULT_COLUMNS) -> Iterator[RawRecord]:
    """Stream a JSON Lines file (optionally .gz): one object per line, keys as columns.

    The first object's keys are the header; later objects may omit keys (empty cells).
    """
    path = Path(path)
    parse_time = TimeParser(columns.time_format, columns.tz)
    opener = gzip.open if path.suffix == ".gz" else open
    layout: tuple[list[str], dict[str, int], tuple[str, ...], bool] | None = None
    with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as fh:  # type: ignore[operator]
        for row_no, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                key = columns.symbol or ""
                payload = line.rstrip("\n").encode("utf-8", "surrogateescape")
                yield RawRecord(key, payload, path.name, row_no)
                continue
            if layout is None:
                header = list(obj)
                layout = (header, *table_layout(header, columns))
            header, idx, value_fields, is_quote = layout
            row = [_text(obj.get(h)) for h in header]
            yield _row_record(
                row, idx, value_fields, is_quote, columns.symbol, parse_time, path.name, row_no
            )


def read_parquet(path: str | Path, columns: ColumnMap = DEFAULT_COLUMNS) -> Iterator[RawRecord]:
    """Stream a Parquet file batch by batch (needs ``pip install 'tickwise[parquet]'``).

    Timestamp columns are read as datetimes (microsecond precision); store nanosecond times as
    int64 with ``--time-format epoch_ns``. Naive timestamps need ``--tz`` as in every format.
    """
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise SourceError("Parquet needs pyarrow: pip install 'tickwise[parquet]'") from exc
    path = Path(path)
    parse_time = TimeParser(columns.time_format, columns.tz)
    pf = pq.ParquetFile(path)
    header = list(pf.schema_arrow.names)
    idx, value_fields, is_quote = table_layout(header, columns)
    row_no = 0
    for batch in pf.iter_batches(batch_size=65_536):
        cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for values in zip(*cols, strict=True):
            row = [_text(v) for v in values]
            yield _row_record(
                row, idx, value_fields, is_quote, columns.symbol, parse_time, path.name, row_no
            )
            row_no += 1


def read_file(path: str | Path, columns: ColumnMap = DEFAULT_COLUMNS) -> Iterator[RawRecord]:
    """Pick the reader by file name: .parquet, .jsonl/.ndjson (.gz), else CSV (.gz).

    Examples
    --------
    >>> read_file.__name__
    'read_file'
    """
    name = Path(path).name.lower()
    if name.endswith((".parquet", ".pq")):
        return read_parquet(path, columns)
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return read_jsonl(path, columns)
    return read_csv(path, columns)


def sorted_by_event_time(records: Iterator[RawRecord]) -> list[RawRecord]:
    """All records in event-time order (stable; unreadable times keep their place at the end).

    For recorded files that are not in time order; it holds the whole file in memory.
    """
    return sorted(records, key=lambda r: (r.ts_event_ns is None, r.ts_event_ns or 0))

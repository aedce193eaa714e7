"""A recorded file of any supported format, picked by its name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tickwise.streams.sources.csvfile import read_csv
from tickwise.streams.sources.jsonl import read_jsonl
from tickwise.streams.sources.parquet import read_parquet
from tickwise.streams.sources.records import DEFAULT_COLUMNS, ColumnMap, RawRecord


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

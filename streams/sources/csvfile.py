"""CSV and CSV.gz files of trades (price, size) or quotes (bid, ask, optional sizes)."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path

from tickwise.streams.sources.records import (
    DEFAULT_COLUMNS,
    ColumnMap,
    RawRecord,
    SourceError,
    TimeParser,
    row_record,
    table_layout,
)


def _open_text(path: Path) -> Iterable[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="")
    return open(path, newline="")


def read_csv(path: str | Path, columns: ColumnMap = DEFAULT_COLUMNS) -> Iterator[RawRecord]:
    """Stream a CSV or CSV.gz of trades (price, size) or quotes (bid, ask, optional sizes)."""
    path = Path(path)
    parse_time = TimeParser(columns.time_format, columns.tz)
    with _open_text(path) as fh:  # type: ignore[attr-defined]
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise SourceError(f"{path} is empty or has no header row")
        idx, value_fields, is_quote = table_layout(header, columns)
        origin = path.name
        for row_no, row in enumerate(reader):
            yield row_record(
                row, idx, value_fields, is_quote, columns.symbol, parse_time, origin, row_no
            )

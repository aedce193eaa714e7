"""Parquet files, read batch by batch (needs ``pip install 'tickwise[parquet]'``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tickwise.streams.sources.records import (
    DEFAULT_COLUMNS,
    ColumnMap,
    RawRecord,
    SourceError,
    TimeParser,
    cell_text,
    row_record,
    table_layout,
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
            row = [cell_text(v) for v in values]
            yield row_record(
                row, idx, value_fields, is_quote, columns.symbol, parse_time, path.name, row_no
            )
            row_no += 1

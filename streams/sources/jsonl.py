"""JSON Lines files (optionally .gz): one object per line, keys as columns.

A line that cannot be read is still published with its text, so the validator quarantines it
with a reason.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from tickwise.streams.sources.records import (
    DEFAULT_COLUMNS,
    ColumnMap,
    RawRecord,
    TimeParser,
    cell_text,
    row_record,
    table_layout,
)


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
            row = [cell_text(obj.get(h)) for h in header]
            yield row_record(
                row, idx, value_fields, is_quote, columns.symbol, parse_time, path.name, row_no
            )

"""Recorded files straight into tick batches, with no per-row JSON.

pyarrow reads a CSV in blocks into typed columns; each block becomes a ``TickBatch`` whose rows
are exactly the ticks ``streams.sources.csvfile.read_csv`` would have published: the same tick ids
(``<file>:<row>``), event times, values and, for a row the validator refuses, the same raw
bytes (rendered only for that row). Whatever the columnar path cannot promise to read the
same way (a zone gap, an unparsable cell, nanosecond text a datetime cannot hold, a strptime
pattern) sends the rest of the file through the row reader and the bulk decoder, from the
first row not yet delivered, so the batches are the same ticks either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, overload

import numpy as np
from numba import njit
from pydantic_core import to_json

from tickwise.streams.engine.batch import (
    FNV_OFFSET,
    FNV_PRIME,
    INSTRUMENT_RE,
    KIND_QUOTE,
    KIND_TRADE,
    SymbolTable,
    TickBatch,
    decode,
    mid,
)
from tickwise.streams.sources.csvfile import read_csv
from tickwise.streams.sources.jsonl import read_jsonl
from tickwise.streams.sources.parquet import read_parquet
from tickwise.streams.sources.records import EPOCH_UNITS, ColumnMap, SourceError, table_layout

# About 15,000 rows of a trade file per batch. Why not more: a first run faults in every page
# of the heap its batches in flight reach (a replay holds several: one read ahead, one in the
# engine, one being written), and in this VM a page fault's cost swings with the host, from
# about 1 to over 10 us. On 200,000 ES trades, three threads: 1 MiB blocks, 21,000 faults,
# 660,000 to 980,000 ticks/s over runs; 512 KiB, 11,000 faults, 860,000 to 1,000,000 (4 MiB
# on one thread once took 25,000 faults and ran at 60 to 80% of later runs). Below this the
# per-batch Python work starts to show (256 KiB: no faster, and 8,000 faults).
BLOCK_BYTES = 1 << 19


class LazyRows(Sequence[Any]):
    """Rows ``start:stop`` of something made on demand (raw bytes, tick ids): only refused
    rows and decisions ever ask."""

    def __init__(self, make: Callable[[int], Any], start: int, stop: int) -> None:
        self.make, self.start, self.stop = make, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> LazyRows: ...
    def __getitem__(self, i: int | slice) -> Any:
        if type(i) is int and 0 <= i < self.stop - self.start:  # what rendering asks, first
            return self.make(self.start + i)
        if isinstance(i, slice):
            start, stop, _ = i.indices(len(self))
            return LazyRows(self.make, self.start + start, self.start + max(start, stop))
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.make(self.start + (i % len(self)))


@njit(cache=True, nogil=True)  # a replay's reading thread runs it beside the engine
def _row_ids(prefix: np.ndarray, first: int, n: int) -> np.ndarray:  # pragma: no cover
    """FNV-1a of ``<prefix><row>`` for rows first..first+n-1 (``batch.fnv1a`` of the ids)."""
    h0 = FNV_OFFSET
    for b in prefix:
        h0 = (h0 ^ np.uint64(b)) * FNV_PRIME
    out = np.empty(n, np.uint64)
    digits = np.empty(20, np.uint8)
    for i in range(n):
        row = first + i
        d = 0
        while True:
            digits[d] = 48 + row % 10
            row //= 10
            d += 1
            if row == 0:
                break
        h = h0
        for j in range(d - 1, -1, -1):
            h = (h ^ np.uint64(digits[j])) * FNV_PRIME
        out[i] = h
    return out


class _Fallback(Exception):
    """The columnar path cannot promise the row reader's reading of this block."""


def read_batches(
    path: str | Path,
    columns: ColumnMap,
    symbols: SymbolTable,
    max_message_bytes: int,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[TickBatch]:
    """The file's ticks as batches, in file order: CSV and Parquet by blocks of columns, JSON
    Lines (and whatever the columns cannot read the same way) by rows and the bulk decoder."""
    import pyarrow as pa

    path = Path(path)
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        blocks, rows = _parquet_blocks, read_parquet
    elif name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        blocks, rows = None, read_jsonl
    else:
        blocks, rows = _csv_blocks, read_csv
    origin = path.name
    delivered = 0
    if blocks is not None:
        try:
            for block, layout in blocks(path, columns, block_bytes):
                batch = _block(block, layout, origin, delivered, symbols)
                delivered += len(batch)
                yield batch
            return
        except (_Fallback, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    records = islice(rows(path, columns), delivered, None)
    while chunk := list(islice(records, 65_536)):
        payloads = [r.payload for r in chunk]
        offsets = np.array([r.index for r in chunk], dtype=np.int64)
        yield decode(payloads, symbols, f"file:{origin}", 0, offsets, max_message_bytes)


def _csv_blocks(path: Path, columns: ColumnMap, block_bytes: int) -> Iterator[tuple[Any, _Layout]]:
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=block_bytes),
        parse_options=pcsv.ParseOptions(ignore_empty_lines=False),
        convert_options=_convert_options(path, columns),
    )
    layout = _Layout(reader.schema.names, columns)
    for block in reader:
        yield block, layout


def _parquet_blocks(
    path: Path, columns: ColumnMap, block_bytes: int
) -> Iterator[tuple[Any, _Layout]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise SourceError("Parquet needs pyarrow: pip install 'tickwise[parquet]'") from exc
    pf = pq.ParquetFile(path)
    layout = _Layout(list(pf.schema_arrow.names), columns)
    rows = max(1, block_bytes // 40)
    for block in pf.iter_batches(batch_size=rows):
        yield block, layout


def _convert_options(path: Path, columns: ColumnMap) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if columns.tz is None and columns.time_format == "auto":
        raise _Fallback  # naive times need a zone: the row reader says so in its own words
    if columns.time_format != "auto" and columns.time_format not in EPOCH_UNITS:
        raise _Fallback  # a strptime pattern
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
        import csv

        header = next(csv.reader(fh), None)
    if not header:
        raise SourceError(f"{path} is empty or has no header row")
    layout = _Layout(header, columns)
    types: dict[str, Any] = {name: pa.float64() for name in layout.value_names}
    time_type = pa.int64() if columns.time_format in EPOCH_UNITS else pa.timestamp("ns")
    types[layout.time_name] = time_type
    if layout.symbol_name is not None:
        types[layout.symbol_name] = pa.string()
    return pcsv.ConvertOptions(
        column_types=types,
        include_columns=list(types),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )


class _Layout:
    """Which file column holds which tick field (``sources.table_layout``'s reading)."""

    def __init__(self, header: list[str], columns: ColumnMap) -> None:
        idx, value_fields, is_quote = table_layout(header, columns)
        self.columns = columns
        self.is_quote = is_quote
        self.value_fields = value_fields
        self.field_name = {f: header[i] for f, i in idx.items()}
        self.time_name = self.field_name["time"]
        self.symbol_name = None if columns.symbol is not None else self.field_name["symbol"]
        self.value_names = [self.field_name[f] for f in value_fields if f in self.field_name]


def _block(block: Any, layout: _Layout, origin: str, first: int, symbols: SymbolTable) -> TickBatch:
    """The block as a batch, its symbols registered last: a block that falls back leaves the
    symbol table as it was."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = block.num_rows
    if any(block.column(name).null_count for name in block.schema.names):
        raise _Fallback  # an empty cell or line: the row reader's text decides
    columns = layout.columns
    ts = _times(block.column(layout.time_name), columns)
    if np.any(ts < 0):
        raise _Fallback
    values: dict[str, np.ndarray] = {}
    for field in ("price", "size", "bid", "ask", "bid_size", "ask_size"):
        name = layout.field_name.get(field) if field in layout.value_fields else None
        if name is not None:
            column = block.column(name)
            if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
                raise _Fallback  # text cells: the row reader's reading decides
            col = column.cast(pa.float64()).to_numpy()
            if not np.all(np.isfinite(col)):
                raise _Fallback  # 'nan', 'inf': text the row reader keeps as text
            values[field] = col
        else:
            default = 1.0 if field == "size" and not layout.is_quote else np.nan
            values[field] = np.full(n, default)
    if layout.symbol_name is None:
        names = [columns.symbol or ""]
        codes = np.zeros(n, np.int32)
    else:
        symbol = block.column(layout.symbol_name)
        if not pa.types.is_string(symbol.type):
            raise _Fallback
        encoded = pc.dictionary_encode(symbol)
        names = encoded.dictionary.to_pylist()
        codes = encoded.indices.to_numpy().astype(np.int32)
    if not all(INSTRUMENT_RE.fullmatch(s) is not None and len(s) <= 64 for s in names):
        raise _Fallback  # a symbol the contract refuses
    # registered only now, so a block that falls back leaves the symbol table as it was
    instrument = np.array([symbols.index(s) for s in names], np.int32)[codes]
    kind = np.full(n, KIND_QUOTE if layout.is_quote else KIND_TRADE, np.uint8)
    price = values["price"]
    if layout.is_quote:
        price = mid(values["bid"], values["ask"])
    prefix = np.frombuffer(f"{origin}:".encode(), np.uint8)

    def tick_id(row: int) -> str:
        return f"{origin}:{row}"

    def render(i: int) -> bytes:
        msg: dict[str, object] = {
            "kind": "quote" if layout.is_quote else "trade",
            "tick_id": tick_id(first + i),
            "instrument": symbols.names[instrument[i]],
            "ts_event_ns": int(ts[i]),
        }
        for f in layout.value_fields:
            v = values[f][i]
            if not np.isnan(v):  # a quote without sizes leaves them out
                msg[f] = float(v)
        return to_json(msg)

    batch = TickBatch(
        instrument=instrument,
        kind=kind,
        ts=ts,
        price=price,
        size=values["size"],
        bid=values["bid"],
        ask=values["ask"],
        bid_size=values["bid_size"],
        ask_size=values["ask_size"],
        id_key=_row_ids(prefix, first, n),
        seq_key=np.full(n, FNV_OFFSET, np.uint64),  # fnv1a("") as the decoder gives
        has_seq=np.zeros(n, np.bool_),
        reinjected=np.zeros(n, np.bool_),
        verdict=np.zeros(n, np.uint8),
        payloads=LazyRows(lambda i: render(i - first), first, first + n),
        tick_ids=LazyRows(tick_id, first, first + n),
        topic=f"file:{origin}",
        partition=0,
        offsets=np.arange(first, first + n, dtype=np.int64),
    )
    return batch


def _times(time: Any, columns: ColumnMap) -> np.ndarray:
    """Event times in ns, as ``sources.TimeParser`` reads the column's cells."""
    import pyarrow as pa
    import pyarrow.compute as pc

    unit = EPOCH_UNITS.get(columns.time_format)
    if unit is not None:
        if not pa.types.is_integer(time.type):
            raise _Fallback  # fractional epochs keep every digit in the row reader
        raw = time.cast(pa.int64()).to_numpy()
        if np.any(np.abs(raw) > (2**63 - 1) // unit):
            raise _Fallback
        return raw * unit
    if columns.time_format != "auto" or not pa.types.is_timestamp(time.type):
        raise _Fallback
    if time.type.tz is None:
        if columns.tz is None:
            raise _Fallback  # naive: the row reader asks for --tz in its own words
        time = pc.assume_timezone(
            time, timezone=columns.tz, ambiguous="earliest", nonexistent="raise"
        )
    ts = time.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
    if np.any(ts % 1_000):
        raise _Fallback  # below a microsecond: more than a datetime holds
    return ts

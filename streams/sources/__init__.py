"""Feed adapters that need no broker: recorded files and the synthetic generator.

Both produce ``RawRecord``s: the exact bytes a feed puts on ``ticks.raw``, keyed by instrument.
``tickwise feed`` publishes them; ``tickwise backtest`` validates them in-process. Because the
backtest starts from the same bytes, a row the validator would quarantine live is quarantined
in replay too.

One module per format (``csvfile``, ``jsonl``, ``parquet``) over the shared column mapping and
time parsing in ``records``; ``files.read_file`` picks the format by name, ``generator`` makes
the synthetic stream, and ``options`` holds the command-line options that choose between them.
``batches`` reads files straight into the columnar engine's tick batches; it loads numpy and
numba, so it is imported by name rather than from here.
"""

from tickwise.streams.sources.csvfile import read_csv
from tickwise.streams.sources.files import read_file, sorted_by_event_time
from tickwise.streams.sources.generator import (
    BAD_KINDS,
    REGIMES,
    SYNTHETIC_INSTRUMENTS,
    synthetic,
)
from tickwise.streams.sources.jsonl import read_jsonl
from tickwise.streams.sources.options import add_source_arguments, open_sources
from tickwise.streams.sources.parquet import read_parquet
from tickwise.streams.sources.records import (
    EPOCH_UNITS,
    ColumnMap,
    RawRecord,
    SourceError,
    TimeParser,
    table_layout,
)

__all__ = [
    "BAD_KINDS",
    "EPOCH_UNITS",
    "REGIMES",
    "SYNTHETIC_INSTRUMENTS",
    "ColumnMap",
    "RawRecord",
    "SourceError",
    "TimeParser",
    "add_source_arguments",
    "open_sources",
    "read_csv",
    "read_file",
    "read_jsonl",
    "read_parquet",
    "sorted_by_event_time",
    "synthetic",
    "table_layout",
]

"""Replay through the columnar engine: a recorded file, a batch at a time, behind the file
reader (``streams.sources.batches``), which the engine itself must not import."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from tickwise.schemas.decisions import ControlCommand
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.engine.run import BatchOutput, Engine
from tickwise.streams.sources import ColumnMap
from tickwise.streams.sources.batches import read_batches


def run_file(
    path: str | Path,
    columns: ColumnMap,
    config: TickwiseConfig,
    commands: Iterable[ControlCommand] = (),
) -> Iterator[BatchOutput]:
    """A whole file through the engine, a batch at a time, then the end-of-input summaries."""
    engine = Engine(config, commands=commands)
    max_bytes = config.validation.max_message_bytes
    for batch in read_batches(path, columns, engine.symbols, max_bytes):
        yield engine.run(batch)
    yield BatchOutput({}, engine.finish())

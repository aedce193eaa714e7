"""Checkpoints: a partition's whole pipeline state, saved beside the raw offset it reflects.

A checkpoint is a file, not a Kafka message: a forest model pickles to a hundred megabytes. It is
written to a temporary name and renamed, so a crash leaves the previous checkpoint intact. Point
``checkpoint_dir`` at storage every worker can reach and a partition that moves to another worker
resumes from it; without one, the new owner rebuilds the state by replaying the partition.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Checkpoint:
    """State after processing every raw message up to and including ``offset``."""

    offset: int
    state: Any


class CheckpointStore:
    """One checkpoint file per (raw topic, partition) under a directory.

    Examples
    --------
    >>> import tempfile
    >>> store = CheckpointStore(tempfile.mkdtemp())
    >>> store.load("ticks.raw", 0) is None
    True
    >>> store.save("ticks.raw", 0, Checkpoint(offset=41, state={"ES": 1}))
    >>> store.load("ticks.raw", 0)
    Checkpoint(offset=41, state={'ES': 1})
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, topic: str, partition: int) -> Path:
        return self.directory / f"{topic}-{partition}.ckpt"

    def save(self, topic: str, partition: int, checkpoint: Checkpoint) -> None:
        """Replace the partition's checkpoint atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".ckpt-")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(checkpoint, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(topic, partition))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        """The partition's latest checkpoint, or None if it has none."""
        path = self._path(topic, partition)
        if not path.exists():
            return None
        with path.open("rb") as fh:
            try:
                checkpoint = pickle.load(fh)  # our own files, written by save()
            except Exception as exc:  # truncated, overwritten or from another program
                raise ValueError(f"{path} is not a readable tickwise checkpoint: {exc!r}") from exc
        if not isinstance(checkpoint, Checkpoint):
            raise ValueError(f"{path} is not a tickwise checkpoint")
        return checkpoint

"""One raw partition's engine: rebuilt from its checkpoint and the log, then fed batches.

Why: exactly-once is Kafka's job (``streams.live.transport`` commits each batch's outputs and
its input offsets in one transaction), but the engine's state is ours. The state that goes
with a committed offset ``C`` is the state after every raw message before ``C``; a new owner
rebuilds it deterministically:

* load the partition's checkpoint (the pickled engine and the last raw offset it reflects);
* replay the raw messages from there up to ``C`` *without emitting* (their outputs are already
  committed), through the one range reader, which fails loud when the log no longer holds them;
* continue from ``C``.

What decides is the partition's state (``streams.live.state``): the columnar engine, a whole
batch of raw messages at a time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tickwise.schemas.decisions import ControlCommand
from tickwise.schemas.quarantine import REINJECTED_HEADER
from tickwise.streams.checkpoint import Checkpoint, CheckpointStore
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.live.reader import RangeReader, RangeReadError
from tickwise.streams.live.state import EngineState, Output, same_layout
from tickwise.streams.operators.validation import QualityMonitor

log = logging.getLogger(__name__)


class RawMessage(Protocol):
    """What a raw record offers: a confluent-kafka ``Message`` from a consumer or a range read."""

    def offset(self) -> int | None: ...

    def value(self) -> bytes | None: ...

    def headers(self) -> Any: ...


@dataclass(frozen=True)
class Recovery:
    """What a runner did to take its partition: the INFO line an operator reads after a fault."""

    partition: int
    checkpoint: int  # last offset the checkpoint reflects (-1: none used)
    replayed_from: int
    committed: int  # the group's committed offset: the first raw offset not yet handled
    replayed: int  # messages replayed without emitting

    def __str__(self) -> str:
        used = (
            f"checkpoint at offset {self.checkpoint}" if self.checkpoint >= 0 else "no checkpoint"
        )
        return (
            f"partition {self.partition}: {used}; replayed offsets [{self.replayed_from}, "
            f"{self.committed}) without emitting ({self.replayed} messages); committed offset "
            f"{self.committed}"
        )


def is_reinjected(headers: Any) -> bool:
    """Whether a raw message carries the re-injection header (list of pairs or mapping)."""
    if not headers:
        return False
    keys = headers.keys() if isinstance(headers, dict) else (k for k, _ in headers)
    return any(k == REINJECTED_HEADER for k in keys)


def retained_from(bootstrap: str, topic: str, partition: int, start: int) -> None:
    """Raise ``RangeReadError`` unless the log still holds ``start`` (retention, delete-records).

    The consumer would otherwise be reset to wherever the log now starts, and the partition
    would go on from a state that skipped the missing ticks.
    """
    with RangeReader(bootstrap) as reader:
        low, high = reader.watermarks(topic, partition)
    if start < low:
        raise RangeReadError(
            f"{topic} partition {partition}: offsets {start} to {low - 1} are no longer retained "
            f"(the partition starts at {low}); cannot continue from offset {start}"
        )
    if start > high:
        raise RangeReadError(
            f"{topic} partition {partition}: the committed offset {start} is past the end of the "
            f"partition ({high}); was the topic recreated?"
        )


class PartitionRunner:
    """The state, checkpoints and recovery of one ``ticks.raw`` partition."""

    def __init__(
        self,
        config: TickwiseConfig,
        bootstrap: str,
        raw_topic: str,
        partition: int,
        store: CheckpointStore,
        observe: Callable[[Output], None] | None = None,
        quality: QualityMonitor | None = None,
    ) -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.raw_topic = raw_topic
        self.partition = partition
        self.store = store
        self.observe = observe  # live-only figures (counters); never changes an output
        self.quality = quality  # live-only data-quality figures
        self.state = EngineState(config)
        self.next_offset = 0  # first raw offset whose outputs are not committed
        self._checkpointed = -1
        self._last_checkpoint = time.monotonic()

    def recover(self, committed: int, progress: Callable[[], None] | None = None) -> Recovery:
        """Rebuild the state that goes with the committed offset; emit nothing.

        ``progress`` is called once a replayed message (a long replay is not a hung worker).
        Raises ``RangeReadError`` when the log no longer holds what must be replayed, and
        ``CheckpointRefused`` for a checkpoint whose signature does not hold.
        """
        checkpoint = self.store.load(self.raw_topic, self.partition)
        self.state = EngineState(self.config)
        start = 0
        if checkpoint is not None:
            if checkpoint.offset >= committed:
                raise RangeReadError(
                    f"{self.raw_topic} partition {self.partition}: the checkpoint reflects offset "
                    f"{checkpoint.offset}, past the committed offset {committed}; it belongs to "
                    "another deployment of this topic (remove it to rebuild from the log)"
                )
            if not same_layout(checkpoint.state, self.state):
                raise RangeReadError(
                    f"{self.raw_topic} partition {self.partition}: the checkpoint holds state "
                    "laid out by another version of tickwise; remove the checkpoint to rebuild "
                    "from the log (or run the version that wrote it)"
                )
            self.state = checkpoint.state
            start = checkpoint.offset + 1
        retained_from(self.bootstrap, self.raw_topic, self.partition, start)
        replayed = 0
        if committed > start:
            with RangeReader(self.bootstrap) as reader:
                pending: list[RawMessage] = []
                for _, msg in reader.read(self.raw_topic, {self.partition: (start, committed)}):
                    if msg is not None:
                        pending.append(msg)
                        replayed += 1
                    if len(pending) >= EngineState.chunk:
                        self._decide(pending)
                        pending = []
                    if progress is not None:
                        progress()
                self._decide(pending)
        # a worker restarted under a new config rebuilt its state under the checkpoint's
        self.state = self.state.reconfigured(self.config)
        self.next_offset = committed
        self._checkpointed = checkpoint.offset if checkpoint is not None else -1
        self._last_checkpoint = time.monotonic()
        recovery = Recovery(
            self.partition,
            checkpoint.offset if checkpoint is not None else -1,
            start,
            committed,
            replayed,
        )
        log.info("%s: %s", self.raw_topic, recovery)
        return recovery

    @property
    def chunk(self) -> int:
        """Raw messages worth deciding in one call: a consume call's batch, whole."""
        return EngineState.chunk

    def process(self, batch: Sequence[RawMessage]) -> list[Output]:
        """Every output of a batch of this partition's raw messages, in order."""
        outputs = self._decide(batch, self.quality)
        if self.observe is not None:
            for out in outputs:
                self.observe(out)
        return outputs

    def _decide(
        self, batch: Sequence[RawMessage], quality: QualityMonitor | None = None
    ) -> list[Output]:
        if not batch:
            return []
        offsets = np.fromiter((m.offset() for m in batch), np.int64, len(batch))
        flags = np.fromiter((is_reinjected(m.headers()) for m in batch), np.bool_, len(batch))
        raws = [m.value() or b"" for m in batch]
        return self.state.process(raws, self.raw_topic, self.partition, offsets, flags, quality)

    def on_control(self, command: ControlCommand) -> bool:
        """Apply an operator command here; False if the state had it already.
        ``state.CommandRefused`` for one it cannot carry out."""
        return self.state.on_control(command)

    def committed(self, next_offset: int) -> None:
        """The outputs of every offset before ``next_offset`` are committed."""
        self.next_offset = next_offset

    def checkpoint(self, interval_s: float, force: bool = False) -> bool:
        """Save the state that goes with the committed offset if due (or forced); True if saved.

        Only ever called with no transaction open, so the checkpoint never runs ahead of the
        committed offset.
        """
        due = time.monotonic() - self._last_checkpoint >= interval_s
        last = self.next_offset - 1
        if not (force or (due and last > self._checkpointed)):
            return False
        self.store.save(self.raw_topic, self.partition, Checkpoint(last, self.state))
        self._checkpointed = last
        self._last_checkpoint = time.monotonic()
        return True


def default_checkpoint_dir(app_id: str) -> Path:
    """Where checkpoints go when the config names no directory."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tickwise" / "checkpoints" / app_id

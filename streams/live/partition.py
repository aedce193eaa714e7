"""One raw partition, processed exactly once: transactions, lineage and checkpoints.

Why: faust is at-least-once, and after a crash a redelivered tick would be validated and decided
again (a duplicate downstream) by a pipeline whose state is gone (different decisions). Here each
assigned partition of ``ticks.raw`` gets

* its own ``Pipeline`` (all state is per instrument, and an instrument lives on one partition);
* its own transactional producer (``transactional.id`` names the partition, so a new owner
  fences a zombie). The outputs of a batch are committed atomically and go to the same partition
  number of every output topic;
* lineage: every clean tick or quarantine record carries its raw offset, so the committed tails
  of ``ticks.clean`` and ``ticks.quarantine`` say exactly which raw offset was handled last;
* checkpoints: the pickled pipeline with the raw offset it reflects, saved now and then.

On assignment the runner loads the checkpoint, replays the raw messages from there up to the
last handled offset *without emitting* (the pipeline is deterministic, so this rebuilds exactly
the state the dead worker had), and from then on skips anything already handled. Nothing is
lost, nothing is emitted twice, and the decisions are those of an uninterrupted run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from pydantic import ValidationError

from schemas.decisions import ControlCommand
from schemas.quarantine import REINJECTED_HEADER, QuarantineRecord
from schemas.ticks import CleanTick, SourceRef
from schemas.topics import TICKS_CLEAN, TICKS_QUARANTINE, Topics
from streams.checkpoint import Checkpoint, CheckpointStore
from streams.config import TickwiseConfig
from streams.live.reader import RangeReader, read_offsets
from streams.live.security import env_client_config
from streams.pipeline import Output, Pipeline

log = logging.getLogger(__name__)

TAIL_OFFSETS = 5_000  # per lineage partition; a committed batch is far smaller
# how often a transaction looks for a waiting operator command (see PartitionRunner.process)
CONTROL_CHECK_EVERY = 25


class PartitionFenced(RuntimeError):
    """Another worker owns this partition now; this runner must stop."""


@dataclass
class Recovery:
    """What a runner found and did when it took its partition."""

    handled: int
    checkpoint: int
    replayed: int
    backfilled: int


def last_handled(
    bootstrap: str, raw_topic: str, lineage_topics: Iterable[str], partition: int
) -> int:
    """The highest raw offset whose clean tick or quarantine record is committed (-1: none).

    Each lineage tail is read to its last stable offset, or the read fails: a tail cut short
    would make recovery replay too little and start from a state the dead worker never had.
    """
    handled = -1
    with RangeReader(bootstrap) as reader:
        for topic in lineage_topics:
            low, high = reader.watermarks(topic, partition)
            tail = {partition: (max(low, high - TAIL_OFFSETS), high)}
            for _, msg in reader.read(topic, tail):
                source = _source(msg.value()) if msg is not None else None
                if source is not None and source.topic == raw_topic:
                    handled = max(handled, source.offset)
    return handled


def is_reinjected(headers: Any) -> bool:
    """Whether a raw message carries the re-injection header (list of pairs or mapping)."""
    if not headers:
        return False
    keys = headers.keys() if isinstance(headers, dict) else (k for k, _ in headers)
    return any(k == REINJECTED_HEADER for k in keys)


def _source(value: bytes | None) -> SourceRef | None:
    if not value:
        return None
    for model in (CleanTick, QuarantineRecord):
        try:
            return model.model_validate_json(value).source
        except ValidationError:
            continue
    return None


class PartitionRunner:
    """The pipeline, producer and recovery of one ``ticks.raw`` partition."""

    def __init__(
        self,
        config: TickwiseConfig,
        bootstrap: str,
        partition: int,
        store: CheckpointStore,
        checkpoint_interval_s: float,
        observe: Callable[[Output], None] | None = None,
    ) -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.partition = partition
        self.store = store
        self.checkpoint_interval_s = checkpoint_interval_s
        self.observe = observe  # live-only figures (data quality); never changes an output
        self.topics = Topics(config.topic_prefix)
        self.raw_topic = self.topics.raw
        self.pipeline = Pipeline(config)
        self.handled = -1
        self._last_checkpoint = time.monotonic()
        self._checkpointed = -1
        self._producer: Producer | None = None
        self._controls: list[ControlCommand] = []
        self._partitions: dict[str, int] = {}

    # -- taking the partition ----------------------------------------------------------------

    def open(self, first_offset: int) -> Recovery:
        """Fence any previous owner, rebuild the state, emit what a dead owner left undone."""
        self._producer = Producer(
            {
                **env_client_config(),
                "bootstrap.servers": self.bootstrap,
                "transactional.id": f"{self.config.app_id}.{self.raw_topic}.{self.partition}",
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 1,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        self._producer.init_transactions(30)  # aborts a zombie's open transaction
        metadata = self._producer.list_topics(timeout=10)
        self._partitions = {name: len(t.partitions) for name, t in metadata.topics.items()}
        lineage = [self.topics.name(TICKS_CLEAN), self.topics.name(TICKS_QUARANTINE)]
        raw_count = self._partitions.get(self.raw_topic, 0)
        for topic in lineage:
            if self._partitions.get(topic) != raw_count:
                raise RuntimeError(
                    f"{topic} must have as many partitions as {self.raw_topic} ({raw_count}): "
                    "outputs are co-partitioned with their input"
                )
        handled = last_handled(self.bootstrap, self.raw_topic, lineage, self.partition)
        checkpoint = self.store.load(self.raw_topic, self.partition)
        start = 0
        if checkpoint is not None and checkpoint.offset <= handled:
            self.pipeline = checkpoint.state
            start = checkpoint.offset + 1
        replayed = 0
        for msg in read_offsets(self.bootstrap, self.raw_topic, self.partition, start, handled + 1):
            self.pipeline.process(
                msg.value() or b"", self._ref(msg.offset()), is_reinjected(msg.headers())
            )
            replayed += 1
        self.handled = handled
        self.pipeline = self.pipeline.reconfigured(self.config)
        self._checkpointed = checkpoint.offset if checkpoint is not None else -1
        # Offsets the previous owner consumed but never emitted (a reorder buffer can hold some)
        # may lie before where faust resumes: read them back from the log.
        missed = [
            (m.offset(), m.value() or b"", m.headers())
            for m in read_offsets(
                self.bootstrap, self.raw_topic, self.partition, handled + 1, first_offset
            )
        ]
        if missed:
            self.process(missed)
        recovery = Recovery(handled, start - 1, replayed, len(missed))
        log.info("partition %s of %s: %s", self.partition, self.raw_topic, recovery)
        return recovery

    # -- steady state ------------------------------------------------------------------------

    def submit_control(self, command: ControlCommand) -> None:
        """Queue an operator command; it applies before the next batch (thread-safe)."""
        self._controls.append(command)

    def _apply_controls(self) -> bool:
        controls, self._controls = self._controls, []
        return any([self.pipeline.on_control(command) for command in controls])

    def process(self, batch: list[tuple[int, bytes, Any]]) -> int:
        """Process (offset, raw, headers) items in transactions; return how many were new.

        A command takes effect between transactions; checkpointing right after the one it
        preceded keeps it out of any range a recovery must replay, so a replay never misplaces
        it. A command that arrives mid-batch ends the transaction at the next
        ``CONTROL_CHECK_EVERY`` messages, so a kill switch waits for tens of ticks, not for
        the rest of a batch of hundreds.
        """
        fresh = [item for item in batch if item[0] > self.handled]
        done = 0
        while done < len(fresh):
            controlled = self._apply_controls()
            taken = self._transact(fresh[done:])
            done += taken
            self.handled = fresh[done - 1][0]
            self._maybe_checkpoint(force=controlled)
        return len(fresh)

    def _transact(self, items: list[tuple[int, bytes, Any]]) -> int:
        """Process items in one transaction until done or a command waits; return how many."""
        producer = self._producer
        assert producer is not None, "open() first"
        taken = 0
        try:
            producer.begin_transaction()
            for offset, value, headers in items:
                outputs = self.pipeline.process(value, self._ref(offset), is_reinjected(headers))
                for out in outputs:
                    if self.observe is not None:
                        self.observe(out)
                    topic = self.topics.name(out.topic)
                    key = out.key.encode() if out.key is not None else None
                    partition = (
                        self.partition if self._partitions.get(topic, 0) > self.partition else -1
                    )
                    producer.produce(topic, out.encoded(), key, partition=partition)
                taken += 1
                if taken % CONTROL_CHECK_EVERY == 0 and self._controls:
                    break
            # One poll per transaction, not per message: each poll crosses into librdkafka and
            # back (a tenth of the worker's time when done per output); the commit flushes.
            producer.poll(0)
            producer.commit_transaction(60)
        except KafkaException as exc:
            error = exc.args[0]
            if error.fatal() or error.code() == KafkaError._FENCED:
                raise PartitionFenced(f"partition {self.partition}: {error}") from exc
            raise
        return taken

    def _maybe_checkpoint(self, force: bool = False) -> None:
        due = time.monotonic() - self._last_checkpoint >= self.checkpoint_interval_s
        if (force or due) and self.handled > self._checkpointed:
            self.store.save(self.raw_topic, self.partition, Checkpoint(self.handled, self.pipeline))
            self._checkpointed = self.handled
            self._last_checkpoint = time.monotonic()

    def close(self) -> None:
        """Checkpoint what is committed and release the producer (revocation, shutdown)."""
        if self._producer is not None:
            self._maybe_checkpoint(force=True)
            self._producer.flush(10)
            self._producer = None

    def _ref(self, offset: int) -> SourceRef:
        return SourceRef(topic=self.raw_topic, partition=self.partition, offset=offset)


def default_checkpoint_dir(app_id: str) -> Path:
    """Where checkpoints go when the config names no directory."""
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tickwise" / "checkpoints" / app_id

"""Checkpoints and recovery for the worker's stages: no gap, no duplicate after a crash.

Per input partition a stage keeps a checkpoint on disk (never in a Kafka message: a forest
pickles to ~100 MB): the state of the partition's instruments, the input offset that state
reflects, and the high-water marks of the output topics at that moment. It is written
atomically (temporary file, fsync, rename) right after the producer was flushed, so every
output of every input up to that offset is acknowledged.

When a partition's first input arrives in this process (start, restart or rebalance; any
offset jump counts as such), the stage

1. restores the checkpoint (offset ``C``; none: empty state and ``C = -1``);
2. replays inputs ``C+1 ..`` up to the one that arrived, silently: faust committed them, so
   their outputs are already downstream, and the state must still reflect them;
3. skips inputs at or below ``C`` if the consumer rewound to them (their effect is restored);
4. reads the output topics from the recorded high-water marks and remembers the ids found
   there: inputs processed after the checkpoint but before the crash are processed again,
   and each output whose id was already published is not sent a second time. Ids are
   deterministic (lineage), so a re-made output is byte-identical to the one that was sent.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

CATCH_UP_TIMEOUT_S = 120.0
log = logging.getLogger(__name__)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CheckpointStore:
    """One pickled checkpoint per (stage, input topic, partition) under ``root``."""

    def __init__(self, root: str | Path, app_id: str) -> None:
        self.root = Path(root).expanduser() / app_id

    def path(self, stage: str, topic: str, partition: int) -> Path:
        return self.root / stage / topic / f"p{partition}.pkl"

    def save(self, stage: str, topic: str, partition: int, checkpoint: dict[str, Any]) -> None:
        write_atomic(self.path(stage, topic, partition), pickle.dumps(checkpoint))

    def load(self, stage: str, topic: str, partition: int) -> dict[str, Any] | None:
        path = self.path(stage, topic, partition)
        return pickle.loads(path.read_bytes()) if path.exists() else None


@dataclass
class _Partition:
    restored_offset: int = -1
    last_offset: int = -1
    instruments: set[str] = field(default_factory=set)
    published: set[str] = field(default_factory=set)
    since_checkpoint: int = 0


@dataclass
class StageHooks:
    """What recovery needs from a stage: its state per instrument and its output ids."""

    name: str
    export_state: Callable[[str], Any]
    import_state: Callable[[str, Any], None]
    replay: Callable[[bytes], str | None]  # process one input silently; return its instrument
    output_ids: Callable[[str, bytes], tuple[str, str | None] | None]  # -> (id, instrument)
    extra_state: Callable[[], Any] = lambda: None
    restore_extra: Callable[[Any], None] = lambda _: None


class Recovery:
    """Checkpointing and exactly-once-looking recovery of one stage of the live worker."""

    def __init__(
        self,
        hooks: StageHooks,
        store: CheckpointStore,
        bootstrap: str,
        input_topic: str,
        output_topics: Iterable[str],
        every: int,
    ) -> None:
        self.hooks = hooks
        self.store = store
        self.bootstrap = bootstrap
        self.input_topic = input_topic
        self.output_topics = tuple(output_topics)
        self.every = every
        self.parts: dict[int, _Partition] = {}

    def _consumer(self) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"tickwise-recovery-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )

    def _read(
        self, assignments: list[TopicPartition], stop: dict[tuple[str, int], int]
    ) -> Iterator[Message]:
        """Yield messages of ``assignments`` until each partition reaches its stop offset."""
        todo = {
            (tp.topic, tp.partition)
            for tp in assignments
            if tp.offset < stop[(tp.topic, tp.partition)]
        }
        if not todo:
            return
        c = self._consumer()
        c.assign(assignments)
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        try:
            while todo:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"recovery could not read {sorted(todo)} in time")
                msg = c.poll(0.5)
                if msg is None:
                    continue
                key = (msg.topic(), msg.partition())
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        todo.discard(key)
                        continue
                    raise RuntimeError(f"recovery read failed: {msg.error()}")
                if key not in todo:
                    continue
                if msg.offset() >= stop[key]:
                    todo.discard(key)
                    continue
                yield msg
                if msg.offset() + 1 >= stop[key]:
                    todo.discard(key)
        finally:
            c.close()

    def _restore(self, partition: int, first_offset: int) -> _Partition:
        hooks = self.hooks
        part = _Partition()
        checkpoint = self.store.load(hooks.name, self.input_topic, partition)
        marks: dict[tuple[str, int], int] = {}
        if checkpoint is not None:
            part.restored_offset = checkpoint["offset"]
            for instrument, state in checkpoint["instruments"].items():
                hooks.import_state(instrument, state)
                part.instruments.add(instrument)
            hooks.restore_extra(checkpoint.get("extra"))
            marks = {tuple(k): v for k, v in checkpoint["watermarks"]}
        # 2. inputs the consumer already committed past: replay them silently
        start = part.restored_offset + 1
        if first_offset > start:
            tp = TopicPartition(self.input_topic, partition, start)
            for msg in self._read([tp], {(self.input_topic, partition): first_offset}):
                instrument = hooks.replay(msg.value() or b"")
                if instrument is not None:
                    part.instruments.add(instrument)
            part.restored_offset = first_offset - 1
        # 4. outputs published since the checkpoint: never send them twice
        c = self._consumer()
        try:
            tps, stop = [], {}
            for topic in self.output_topics:
                meta = c.list_topics(topic, timeout=10).topics[topic]
                for p in meta.partitions:
                    low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    begin = max(marks.get((topic, p), low), low)
                    tps.append(TopicPartition(topic, p, begin))
                    stop[(topic, p)] = high
        finally:
            c.close()
        for msg in self._read(tps, stop):
            found = hooks.output_ids(msg.topic(), msg.value() or b"")
            if found is not None:
                part.published.add(found[0])
        part.last_offset = part.restored_offset
        log.warning(
            "%s: partition %d of %s restored at offset %d (checkpoint %s), %d outputs already "
            "published will not be re-sent",
            hooks.name,
            partition,
            self.input_topic,
            part.restored_offset,
            "found" if checkpoint is not None else "none",
            len(part.published),
        )
        return part

    def admit(self, partition: int, offset: int) -> bool:
        """Whether to process this input; (re)initialises the partition on its first input."""
        part = self.parts.get(partition)
        if part is None or offset != part.last_offset + 1:
            part = self.parts[partition] = self._restore(partition, offset)
        if offset <= part.restored_offset:
            part.last_offset = max(part.last_offset, offset)
            return False
        return True

    def already_published(self, partition: int, output_id: str) -> bool:
        """True for an output that reached its topic before a crash (do not send it again)."""
        return output_id in self.parts[partition].published

    def processed(self, partition: int, offset: int, instrument: str | None) -> bool:
        """Record a processed input; True when a checkpoint is due (flush, then ``save``)."""
        part = self.parts[partition]
        part.last_offset = offset
        if instrument is not None:
            part.instruments.add(instrument)
        part.since_checkpoint += 1
        return part.since_checkpoint >= self.every

    def save(self, partition: int) -> None:
        """Write the partition's checkpoint; call only after the producer was flushed."""
        part = self.parts[partition]
        c = self._consumer()
        try:
            marks = []
            for topic in self.output_topics:
                meta = c.list_topics(topic, timeout=10).topics[topic]
                for p in meta.partitions:
                    marks.append(
                        (
                            (topic, p),
                            c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1],
                        )
                    )
        finally:
            c.close()
        checkpoint = {
            "offset": part.last_offset,
            "instruments": {i: self.hooks.export_state(i) for i in sorted(part.instruments)},
            "extra": self.hooks.extra_state(),
            "watermarks": marks,
        }
        self.store.save(self.hooks.name, self.input_topic, partition, checkpoint)
        part.since_checkpoint = 0
        part.published.clear()


def build_recoveries(
    config: Any, pipeline: Any, bootstrap: str, topics: Any
) -> tuple[Recovery | None, Recovery | None]:
    """The validate and decide stages' recoveries, or ``(None, None)`` without checkpoints."""
    if config.checkpoint.dir is None:
        return None, None
    from schemas.decisions import ControlCommand
    from schemas.quarantine import QuarantineRecord
    from schemas.ticks import CleanTick, SourceRef

    store = CheckpointStore(config.checkpoint.dir, config.app_id)
    kinds = {
        topics.clean: "clean",
        topics.quarantine: "quarantine",
        topics.features: "features",
        topics.signals: "signals",
        topics.decisions: "decisions",
        topics.audit: "audit",
        topics.alerts: "alerts",
    }

    def ids(topic: str, value: bytes) -> tuple[str, str | None] | None:
        return output_id(kinds[topic], value)

    def replay_raw(value: bytes) -> str | None:
        verdict = pipeline.validate(value, SourceRef(topic="recovery", partition=0, offset=0))
        return None if isinstance(verdict, QuarantineRecord) else verdict.tick.instrument

    def replay_clean(value: bytes) -> str | None:
        tick = CleanTick.model_validate_json(value)
        pipeline.decide(tick)
        return tick.tick.instrument

    validate = StageHooks(
        "validate",
        pipeline.validator.export_state,
        pipeline.validator.import_state,
        replay_raw,
        ids,
    )
    decide = StageHooks(
        "decide",
        pipeline.export_state,
        pipeline.import_state,
        replay_clean,
        ids,
        extra_state=lambda: [c.model_dump_json() for c in pipeline.model.commands],
        restore_extra=lambda saved: [
            pipeline.control(ControlCommand.model_validate_json(c)) for c in saved or []
        ],
    )
    every = config.checkpoint.every
    return (
        Recovery(validate, store, bootstrap, topics.raw, (topics.clean, topics.quarantine), every),
        Recovery(
            decide,
            store,
            bootstrap,
            topics.clean,
            (topics.features, topics.signals, topics.decisions, topics.audit, topics.alerts),
            every,
        ),
    )


def output_id(topic_kind: str, value: bytes) -> tuple[str, str | None] | None:
    """The lineage id of an output message, by the kind of topic it is on."""
    try:
        msg = json.loads(value)
    except ValueError:
        return None
    if topic_kind == "features":
        return f"fv:{msg['instrument']}:{msg['tick_id']}", msg["instrument"]
    if topic_kind in ("clean", "quarantine"):
        source = msg.get("source") or {}
        return f"src:{source.get('topic')}:{source.get('partition')}:{source.get('offset')}", None
    for key in ("decision_id", "signal_id", "audit_id", "alert_id"):
        if key in msg:
            return msg[key], msg.get("instrument")
    return None

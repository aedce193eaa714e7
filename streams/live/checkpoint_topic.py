"""Checkpoints in a compacted Kafka topic: state any worker of the cluster can pick up.

Why a topic: Kafka is already the shared, replicated store every worker reaches, so a partition
that moves to a worker on another host resumes from its checkpoint without shared storage.

A checkpoint is the signed bytes ``CheckpointSigner`` makes (the one way checkpoints are signed),
cut into parts that fit under the broker's message size (a forest model pickles to ~100 MB, the
default maximum message is 1 MB). One transaction writes the parts, tombstones for parts a larger
earlier checkpoint left, and last a manifest naming the checkpoint's id and part count. A
``read_committed`` reader sees the whole transaction or none of it, so it never sees half a
checkpoint; it reads the partition's log to its last stable offset and keeps the newest manifest
whose parts it holds. The signature covers the reassembled bytes, so an altered, missing or
foreign part is refused before pickle sees a byte.

Keys (JSON arrays, one per raw partition of one app id: ``[app, raw topic, partition, "manifest"]``
and ``[app, raw topic, partition, "part", i]``) stay the same from one checkpoint to the next, so
compaction keeps only the latest of each. Raw partition ``p`` goes to checkpoint partition
``p mod n``, so a new owner reads one partition of the topic, not all of them.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Producer

from tickwise.schemas.topics import CHECKPOINTS
from tickwise.streams.checkpoint import (
    Checkpoint,
    CheckpointRefused,
    CheckpointSigner,
    CheckpointWriteError,
)
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.reader import RangeReader
from tickwise.streams.live.transport import ProducerWedged, Watchdog, transactional_producer

log = logging.getLogger(__name__)

# A part's bytes: well under the broker's default 1 MB message limit with headers and batching.
PART_BYTES = 512 * 1024
ID_HEADER = "tickwise-checkpoint-id"
CALL_TIMEOUT_S = 30.0
SAVE_TIMEOUT_S = 120.0  # a save retried this long while the broker is away, then it fails
RETRY_S = 0.5
TRANSACTION_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class Manifest:
    """What a checkpoint's last record says: its id and how many parts it has."""

    id: str
    parts: int
    size: int
    offset: int  # the raw offset the checkpoint reflects (for operators reading the topic)

    def encode(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Manifest | None:
        """The manifest in ``data``, or None for anything else (it is then not a checkpoint)."""
        try:
            fields = json.loads(data)
            manifest = cls(
                str(fields["id"]), int(fields["parts"]), int(fields["size"]), int(fields["offset"])
            )
        except (ValueError, KeyError, TypeError):
            return None
        return manifest if manifest.parts >= 0 else None


def record_key(app_id: str, topic: str, partition: int, *what: str | int) -> bytes:
    """The compaction key of a manifest (``"manifest"``) or a part (``"part", i``)."""
    return json.dumps([app_id, topic, partition, *what]).encode()


class TopicCheckpointStore:
    """Checkpoints of one app id in the compacted checkpoint topic (a ``CheckpointStore``)."""

    def __init__(
        self,
        bootstrap: str,
        checkpoint_topic: str,
        app_id: str,
        key: bytes,
        transactional_id: str,
        part_bytes: int = PART_BYTES,
    ) -> None:
        self.bootstrap = bootstrap
        self.checkpoint_topic = checkpoint_topic
        self.app_id = app_id
        self.transactional_id = transactional_id
        self.part_bytes = part_bytes
        self._signer = CheckpointSigner(key)
        self._producer: Producer | None = None
        self._watchdog = Watchdog()
        self._abandoned: list[tuple[Producer, Watchdog]] = []  # wedged: kept, never freed
        self._partitions: int | None = None
        self._parts: dict[tuple[str, int], int] = {}  # parts the latest checkpoint of each had

    def ensure_topic(self, prefix: str) -> None:
        """Create the checkpoint topic if missing (``tickwise topics create`` makes it too)."""
        with RangeReader(self.bootstrap) as reader:
            if reader.exists(self.checkpoint_topic):  # asked first: a worker may not create
                return
        create_topics(self.bootstrap, prefix, specs=(CHECKPOINTS,))

    def _target(self, partition: int) -> int:
        if self._partitions is None:
            with RangeReader(self.bootstrap) as reader:
                self._partitions = len(reader.partitions(self.checkpoint_topic))
        return partition % self._partitions

    # -- write --------------------------------------------------------------------------------

    def save(self, topic: str, partition: int, checkpoint: Checkpoint) -> None:
        """Make ``checkpoint`` the partition's latest, in one transaction; retried while the
        broker is away, then ``CheckpointWriteError`` (the previous checkpoint stays)."""
        data = self._signer.seal(topic, partition, checkpoint)
        deadline = time.monotonic() + SAVE_TIMEOUT_S
        while True:
            try:
                self._write(topic, partition, checkpoint.offset, data)
                return
            except (KafkaException, ProducerWedged) as exc:
                error = exc.args[0] if isinstance(exc, KafkaException) else exc
                self._after_failure(exc)
                if time.monotonic() > deadline:
                    raise CheckpointWriteError(
                        f"{topic} partition {partition}: checkpoint at offset {checkpoint.offset} "
                        f"not written to {self.checkpoint_topic}: {error}"
                    ) from exc
                log.warning(
                    "%s partition %s: checkpoint write failed (%s); retrying",
                    topic,
                    partition,
                    error,
                )
                time.sleep(RETRY_S)

    def _write(self, topic: str, partition: int, offset: int, data: bytes) -> None:
        producer = self._producer or self._new_producer()
        target = self._target(partition)
        ckpt_id = uuid.uuid4().hex
        parts = [data[i : i + self.part_bytes] for i in range(0, len(data), self.part_bytes)]
        headers = [(ID_HEADER, ckpt_id.encode())]
        producer.begin_transaction()
        for i, part in enumerate(parts):
            key = record_key(self.app_id, topic, partition, "part", i)
            self._produce(producer, key, part, target, headers)
        for i in range(len(parts), self._parts.get((topic, partition), 0)):
            self._produce(
                producer, record_key(self.app_id, topic, partition, "part", i), None, target
            )
        manifest = Manifest(ckpt_id, len(parts), len(data), offset)
        key = record_key(self.app_id, topic, partition, "manifest")
        self._produce(producer, key, manifest.encode(), target, headers)
        # bounded: a commit can block past its timeout when the broker restarts under it
        self._watchdog.call(lambda: producer.commit_transaction(CALL_TIMEOUT_S), "commit")
        self._parts[(topic, partition)] = len(parts)

    def _produce(
        self,
        producer: Producer,
        key: bytes,
        value: bytes | None,
        target: int,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        while True:
            try:
                producer.produce(
                    self.checkpoint_topic, value, key, partition=target, headers=headers
                )
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(RETRY_S)

    def _after_failure(self, exc: KafkaException | ProducerWedged) -> None:
        producer = self._producer
        if producer is None:
            return
        if isinstance(exc, ProducerWedged):
            self._abandon(producer)
            return
        if exc.args[0].fatal():  # fenced by a newer writer of this id, or broken: start anew
            self._producer = None
            return
        try:
            self._watchdog.call(lambda: producer.abort_transaction(CALL_TIMEOUT_S), "abort")
        except KafkaException as again:  # none open, or the broker is away: a new producer next
            log.debug("abort after a failed checkpoint write: %s", again)
            self._producer = None
        except ProducerWedged:
            self._abandon(producer)

    def _abandon(self, producer: Producer) -> None:
        """Give up on a producer whose call never returned; its successor fences it."""
        self._abandoned.append((producer, self._watchdog))
        self._watchdog = Watchdog()
        self._producer = None

    def _new_producer(self) -> Producer:
        self._producer = transactional_producer(
            self.bootstrap,
            self.transactional_id,
            TRANSACTION_TIMEOUT_MS,
            CALL_TIMEOUT_S,
            settings={"linger.ms": 5},
        )
        return self._producer

    # -- read ---------------------------------------------------------------------------------

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        """The partition's newest complete checkpoint, or None if it has none.

        Raises ``CheckpointRefused`` when its signature does not hold (before unpickling), and
        ``RangeReadError`` when the topic cannot be read to its end.
        """
        target = self._target(partition)
        mine = [self.app_id, topic, partition]
        parts: dict[str, dict[int, bytes]] = {}  # checkpoint id -> part number -> bytes
        best: tuple[Manifest, int] | None = None  # newest complete manifest, its offset
        with RangeReader(self.bootstrap) as reader:
            low, high = reader.watermarks(self.checkpoint_topic, target)
            for _, msg in reader.read(self.checkpoint_topic, {target: (low, high)}):
                if msg is None or msg.value() is None:  # the end, or a tombstone
                    continue
                key = _key(msg.key())
                if key is None or key[:3] != mine:
                    continue
                value: bytes = msg.value()
                if key[3:4] == ["part"] and len(key) == 5 and isinstance(key[4], int):
                    ckpt_id = _header(msg.headers(), ID_HEADER)
                    if ckpt_id is not None:
                        # a later record of a part replaces an earlier one, as compaction would
                        parts.setdefault(ckpt_id, {})[key[4]] = value
                elif key[3:] == ["manifest"]:
                    manifest = Manifest.decode(value)
                    got = parts.get(manifest.id, {}) if manifest is not None else {}
                    if manifest is None or sorted(got) != list(range(manifest.parts)):
                        log.warning(
                            "%s partition %s: the manifest at offset %s of %s has no complete "
                            "checkpoint behind it; skipped",
                            topic,
                            partition,
                            msg.offset(),
                            self.checkpoint_topic,
                        )
                        continue
                    best = (manifest, msg.offset())
                    # every earlier checkpoint is superseded; this one's parts stay to the end
                    parts = {manifest.id: got}
        if best is None:
            self._parts.pop((topic, partition), None)
            return None
        manifest, at = best
        got = parts[manifest.id]
        data = b"".join(got[i] for i in range(manifest.parts))
        self._parts[(topic, partition)] = max(got) + 1 if got else 0
        where = (
            f"checkpoint {manifest.id} of {topic} partition {partition} in "
            f"{self.checkpoint_topic} (manifest at offset {at} of partition {target})"
        )
        if len(data) != manifest.size:
            raise CheckpointRefused(
                f"{where} is not a trusted tickwise checkpoint and was not read: its parts hold "
                f"{len(data)} bytes, its manifest says {manifest.size}"
            )
        return self._signer.open(topic, partition, data, where)

    def close(self) -> None:
        """Deliver what is queued and let the producer go."""
        if self._producer is not None:
            self._producer.flush(CALL_TIMEOUT_S)
            self._producer = None


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers or ():
        if key == name and value is not None:
            return bytes(value).decode(errors="replace")
    return None


def _key(raw: bytes | None) -> list[Any] | None:
    try:
        key = json.loads(raw or b"")
    except ValueError:
        return None
    return key if isinstance(key, list) else None

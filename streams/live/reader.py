"""Reading a bounded range of a topic: what recovery, replay and replay-check all read with.

Why one reader: a range read is easy to get subtly wrong, and a wrong one is silent. A read
that stops because nothing arrived for a while looks exactly like a read that reached the end,
and a consumer asked for an offset retention has deleted jumps to the end by default. Either
way recovery rebuilds a fresh state, or a replay checks fewer decisions, with no error. So:

* the end is fixed before reading: an offset range is checked against the partition's low and
  high watermarks (with ``read_committed`` the high one is the last stable offset), and a
  time range is turned into offsets first;
* the read ends only when every partition reached its end; silence for ``idle_timeout_s``
  raises :class:`RangeReadError` naming the topic, partition and offsets still missing;
* ``auto.offset.reset`` is ``error``: a start that retention trims away mid-read fails too;
* the client settings (the login of the secure profile included) come from one place,
  :func:`consumer_settings`, which the taps share.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, Message, TopicPartition

from tickwise.streams.live.security import env_client_config

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 60.0  # silence before a range read gives up; a broker restart takes seconds
METADATA_TIMEOUT_S = 30.0
# Errors librdkafka recovers from by itself (a broker restarting, a leader moving); the read
# waits for them up to its idle timeout. Every other error ends the read.
TRANSIENT = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._RESOLVE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
}


class RangeReadError(RuntimeError):
    """A range could not be read to its end: trimmed, out of bounds, refused or silent."""


def consumer_settings(bootstrap: str, group: str, **overrides: Any) -> dict[str, Any]:
    """The settings every tickwise consumer starts from: broker, group and login.

    The login (``TICKWISE_SASL_USERNAME`` and its password) is added here, so no reader can
    connect without it under the secure profile.
    """
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        **overrides,
        **env_client_config(),
    }


class RangeReader:
    """A read-only, ``read_committed`` consumer for bounded reads of one topic at a time.

    The consumer never subscribes or commits: its group id (``tickwise-read-*``, inside the
    ``tickwise`` prefix the worker's login may use) is a formality of the client.
    """

    def __init__(
        self,
        bootstrap: str,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        metadata_timeout_s: float = METADATA_TIMEOUT_S,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.metadata_timeout_s = metadata_timeout_s
        self._closed = False
        self._consumer = Consumer(
            consumer_settings(
                bootstrap,
                f"tickwise-read-{uuid.uuid4().hex[:8]}",
                **{
                    "isolation.level": "read_committed",
                    "enable.partition.eof": True,
                    "auto.offset.reset": "error",
                },
            )
        )

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Leave the broker (idempotent)."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def exists(self, topic: str) -> bool:
        """Whether the broker has ``topic``; raises if this login may not know (no DESCRIBE)."""
        return bool(self.partitions(topic, missing_ok=True))

    def partitions(self, topic: str, missing_ok: bool = False) -> list[int]:
        """The topic's partition numbers; raises if it may not be described, or is missing
        (unless ``missing_ok``: then none)."""
        meta = self._consumer.list_topics(topic, timeout=self.metadata_timeout_s).topics.get(topic)
        missing = meta is None or not meta.partitions
        if meta is not None and meta.error is not None:
            if meta.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise RangeReadError(f"topic {topic!r}: {meta.error.str()}")
            missing = True
        if missing:
            if missing_ok:
                return []
            raise RangeReadError(f"topic {topic!r} does not exist on the broker")
        return sorted(meta.partitions)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(first offset retained, last stable offset + 1) of one partition."""
        tp = TopicPartition(topic, partition)
        low, high = self._consumer.get_watermark_offsets(tp, timeout=self.metadata_timeout_s)
        return low, high

    def time_bounds(self, topic: str, from_ms: int, to_ms: int) -> dict[int, tuple[int, int]]:
        """Per partition, the offsets ``[start, stop)`` of records written in ``[from_ms, to_ms)``.

        Record timestamps need not grow within a partition, so the range can hold a record
        outside the times; :meth:`read_times` filters them.
        """
        parts = self.partitions(topic)
        timeout = self.metadata_timeout_s
        starts = self._consumer.offsets_for_times(
            [TopicPartition(topic, p, from_ms) for p in parts], timeout=timeout
        )
        ends = self._consumer.offsets_for_times(
            [TopicPartition(topic, p, to_ms) for p in parts], timeout=timeout
        )
        out = {}
        for start, end in zip(starts, ends, strict=True):
            high = self.watermarks(topic, start.partition)[1]
            stop = high if end.offset in (OFFSET_END, -1) else min(end.offset, high)
            first = high if start.offset in (OFFSET_END, -1) else start.offset
            if first < stop:
                out[start.partition] = (first, stop)
        return out

    def read(
        self, topic: str, ranges: Mapping[int, tuple[int, int]]
    ) -> Iterator[tuple[int, Message | None]]:
        """Yield ``(partition, message)`` for every committed record of ``ranges``, then
        ``(partition, None)`` once that partition is complete.

        ``ranges`` maps a partition to ``[start, stop)``; partitions interleave as the broker
        delivers them, each in offset order. Offsets a transaction marker or an aborted
        record holds are skipped, as every ``read_committed`` consumer skips them.
        """
        wanted = {p: (start, stop) for p, (start, stop) in ranges.items() if stop > start}
        for p, (start, stop) in wanted.items():
            low, high = self.watermarks(topic, p)
            if start < low:
                raise RangeReadError(
                    f"{topic} partition {p}: offsets {start} to {min(low, stop) - 1} are no longer "
                    f"retained (the partition starts at {low}); cannot read [{start}, {stop})"
                )
            if stop > high:
                raise RangeReadError(
                    f"{topic} partition {p}: cannot read [{start}, {stop}), committed records "
                    f"end at offset {high}"
                )
        if not wanted:
            return
        consumer = self._consumer
        consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in wanted.items()])
        position = {p: start for p, (start, _) in wanted.items()}
        pending = set(wanted)
        try:
            last_event = time.monotonic()
            while pending:
                msg = consumer.poll(0.2)
                if msg is None:
                    if time.monotonic() - last_event > self.idle_timeout_s:
                        missing = ", ".join(
                            f"partition {p} at offset {position[p]} of [{wanted[p][0]}, "
                            f"{wanted[p][1]})"
                            for p in sorted(pending)
                        )
                        raise RangeReadError(
                            f"{topic}: nothing arrived for {self.idle_timeout_s:g} s before the "
                            f"end of the range ({missing})"
                        )
                    continue
                last_event = time.monotonic()
                p = msg.partition()
                if p not in pending:
                    continue
                stop = wanted[p][1]
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if msg.offset() >= stop:
                            pending.discard(p)
                            yield p, None
                        continue
                    if error.code() in TRANSIENT or (error.retriable() and not error.fatal()):
                        log.warning("%s partition %s: %s (waiting)", topic, p, error)
                        continue
                    raise RangeReadError(
                        f"{topic} partition {p}: reading [{wanted[p][0]}, {stop}) failed at "
                        f"offset {position[p]}: {error.str()}"
                    )
                offset = msg.offset()
                if offset < stop:
                    position[p] = offset + 1
                    yield p, msg
                if offset + 1 >= stop:
                    pending.discard(p)
                    yield p, None
        finally:
            if not self._closed:
                consumer.unassign()

    def read_times(self, topic: str, from_ms: int, to_ms: int) -> Iterator[Message]:
        """Yield the records of ``topic`` written in ``[from_ms, to_ms)``, merged by timestamp.

        The order within a partition (so per instrument) is never changed; partitions are
        merged by record timestamp, so pacing follows the recording. Records one partition
        delivers ahead of the others wait in memory for the merge.
        """
        ranges = self.time_bounds(topic, from_ms, to_ms)
        buffers: dict[int, deque[Message]] = {p: deque() for p in ranges}
        done: set[int] = set()
        events = self.read(topic, ranges)
        while True:
            # a k-way merge: every unfinished partition must offer its next record first
            while any(not buffers[p] and p not in done for p in ranges):
                p, msg = next(events)
                if msg is None:
                    done.add(p)
                elif from_ms <= msg.timestamp()[1] < to_ms:
                    buffers[p].append(msg)
            ready = [p for p in ranges if buffers[p]]
            if not ready:
                return
            first = min(ready, key=lambda q: (buffers[q][0].timestamp()[1], q))
            yield buffers[first].popleft()


def read_offsets(
    bootstrap: str,
    topic: str,
    partition: int,
    start: int,
    stop: int,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> Iterator[Message]:
    """Yield the committed records of one partition with ``start <= offset < stop``."""
    with RangeReader(bootstrap, idle_timeout_s) as reader:
        for _, msg in reader.read(topic, {partition: (start, stop)}):
            if msg is not None:
                yield msg


def read_times(
    bootstrap: str, topic: str, from_ms: int, to_ms: int, idle_timeout_s: float = IDLE_TIMEOUT_S
) -> Iterator[Message]:
    """Yield the records of ``topic`` written in ``[from_ms, to_ms)`` (see ``RangeReader``)."""
    with RangeReader(bootstrap, idle_timeout_s) as reader:
        yield from reader.read_times(topic, from_ms, to_ms)

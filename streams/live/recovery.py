"""Restart recovery of the validate stage by lineage: an exactly-once effect without transactions.

Why: faust is at-least-once. After a crash the raw messages since the last offset commit are
delivered again, and the validator's per-instrument state (watermark, recent ids, price history)
is gone; re-validating would send a second copy of ticks already on ``ticks.clean`` and could
pass a duplicate the lost dedup state would have caught.

How: every ``CleanTick`` and ``QuarantineRecord`` carries its ``source`` (raw topic, partition,
offset), and the validate agent writes the outputs of raw partition *p* to partition *p* of
``ticks.clean`` and ``ticks.quarantine`` (the catalogue gives them equal partition counts). The
log of those two partitions is then a complete record of what was handled. When the worker is
assigned raw partition *p* it reads their tails and

* rebuilds the validator state with ``Validator.restore``: the clean ticks in log order, then
  the quarantined candidates of the confirmation rules (outlier, time jump) that came after
  them. Restoring re-applies what each verdict did instead of judging again, so a config
  fixed between the crash and the restart cannot make the rebuilt state differ;
* skips every redelivered raw offset that already has an output (``RecoveryPlan.skip``);
* back-fills offsets below the first redelivered one that have no output (ticks a reorder
  buffer still held when the process died): they are read from ``ticks.raw`` and validated.

Ordering of the outputs in the log follows send order per partition, so the tail is exact.
The planning below is pure and unit-tested; only ``read_tail`` and ``read_range`` touch Kafka.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.quarantine import REINJECTED_HEADER, QuarantineRecord
from schemas.ticks import CleanTick, SourceRef
from streams.config import ValidationConfig
from streams.operators.validation import Validator

TAIL_MESSAGES = 30_000  # per output partition: far more than one commit interval of messages


@dataclass
class RecoveryPlan:
    """What one raw partition's outputs say was handled, and the state they rebuild."""

    raw_topic: str
    partition: int
    floor: int = -1  # every offset <= floor is handled (or older than the tails)
    handled: set[int] = field(default_factory=set)
    outputs: dict[int, CleanTick | QuarantineRecord] = field(default_factory=dict)
    log_order: list[int] = field(default_factory=list)  # clean offsets in the order written

    def skip(self, offset: int) -> bool:
        """True when raw ``offset`` already has its clean tick or quarantine record."""
        return offset <= self.floor or offset in self.handled

    def missing_before(self, first_offset: int) -> list[int]:
        """Offsets below the first redelivered one that were never handled (to back-fill)."""
        return [o for o in range(self.floor + 1, first_offset) if o not in self.handled]

    def rebuild(self, config: ValidationConfig) -> dict[str, Any]:
        """Per-instrument validator state after restoring what the outputs record."""
        validator = Validator(config)
        last_clean: dict[str, int] = {}
        for offset in self.log_order:
            clean = self.outputs[offset]
            assert isinstance(clean, CleanTick)
            validator.restore(clean)
            last_clean[clean.tick.instrument] = offset
        for offset in sorted(self.outputs):
            record = self.outputs[offset]
            if not isinstance(record, QuarantineRecord):
                continue
            if offset > last_clean.get(record.instrument or "", -1):
                validator.restore(record)
        return {i: validator.export_state(i) for i in validator.instruments}


def plan_recovery(
    raw_topic: str,
    partition: int,
    clean_tail: Iterable[bytes],
    quarantine_tail: Iterable[bytes],
    clean_truncated: bool = False,
    quarantine_truncated: bool = False,
) -> RecoveryPlan:
    """Read what was handled from the output tails of one raw partition.

    A truncated tail does not reach back to its partition's start: raw offsets below the
    lowest one it shows are then taken as handled (the tails hold far more messages than one
    commit interval, the most a restart redelivers).

    Examples
    --------
    >>> from schemas.ticks import TradeTick
    >>> src = lambda o: SourceRef(topic="ticks.raw", partition=0, offset=o)
    >>> tick = TradeTick(tick_id="a", instrument="ES", ts_event_ns=1, price=1.0, size=1.0)
    >>> tail = [CleanTick(tick=tick, source=src(o)).to_bytes() for o in (5, 6, 8)]
    >>> plan = plan_recovery("ticks.raw", 0, tail, [], clean_truncated=True)
    >>> plan.floor, plan.skip(8), plan.skip(7), plan.missing_before(9)
    (6, True, False, [7])
    """
    plan = RecoveryPlan(raw_topic, partition)
    lowest = {"clean": -1, "quarantine": -1}

    def seen(kind: str, source: SourceRef, output: CleanTick | QuarantineRecord) -> None:
        plan.handled.add(source.offset)
        if source.offset not in plan.outputs:
            plan.outputs[source.offset] = output
            if isinstance(output, CleanTick):
                plan.log_order.append(source.offset)
        if lowest[kind] < 0 or source.offset < lowest[kind]:
            lowest[kind] = source.offset

    for value in clean_tail:
        clean = CleanTick.model_validate_json(value)
        if _ours(plan, clean.source):
            seen("clean", clean.source, clean)
    for value in quarantine_tail:
        try:
            record = QuarantineRecord.model_validate_json(value)
        except ValidationError:
            continue  # not ours to judge: the tail only needs our own records
        if _ours(plan, record.source):
            seen("quarantine", record.source, record)
    floor = max(
        lowest["clean"] - 1 if clean_truncated else -1,
        lowest["quarantine"] - 1 if quarantine_truncated else -1,
    )
    while floor + 1 in plan.handled:
        floor += 1
    plan.floor = floor
    plan.handled = {o for o in plan.handled if o > floor}
    return plan


def _ours(plan: RecoveryPlan, source: SourceRef) -> bool:
    return source.topic == plan.raw_topic and source.partition == plan.partition


def is_reinjected(headers: Any) -> bool:
    """Whether a raw message carries the re-injection header (list of pairs or mapping)."""
    if not headers:
        return False
    keys = headers.keys() if isinstance(headers, dict) else (k for k, _ in headers)
    return any(k == REINJECTED_HEADER for k in keys)


# --- the Kafka side: reading tails and ranges of one partition -----------------------------


def _assigned_consumer(bootstrap: str) -> Any:
    from confluent_kafka import Consumer

    from streams.live.security import env_client_config

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"tickwise-recovery-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            **env_client_config(),
        }
    )


def read_range(
    bootstrap: str, topic: str, partition: int, start: int, end: int, timeout: float = 60.0
) -> Iterator[tuple[int, bytes, Any]]:
    """Yield (offset, value, headers) of ``topic``/``partition`` for offsets in [start, end)."""
    from confluent_kafka import KafkaError, TopicPartition

    if end <= start:
        return
    c = _assigned_consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return
                raise RuntimeError(f"recovery read of {topic}[{partition}]: {msg.error()}")
            if msg.offset() >= end:
                return
            yield msg.offset(), msg.value() or b"", msg.headers()
        raise TimeoutError(f"recovery read of {topic}[{partition}] took over {timeout} s")
    finally:
        c.close()


def read_tail(
    bootstrap: str, topic: str, partition: int, count: int = TAIL_MESSAGES
) -> tuple[list[bytes], bool]:
    """The last ``count`` values of one partition, and whether older ones were left out."""
    c = _assigned_consumer(bootstrap)
    try:
        low, high = c.get_watermark_offsets(_tp(topic, partition), timeout=30)
    finally:
        c.close()
    start = max(low, high - count)
    values = [value for _, value, _ in read_range(bootstrap, topic, partition, start, high)]
    return values, start > 0


def _tp(topic: str, partition: int) -> Any:
    from confluent_kafka import TopicPartition

    return TopicPartition(topic, partition)


def recover_partition(
    bootstrap: str, raw_topic: str, clean_topic: str, quarantine_topic: str, partition: int
) -> RecoveryPlan:
    """Read the output tails of raw ``partition`` and plan its recovery (blocking I/O)."""
    clean, clean_cut = read_tail(bootstrap, clean_topic, partition)
    held, held_cut = read_tail(bootstrap, quarantine_topic, partition)
    return plan_recovery(raw_topic, partition, clean, held, clean_cut, held_cut)


class LineageGuard:
    """What the validate agent asks before handling a raw message: recover, back-fill, skip.

    One per worker. Recovery of a partition runs once per assignment, in a thread so the event
    loop keeps serving heartbeats; ``forget`` is called when partitions are revoked.
    """

    def __init__(
        self, bootstrap: str, raw: str, clean: str, quarantine: str, validator: Validator
    ) -> None:
        self.bootstrap, self.raw, self.clean, self.quarantine = bootstrap, raw, clean, quarantine
        self.validator = validator
        self.plans: dict[int, RecoveryPlan] = {}

    async def prepare(self, partition: int, first_offset: int) -> list[tuple[int, bytes, Any]]:
        """Recover ``partition`` if not done yet; return the raw messages to back-fill first."""
        if partition in self.plans:
            return []
        import asyncio

        loop = asyncio.get_running_loop()
        plan = await loop.run_in_executor(
            None,
            recover_partition,
            self.bootstrap,
            self.raw,
            self.clean,
            self.quarantine,
            partition,
        )
        for instrument, state in plan.rebuild(self.validator.config).items():
            if state is not None:
                self.validator.import_state(instrument, state)
        backlog: list[tuple[int, bytes, Any]] = []
        missing = plan.missing_before(first_offset)
        if missing:
            wanted = set(missing)

            def fetch() -> list[tuple[int, bytes, Any]]:
                found = read_range(self.bootstrap, self.raw, partition, missing[0], first_offset)
                return [m for m in found if m[0] in wanted]

            backlog = await loop.run_in_executor(None, fetch)
            plan.handled.update(o for o, _, _ in backlog)
        self.plans[partition] = plan
        return backlog

    def skip(self, partition: int, offset: int) -> bool:
        """True when this raw message's output is already on ticks.clean or ticks.quarantine."""
        plan = self.plans.get(partition)
        return plan is not None and plan.skip(offset)

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions were revoked: recover them again if they come back."""
        for p in partitions:
            self.plans.pop(p, None)

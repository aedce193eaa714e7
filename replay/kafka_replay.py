"""Replay from Kafka: republish a recorded time range, and re-check a live period's decisions.

* ``tickwise replay --topic ticks.clean --from T --to T --speed X --to-prefix replay1.`` finds
  the range with offsets-for-times and republishes it, keys and bytes unchanged, into the same
  catalogue topic under another prefix, so a second stack (``tickwise worker --topic-prefix
  replay1.``) can re-run on it without touching production topics.
* ``tickwise replay-check --from T --to T`` runs the ``ticks.raw`` records of ``[from, to)``
  through the engine as the worker does (a partition's records in batches, as consume calls
  hand them over) and compares every decision with the one in the audit trail. Operator
  state is rebuilt by replaying the input from ``--warm-from`` (default: the oldest retained
  record), which must be where the live worker's state began.

Times are Kafka record timestamps (when the record was written), given as ISO-8601 (UTC unless
a zone is given) or integer epoch milliseconds. The wall clock only paces republishing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import orjson

from tickwise.schemas.decisions import AUDIT_ADAPTER, AuditRecord, ControlCommand, Decision
from tickwise.schemas.topics import CATALOGUE, TICKS_CLEAN, Topics
from tickwise.streams.config import load_config
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.bootstrap import resolve_bootstrap
from tickwise.streams.live.feed import publish
from tickwise.streams.live.partition import is_reinjected
from tickwise.streams.live.reader import RangeReader, RangeReadError, read_times
from tickwise.streams.live.state import CommandRefused, EngineState, Output
from tickwise.streams.operators.control import replay_commands
from tickwise.streams.progress import PROGRESS_EVERY, Progress, utc_second, wants_progress
from tickwise.streams.sources import RawRecord

EARLIEST_MS = 0
MAX_DETAILED = 100  # differing decisions reported field by field; the rest by id
FAR_FUTURE_MS = 2**62 // 10**6


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds from ``1378072800083`` or ISO-8601 (naive means UTC).

    Examples
    --------
    >>> parse_time_ms("2013-09-01T22:00:00.083Z"), parse_time_ms("1378072800083")
    (1378072800083, 1378072800083)
    """
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"time {text!r} is neither epoch milliseconds nor ISO-8601") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


def replay_topic(
    bootstrap: str,
    topic: str,
    from_ms: int,
    to_ms: int,
    source_prefix: str,
    target_prefix: str,
    speed: float = 0.0,
    progress: bool = False,
) -> int:
    """Republish ``topic``'s records of ``[from_ms, to_ms)`` under ``target_prefix``."""
    if source_prefix == target_prefix:
        raise ValueError(
            "the target prefix must differ from the source: replay never writes "
            "into the topics it reads"
        )
    spec = next((s for s in CATALOGUE if s.name == topic), None)
    if spec is None:
        raise ValueError(f"{topic!r} is not a catalogue topic ({[s.name for s in CATALOGUE]})")
    source, target = Topics(source_prefix).name(spec), Topics(target_prefix).name(spec)
    # the namespace is created only when missing: a role's login may republish into topics
    # an admin made, without the right to create any
    with RangeReader(bootstrap) as reader:
        reader.partitions(source)  # a source this login may not read fails before any write
        if not reader.exists(target):
            create_topics(bootstrap, target_prefix)
    records = (
        # the Pacer reads ts_event_ns: here it carries the record timestamp, so --speed
        # follows the pace at which the range was recorded
        RawRecord(
            (msg.key() or b"").decode(),
            msg.value() or b"",
            source,
            msg.offset(),
            msg.timestamp()[1] * 10**6,
        )
        for msg in read_times(bootstrap, source, from_ms, to_ms)
    )
    return publish(
        records,
        bootstrap,
        target,
        speed=speed,
        progress=progress,
        desc="replay",
        time_field="record_time",
    )


@dataclass
class CheckReport:
    """What ``replay-check`` found."""

    ticks_replayed: int = 0
    decisions_checked: int = 0
    matching: int = 0
    differing: list[dict[str, object]] = field(default_factory=list)
    missing_in_audit: list[str] = field(default_factory=list)
    not_rederived: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.differing or self.missing_in_audit or self.not_rederived)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "ticks_replayed": self.ticks_replayed,
            "decisions_checked": self.decisions_checked,
            "matching": self.matching,
            "differing": self.differing,
            "missing_in_audit": self.missing_in_audit,
            "not_rederived": self.not_rederived,
        }


@dataclass
class _Held:
    """A partition's raw records waiting to be decided as one batch."""

    checked: bool  # records of the period checked (else of the warm-up before it)
    raws: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    reinjected: list[bool] = field(default_factory=list)


def replay_check(
    bootstrap: str,
    prefix: str,
    from_ms: int,
    to_ms: int,
    config_path: str | None = None,
    warm_from_ms: int = EARLIEST_MS,
    audit_grace_ms: int = 600_000,
    observe: Callable[[Output], None] | None = None,
    progress: bool = False,
) -> CheckReport:
    """Re-derive the decisions on the ``ticks.raw`` records of ``[from_ms, to_ms)`` and compare.

    Each raw partition gets its own engine state, fed its records in batches through
    ``EngineState.process`` exactly as the worker's partition runner feeds it (any split gives
    the same outputs), so validation, reordering and the data-quality monitor's policies act
    here as they did live. Operator commands (kill switch, demotions)
    that live applied are read from the audit trail and applied at the same event times, as a
    backtest of that period would. ``observe`` sees every re-derived output of the period.
    With ``progress``, a bar counts the raw records read, warm-up included.
    """
    topics = Topics(prefix)
    config = load_config(config_path, topic_prefix=prefix)
    with RangeReader(bootstrap) as reader:
        for topic in (topics.audit, topics.raw):  # a login that cannot read both fails first
            reader.partitions(topic)
    report = CheckReport()
    start_ms = min(warm_from_ms, from_ms)
    audit_to_ms = to_ms + audit_grace_ms
    commands: list[ControlCommand] = []
    # live decisions by tick, as digests: memory stays small for a long period
    recorded: dict[tuple[str, str], tuple[str, bytes]] = {}
    for msg in read_times(bootstrap, topics.audit, start_ms, audit_to_ms):
        record = AUDIT_ADAPTER.validate_json(msg.value() or b"")
        if not isinstance(record, AuditRecord):
            continue  # a summary of holds: no decision published, none to match
        commands += replay_commands([record])
        if msg.timestamp()[1] >= from_ms:
            d = record.decision
            recorded[(d.instrument, d.tick_id)] = (d.decision_id, _digest(d.to_bytes()))
    differing: dict[str, bytes] = {}

    def check(outputs: list[Output]) -> None:
        """Match each decision with the audit's, and each clean tick left undecided."""
        clean: list[tuple[str, str]] = []
        decided: set[tuple[str, str]] = set()
        for out in outputs:
            if observe is not None:
                observe(out)
            message = out.message
            if out.topic == TICKS_CLEAN:
                tick = orjson.loads(out.encoded())["tick"]
                clean.append((tick["instrument"], tick["tick_id"]))
            elif isinstance(message, Decision):
                decided.add((message.instrument, message.tick_id))
                _decided(message)
        for key in clean:  # a decision comes in the batch of its tick's verdict
            live = recorded.pop(key, None) if key not in decided else None
            if live is not None:
                report.not_rederived.append(live[0])

    def _decided(ours: Decision) -> None:
        live = recorded.pop((ours.instrument, ours.tick_id), None)
        if live is None:
            report.missing_in_audit.append(ours.decision_id)
            return
        report.decisions_checked += 1
        if live == (ours.decision_id, _digest(ours.to_bytes())):
            report.matching += 1
        elif len(differing) < MAX_DETAILED:
            differing[live[0]] = ours.to_bytes()
        else:
            report.differing.append({"decision_id": live[0], "fields": None})

    def counts(ts_ms: int | None) -> dict[str, object]:
        return {
            "replayed": report.ticks_replayed,
            "decisions": report.decisions_checked,
            "matching": report.matching,
            "record_time": utc_second(None if ts_ms is None else ts_ms * 10**6),
        }

    states: dict[int, EngineState] = {}
    # per partition, the records not decided yet, all of the warm-up or all of the period
    held: dict[int, _Held] = {}

    def decide(partition: int) -> None:
        batch = held.pop(partition, None)
        if batch is None:
            return
        state = states.get(partition)
        if state is None:
            state = states[partition] = EngineState(config)
            for command in commands:
                with suppress(CommandRefused):  # refused live too: not applied there either
                    state.on_control(command)
        offsets, flags = np.array(batch.offsets, np.int64), np.array(batch.reinjected)
        outputs = state.process(batch.raws, topics.raw, partition, offsets, flags)
        if batch.checked:
            report.ticks_replayed += len(batch.raws)
            check(outputs)

    read = 0
    last_ms: int | None = None
    with Progress(progress, "replay-check") as bar:
        for msg in read_times(bootstrap, topics.raw, start_ms, to_ms):
            read += 1
            last_ms = ts_ms = msg.timestamp()[1]
            if read % PROGRESS_EVERY == 0:
                bar.update(read, **counts(last_ms))
            partition, checked = msg.partition(), ts_ms >= from_ms
            batch = held.get(partition)
            if batch is not None and batch.checked != checked:
                decide(partition)  # the warm-up ends: its outputs are not checked
                batch = None
            if batch is None:
                batch = held[partition] = _Held(checked)
            batch.raws.append(msg.value() or b"")
            batch.offsets.append(msg.offset())
            batch.reinjected.append(is_reinjected(msg.headers()))
            if len(batch.raws) >= EngineState.chunk:
                decide(partition)
        for partition in list(held):
            decide(partition)
        for state in states.values():
            check(state.finish())
        bar.close(read, **counts(last_ms))
    if differing:  # a second, targeted pass for the field-by-field detail
        for msg in read_times(bootstrap, topics.audit, from_ms, audit_to_ms):
            entry = AUDIT_ADAPTER.validate_json(msg.value() or b"")
            if not isinstance(entry, AuditRecord):
                continue
            d = entry.decision
            ours_bytes = differing.pop(d.decision_id, None)
            if ours_bytes is not None:
                a, b = json.loads(d.to_bytes()), json.loads(ours_bytes)
                fields = {k: {"audit": a.get(k), "replay": b.get(k)} for k in a if a[k] != b.get(k)}
                report.differing.append({"decision_id": d.decision_id, "fields": fields})
        report.differing.sort(key=lambda x: str(x["decision_id"]))
    return report


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def run_replay_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise replay`` and return the exit code."""
    try:
        sent = replay_topic(
            resolve_bootstrap(args),
            args.topic,
            parse_time_ms(args.from_),
            parse_time_ms(args.to),
            args.topic_prefix,
            args.to_prefix,
            args.speed,
            progress=wants_progress(args),
        )
    except (ValueError, RangeReadError) as exc:
        print(f"tickwise replay: {exc}", file=sys.stderr)
        return 2
    target = Topics(args.to_prefix).name(next(s for s in CATALOGUE if s.name == args.topic))
    print(f"republished {sent} records to {target}")
    return 0


def run_check_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise replay-check`` and return the exit code."""
    try:
        report = replay_check(
            resolve_bootstrap(args),
            args.topic_prefix,
            parse_time_ms(args.from_),
            parse_time_ms(args.to),
            args.config,
            parse_time_ms(args.warm_from) if args.warm_from else EARLIEST_MS,
            progress=wants_progress(args),
        )
    except (ValueError, RangeReadError) as exc:
        print(f"tickwise replay-check: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.ok else 1

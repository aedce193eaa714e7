"""``tickwise quarantine stats|show|replay``: read, count and re-inject quarantined messages.

Re-injection is for after a configuration fix (an instrument added to the allow-list, an
outlier limit widened): the kept raw bytes go back to ``ticks.raw`` exactly as they arrived,
keyed by instrument, with a ``tickwise-reinjected`` header naming the original source. The
validator recognises the header and checks the message again with every stateless rule and the
duplicate check, but not with the rules that compare it with the instrument's recent history
(out-of-order, staleness, future, outlier): that history has moved on since, so they would
reject it forever. The duplicate check is what makes replay safe to repeat: a message that was
never accepted is not in the dedup state, so its first re-injection passes and a second one is
a ``DUPLICATE`` (within the dedup window). A re-injected message is a new raw message with a new
offset, so ``raw = clean + quarantined`` still holds on the topics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from tickwise.schemas.quarantine import REINJECTED_HEADER, QuarantineRecord, ReasonCode
from tickwise.schemas.topics import Topics
from tickwise.streams.live.bootstrap import resolve_bootstrap
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import consumer, messages
from tickwise.streams.operators.validation.records import raw_bytes
from tickwise.streams.sources import RawRecord


@dataclass(frozen=True)
class Filter:
    """Which quarantine records a command applies to; unset fields match everything."""

    reasons: frozenset[str] | None = None
    instruments: frozenset[str] | None = None
    since_ms: int | None = None  # the quarantine message's Kafka timestamp (when quarantined)
    until_ms: int | None = None

    def __call__(self, record: QuarantineRecord, ts_ms: int) -> bool:
        """Whether ``record`` (quarantined at ``ts_ms``) is selected.

        Examples
        --------
        >>> from tickwise.schemas.ticks import SourceRef
        >>> r = QuarantineRecord(reason=ReasonCode.DUPLICATE, detail="d", raw="x",
        ...     raw_encoding="utf-8", source=SourceRef(topic="t", partition=0, offset=0))
        >>> Filter(reasons=frozenset({"DUPLICATE"}))(r, 0), Filter(since_ms=5)(r, 0)
        (True, False)
        """
        if self.reasons is not None and record.reason.value not in self.reasons:
            return False
        if self.instruments is not None and (record.instrument or "") not in self.instruments:
            return False
        if self.since_ms is not None and ts_ms < self.since_ms:
            return False
        return self.until_ms is None or ts_ms < self.until_ms


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds from an ISO 8601 time (naive means UTC) or an integer of epoch ms."""
    if text.lstrip("-").isdigit():
        return int(text)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def read_quarantine(
    bootstrap: str, topic: str, idle: float = 3.0, timeout: float = 300.0
) -> Iterator[tuple[QuarantineRecord, int]]:
    """Every record on the quarantine topic with its Kafka timestamp (ms), until idle."""
    c = consumer(bootstrap, [topic])
    try:
        for msg in messages(c, idle_timeout=idle, deadline=time.monotonic() + timeout):
            record = QuarantineRecord.model_validate_json(msg.value() or b"")
            yield record, msg.timestamp()[1]
    finally:
        c.close()


def stats(records: Iterator[tuple[QuarantineRecord, int]]) -> dict[str, object]:
    """Counts by reason, by instrument, and by (instrument, reason)."""
    by_reason: Counter[str] = Counter()
    by_instrument: Counter[str] = Counter()
    by_both: Counter[tuple[str, str]] = Counter()
    for record, _ in records:
        instrument = record.instrument or "(unknown)"
        by_reason[record.reason.value] += 1
        by_instrument[instrument] += 1
        by_both[(instrument, record.reason.value)] += 1
    table: dict[str, dict[str, int]] = {}
    for (instrument, reason), n in sorted(by_both.items()):
        table.setdefault(instrument, {})[reason] = n
    return {
        "total": sum(by_reason.values()),
        "by_reason": dict(by_reason.most_common()),
        "by_instrument": dict(by_instrument.most_common()),
        "by_instrument_and_reason": table,
    }


def reinjection(record: QuarantineRecord) -> RawRecord:
    """The raw message that puts ``record`` back on ``ticks.raw``, marked as re-injected."""
    origin = json.dumps(
        {"source": record.source.model_dump(), "reason": record.reason.value}
    ).encode()
    return RawRecord(
        key=record.instrument or "",
        payload=raw_bytes(record),
        origin="quarantine",
        index=record.source.offset,
        headers=((REINJECTED_HEADER, origin),),
    )


def _filter(args: argparse.Namespace) -> Filter:
    return Filter(
        reasons=frozenset(args.reason) if args.reason else None,
        instruments=frozenset(args.instrument) if args.instrument else None,
        since_ms=parse_time_ms(args.since) if args.since else None,
        until_ms=parse_time_ms(args.until) if args.until else None,
    )


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise quarantine stats|show|replay`` and return the exit code."""
    bootstrap = resolve_bootstrap(args)
    topics = Topics(args.topic_prefix)
    try:
        chosen = _filter(args)
    except ValueError as exc:
        print(f"tickwise quarantine: bad time: {exc}", file=sys.stderr)
        return 2
    unknown = set(args.reason or ()) - {r.value for r in ReasonCode}
    if unknown:
        print(f"tickwise quarantine: unknown reason codes {sorted(unknown)}", file=sys.stderr)
        return 2
    selected = (
        (r, ts)
        for r, ts in read_quarantine(bootstrap, topics.quarantine, args.idle)
        if chosen(r, ts)
    )
    if args.action == "stats":
        print(json.dumps(stats(selected), indent=2))
        return 0
    if args.action == "show":
        for n, (record, ts) in enumerate(selected):
            if args.limit is not None and n >= args.limit:
                break
            if args.json:
                print(record.model_dump_json())
            else:
                when = datetime.fromtimestamp(ts / 1000, UTC).isoformat(timespec="milliseconds")
                src = f"{record.source.topic}[{record.source.partition}]@{record.source.offset}"
                print(f"{when} {record.reason.value:<18} {record.instrument or '-':<8} {src}")
                print(f"    {record.detail}")
                print(f"    raw ({record.raw_encoding}): {record.raw[:200]}")
        return 0
    records = [reinjection(r) for r, _ in selected]
    if args.limit is not None:
        records = records[: args.limit]
    if args.dry_run:
        print(f"would re-inject {len(records)} records to {topics.raw}")
        return 0
    sent = publish(records, bootstrap, topics.raw)
    print(f"re-injected {sent} records to {topics.raw} (header {REINJECTED_HEADER})")
    return 0

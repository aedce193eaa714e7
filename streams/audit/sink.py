"""``tickwise audit sink``: the ``audit`` topic into the audit store, exactly once per record.

The worker publishes each record once (in its transaction), but the sink itself may read a record
again: offsets are committed only after the store has committed the batch, so a sink that
crashes in between re-reads the batch rather than loses it, and the store ignores an
``audit_id`` it already has. A message that is not an audit record goes to
``ticks.quarantine`` with its bytes and a reason.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from confluent_kafka import Consumer
from pydantic import ValidationError

from tickwise.schemas.decisions import AUDIT_ADAPTER
from tickwise.schemas.quarantine import ReasonCode
from tickwise.schemas.ticks import SourceRef
from tickwise.schemas.topics import Topics
from tickwise.streams.audit.store import AuditStore, open_store
from tickwise.streams.live.bootstrap import resolve_bootstrap
from tickwise.streams.live.feed import publish
from tickwise.streams.live.security import env_client_config
from tickwise.streams.operators.validation import quarantine
from tickwise.streams.sources import RawRecord

BATCH = 500


def sink(
    bootstrap: str,
    topics: Topics,
    store: AuditStore,
    group: str,
    idle_exit: float | None = None,
    max_seconds: float | None = None,
) -> tuple[int, int]:
    """Copy ``audit`` into ``store``; return (records read, records new in the store)."""
    c = Consumer(
        {
            **env_client_config(),
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topics.audit])
    read = new = 0
    last = started = time.monotonic()
    try:
        while max_seconds is None or time.monotonic() - started < max_seconds:
            batch = c.consume(BATCH, timeout=0.5)
            if not batch:
                if idle_exit is not None and time.monotonic() - last > idle_exit:
                    break
                continue
            last = time.monotonic()
            bodies, bad = [], []
            for msg in batch:
                if msg.error():
                    raise RuntimeError(f"audit sink consumer error: {msg.error()}")
                raw = msg.value() or b""
                try:
                    AUDIT_ADAPTER.validate_json(raw)  # a record or a hold summary
                    bodies.append(raw)
                except ValidationError as exc:
                    src = SourceRef(
                        topic=msg.topic(), partition=msg.partition(), offset=msg.offset()
                    )
                    record = quarantine(raw, src, ReasonCode.SCHEMA_VIOLATION, f"audit: {exc}")
                    bad.append(RawRecord("", record.to_bytes(), "audit-sink", msg.offset()))
            if bad:
                publish(bad, bootstrap, topics.quarantine)
            read += len(batch)
            new += store.append(bodies)
            c.commit(asynchronous=False)  # only after the store committed
    finally:
        c.close()
    return read, new


def run_sink(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    try:
        if args.from_file:
            lines = Path(args.from_file).read_bytes().splitlines()
            added = store.append(line for line in lines if line.strip())
            print(f"loaded {added} new records from {args.from_file} ({len(lines)} lines)")
            return 0
        topics = Topics(args.topic_prefix)
        read, new = sink(
            resolve_bootstrap(args),
            topics,
            store,
            f"{args.topic_prefix}tickwise-audit-sink",
            args.idle_exit,
        )
        print(f"read {read} audit messages, {new} new records stored")
        return 0
    finally:
        store.close()

"""Audit invariants on a real broker: every decided tick in the chain exactly once (a record,
or counted in a hold summary), in a store that verifies, fed by the audit sink even when the
topic holds duplicates."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from stubs import audit_entries, open_at_end

from tickwise.schemas.decisions import AUDIT_ADAPTER, AuditRecord, HoldSummary
from tickwise.schemas.topics import Topics
from tickwise.streams.audit.sink import sink
from tickwise.streams.audit.store import SqliteAuditStore
from tickwise.streams.config import load_config
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.sources import RawRecord, synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_every_decided_tick_is_in_the_chain_exactly_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    config = tmp_path / "tickwise.toml"
    config.write_text("[model]\nwarmup_labels = 5\n[label]\nhorizon_s = 0.5\n")
    records = list(synthetic(seed=21, count=3000, bad_rate=0.01))
    worker = spawn_worker(
        kafka_bootstrap,
        topic_prefix,
        f"inv-{uuid.uuid4().hex[:8]}",
        str(config),
        str(tmp_path / "worker.log"),
    )
    try:
        assert publish(records, kafka_bootstrap, topics.raw) == len(records)
        # the same records in-process tell what to expect: every decided tick (each HOLD its
        # own record), and the chain of the default (HOLDs summarised)
        from tickwise.replay.engine import run_backtest

        every = config.with_name("every.toml")
        every.write_text(config.read_text() + '[audit]\nholds = "each"\n')
        decided = run_backtest(records, load_config(every), tmp_path / "each").decisions
        run_backtest(records, load_config(config), tmp_path / "bt")
        chain = (tmp_path / "bt" / "audit.jsonl").read_bytes().splitlines()
        expected = len(open_at_end(chain))  # the runs replay's end closed stay open live
        kept = set(open_at_end(chain))
        open_holds = sum(
            e.holds
            for line, e in zip(chain, audit_entries(chain), strict=True)
            if isinstance(e, HoldSummary) and line not in kept
        )
        assert decided > 1000
        audit = read_values(kafka_bootstrap, topics.audit, expected, 180)
    finally:
        stop_process(worker)

    entries = [AUDIT_ADAPTER.validate_json(v) for _, v in audit]
    records = [e for e in entries if isinstance(e, AuditRecord)]
    summarised = sum(e.holds for e in entries if isinstance(e, HoldSummary))
    assert len(entries) == expected and summarised
    # every decided tick is in the chain exactly once: a record, or counted in a summary
    assert len(records) + summarised + open_holds == decided
    assert len({r.decision.decision_id for r in records}) == len(records)

    # an at-least-once redelivery puts some records on the topic twice: the store keeps one
    again = [
        RawRecord(r.instrument, r.to_bytes(), "redelivery", i) for i, r in enumerate(entries[:200])
    ]
    publish(again, kafka_bootstrap, topics.audit)
    store = SqliteAuditStore(str(tmp_path / "audit.db"))
    read, new = sink(
        kafka_bootstrap, topics, store, f"{topic_prefix}sink", idle_exit=5, max_seconds=120
    )
    assert read == expected + len(again)
    assert new == store.count() == expected
    problems, heads = store.verify()
    assert problems == []
    assert sum(seq + 1 for seq, _ in heads.values()) == expected

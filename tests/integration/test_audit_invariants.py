"""Audit invariants on a real broker: one audit record per signal, exactly, in a store that
verifies, fed by the audit sink even when the topic holds duplicates."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from schemas.decisions import AuditRecord, Signal
from schemas.topics import Topics
from streams.audit.sink import sink
from streams.audit.store import SqliteAuditStore
from streams.config import load_config
from streams.live.admin import create_topics
from streams.live.feed import publish
from streams.live.tap import read_values, spawn_worker, stop_process
from streams.sources import RawRecord, synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_audit_records_equal_signals_processed_exactly(
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
        # the same records through the pipeline in-process tell how many signals to expect
        from replay.backtest import run_backtest

        expected = run_backtest(records, load_config(config), tmp_path / "bt").signals
        assert expected > 1000
        signals = read_values(kafka_bootstrap, topics.signals, expected, 180)
        audit = read_values(kafka_bootstrap, topics.audit, expected, 60)
    finally:
        stop_process(worker)

    signal_ids = {Signal.model_validate_json(v).signal_id for _, v in signals}
    assert len(signals) == len(signal_ids) == expected
    audited = [AuditRecord.model_validate_json(v) for _, v in audit]
    assert sorted(r.signal.signal_id for r in audited) == sorted(signal_ids)

    # an at-least-once redelivery puts some records on the topic twice: the store keeps one
    again = [
        RawRecord(r.instrument, r.to_bytes(), "redelivery", i) for i, r in enumerate(audited[:200])
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

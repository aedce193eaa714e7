"""Backtest = live: the same ticks through Kafka and through `tickwise backtest` decide alike.

The live side is the real thing: topics with three partitions on a real broker, `tickwise
worker` as its own process, the feed's producer. The replay side is `run_backtest` in-process.
Decisions must match byte for byte, per instrument in order (instruments are the partition key,
so only their interleaving may differ).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from stubs import open_at_end

from tickwise.replay.engine import run_backtest
from tickwise.schemas.decisions import AUDIT_ADAPTER, Decision, HoldSummary
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.topics import Topics
from tickwise.streams.config import load_config
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.operators.audit import verify_chain
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def by_instrument(lines: list[bytes], parse=Decision.model_validate_json) -> dict:
    out: dict[str, list[bytes]] = defaultdict(list)
    for line in lines:
        out[parse(line).instrument].append(line)
    return dict(out)


def entry(line: bytes):
    return AUDIT_ADAPTER.validate_json(line)


@pytest.mark.parametrize(
    ("sample_ms", "holds"),
    [(0.0, "summary"), (100.0, "each")],
    ids=["every-tick-holds-summarised", "sampled-100ms-holds-each"],
)
def test_live_decisions_equal_backtest_decisions(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, sample_ms: float, holds: str
) -> None:
    """With a decision cadence too: buckets follow event time, so a worker that reads the
    ticks in other batches and another interleaving samples the same ticks; and with HOLDs
    summarised, whose periods follow event time too."""
    records = list(synthetic(seed=11, count=6000, bad_rate=0.02))
    config_file = tmp_path / "tickwise.toml"
    config_file.write_text(
        f'[features]\nsample_ms = {sample_ms}\n[audit]\nholds = "{holds}"\nhold_summary_s = 5\n'
    )
    config = load_config(config_file, topic_prefix=topic_prefix)

    result = run_backtest(records, config, tmp_path / "bt")
    replay_decisions = (tmp_path / "bt" / "decisions.jsonl").read_bytes().splitlines()
    # the runs of holds the end of the input closed are still open in the live worker
    replay_audit = open_at_end((tmp_path / "bt" / "audit.jsonl").read_bytes().splitlines())
    replay_quarantine = [
        QuarantineRecord.model_validate_json(x)
        for x in (tmp_path / "bt" / "quarantine.jsonl").read_bytes().splitlines()
    ]
    if holds == "each":
        assert result.decisions > 300, "the model must decide"
    else:
        summaries = [e for e in map(entry, replay_audit) if isinstance(e, HoldSummary)]
        assert result.decisions > 5 and len(summaries) > 50, "the model must decide"

    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    worker = spawn_worker(
        kafka_bootstrap,
        topic_prefix,
        f"parity-{uuid.uuid4().hex[:8]}",
        config=str(config_file),
        log_path=str(tmp_path / "worker.log"),
    )  # checkpoints in the topic, as by default
    try:
        assert publish(records, kafka_bootstrap, topics.raw) == len(records)
        live_decisions = read_values(kafka_bootstrap, topics.decisions, len(replay_decisions), 180)
        live_audit = read_values(kafka_bootstrap, topics.audit, len(replay_audit), 60)
        live_quarantine = read_values(
            kafka_bootstrap, topics.quarantine, len(replay_quarantine), 60
        )
        live_clean = read_values(kafka_bootstrap, topics.clean, result.clean, 60)
    finally:
        stop_process(worker)

    live_lines = [value for _, value in live_decisions]
    assert len(live_lines) == len(replay_decisions)
    assert by_instrument(live_lines) == by_instrument(replay_decisions)
    # every message is keyed by its instrument, so consumers can rely on per-key order
    assert all(
        key == Decision.model_validate_json(v).instrument.encode() for key, v in live_decisions
    )

    live_audit_lines = [value for _, value in live_audit]
    assert by_instrument(live_audit_lines, entry) == by_instrument(replay_audit, entry)
    for lines in by_instrument(live_audit_lines, entry).values():
        assert verify_chain(map(entry, lines)) == []

    # conservation: every raw tick is clean or quarantined, for the same reasons as in replay
    live_q = [QuarantineRecord.model_validate_json(v) for _, v in live_quarantine]
    assert len(live_clean) + len(live_q) == len(records)
    key = lambda q: (q.reason, q.raw, q.tick_id)  # noqa: E731 - source offsets differ by design
    assert sorted(map(key, live_q)) == sorted(map(key, replay_quarantine))
    injected = sorted(r.injected for r in records if r.injected)
    assert sorted(q.reason.value for q in live_q) == injected

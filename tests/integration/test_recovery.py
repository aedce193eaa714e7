"""A worker SIGKILLed mid-stream and restarted decides exactly like an uninterrupted run.

Real broker, real ``tickwise worker`` processes, checkpoints on disk. After the restart every
decision, audit record and clean tick appears exactly once: the same bytes, per instrument in
the same order, as the backtest of the same records (which the parity test equates with an
uninterrupted live run).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from replay.backtest import run_backtest
from schemas.decisions import AuditRecord, Decision
from schemas.topics import Topics
from streams.config import load_config
from streams.live.admin import create_topics
from streams.live.feed import publish
from streams.live.tap import consumer, messages, read_values, spawn_worker, stop_process
from streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def count_until(bootstrap: str, topic: str, target: int, timeout: float) -> int:
    """Count messages on ``topic`` until ``target`` is reached or ``timeout`` passes."""
    c = consumer(bootstrap, [topic])
    n = 0
    try:
        for _ in messages(c, idle_timeout=timeout, deadline=time.monotonic() + timeout):
            n += 1
            if n >= target:
                break
    finally:
        c.close()
    return n


def by_instrument(lines: list[bytes], model: type) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for line in lines:
        out.setdefault(model.model_validate_json(line).instrument, []).append(line)
    return out


def test_sigkill_and_restart_lose_and_repeat_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text(f'[checkpoint]\ndir = "{tmp_path / "ckpt"}"\nevery = 250\n')
    config = load_config(toml, topic_prefix=topic_prefix)
    records = list(synthetic(seed=13, count=3600, bad_rate=0.01))
    run_backtest(records, config, tmp_path / "bt")
    expected = (tmp_path / "bt" / "decisions.jsonl").read_bytes().splitlines()
    expected_audit = (tmp_path / "bt" / "audit.jsonl").read_bytes().splitlines()

    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    app_id = f"recovery-{uuid.uuid4().hex[:8]}"
    first = spawn_worker(kafka_bootstrap, topic_prefix, app_id, str(toml), str(tmp_path / "w1.log"))
    try:
        assert publish(records, kafka_bootstrap, topics.raw) == len(records)
        reached = count_until(kafka_bootstrap, topics.decisions, len(expected) // 3, 180)
        assert reached >= len(expected) // 3, "the first worker must get well into the stream"
    finally:
        first.kill()  # SIGKILL: no shutdown, no final commit, no final checkpoint
        first.wait(30)
    assert list((tmp_path / "ckpt").rglob("p*.pkl")), "checkpoints were written before the kill"

    second = spawn_worker(
        kafka_bootstrap, topic_prefix, app_id, str(toml), str(tmp_path / "w2.log")
    )
    try:
        live = [v for _, v in read_values(kafka_bootstrap, topics.decisions, len(expected), 240)]
        # a little longer: anything beyond the expected count would be a duplicate
        extra = count_until(kafka_bootstrap, topics.decisions, len(expected) + 1, 15)
        live_audit = [v for _, v in read_values(kafka_bootstrap, topics.audit, len(expected), 60)]
    finally:
        stop_process(second)

    restarts = (tmp_path / "w2.log").read_text()
    assert "decide: partition" in restarts and "(checkpoint found)" in restarts, restarts[-2000:]
    duplicates = [k for k, n in Counter(live).items() if n > 1]
    assert duplicates == []
    assert extra == len(expected) and len(live) == len(expected)
    assert by_instrument(live, Decision) == by_instrument(expected, Decision)
    assert by_instrument(live_audit, AuditRecord) == by_instrument(expected_audit, AuditRecord)

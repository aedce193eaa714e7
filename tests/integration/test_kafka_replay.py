"""Replay from a real broker: a time range is republished into another namespace, and a live
period's decisions are re-derived from its recorded input and checked against the audit trail.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
from confluent_kafka import Producer

from replay.kafka_replay import replay_check, replay_topic
from schemas.ticks import CleanTick, SourceRef
from schemas.topics import Topics
from streams.cli import main
from streams.config import load_config
from streams.live.admin import create_topics
from streams.live.tap import read_values
from streams.pipeline import Pipeline
from streams.sources import synthetic

pytestmark = pytest.mark.kafka

STEP_MS = 10


def base_ms() -> int:
    return (int(time.time()) - 3600) * 1000  # an hour ago: well inside the topics' retention


def clean_ticks(count: int, seed: int) -> list[CleanTick]:
    pipeline = Pipeline(load_config())
    out = []
    for rec in synthetic(seed=seed, count=count):
        verdict = pipeline.validate(
            rec.payload, SourceRef(topic="t", partition=0, offset=rec.index)
        )
        assert isinstance(verdict, CleanTick)
        out.append(verdict)
    return out


def produce(bootstrap: str, topic: str, items: list[tuple[str, bytes, int]]) -> None:
    """Produce (key, value, timestamp ms) in order, idempotently; fail on any delivery error."""
    errors: list[object] = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value, ts in items:
        producer.produce(
            topic,
            value,
            key.encode(),
            timestamp=ts,
            on_delivery=lambda e, _m: errors.append(e) if e else None,
        )
        producer.poll(0)
    assert producer.flush(60) == 0 and errors == []


def per_key(pairs: list[tuple[bytes | None, bytes]]) -> dict[bytes | None, list[bytes]]:
    out: dict[bytes | None, list[bytes]] = defaultdict(list)
    for key, value in pairs:
        out[key].append(value)
    return dict(out)


def test_replay_republishes_exactly_the_time_range(kafka_bootstrap: str, topic_prefix: str) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    ticks = clean_ticks(600, seed=3)
    t0 = base_ms()
    items = [(c.tick.instrument, c.to_bytes(), t0 + i * STEP_MS) for i, c in enumerate(ticks)]
    produce(kafka_bootstrap, Topics(topic_prefix).clean, items)

    target = f"{topic_prefix}replay."
    lo, hi = t0 + 100 * STEP_MS, t0 + 400 * STEP_MS
    started = time.monotonic()
    sent = replay_topic(kafka_bootstrap, "ticks.clean", lo, hi, topic_prefix, target, speed=10.0)
    paced = time.monotonic() - started
    assert sent == 300
    assert paced >= (299 * STEP_MS / 1000) / 10.0  # the recorded pace, ten times faster

    got = read_values(kafka_bootstrap, Topics(target).clean, 300, timeout=60)
    expected = [(k.encode(), v) for k, v, ts in items if lo <= ts < hi]
    assert len(got) == 300
    assert per_key(got) == per_key(expected)  # same keys, same bytes, per-instrument order

    with pytest.raises(ValueError, match="differ"):
        replay_topic(kafka_bootstrap, "ticks.clean", lo, hi, topic_prefix, topic_prefix)


def test_replay_check_finds_exactly_the_decisions_that_differ(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    topics = Topics(topic_prefix)
    live = Pipeline(load_config(topic_prefix=topic_prefix))  # what the worker would have done
    t0 = base_ms()
    clean_items, audit_items, window = [], [], []
    lo, hi = t0 + 1500 * STEP_MS, t0 + 2600 * STEP_MS
    for i, clean in enumerate(clean_ticks(3000, seed=9)):
        ts = t0 + i * STEP_MS
        clean_items.append((clean.tick.instrument, clean.to_bytes(), ts))
        out = live.decide(clean)
        if out.audit is not None:
            audit_items.append((clean.tick.instrument, out.audit, ts))
            if lo <= ts < hi:
                window.append(out.audit)
    assert len(window) > 500
    tampered, dropped = window[40], window[90]
    altered = tampered.decision.model_copy(update={"quantity": tampered.decision.quantity + 1})
    trail = []
    for key, record, ts in audit_items:
        if record is dropped:
            continue
        if record is tampered:
            record = record.model_copy(update={"decision": altered})
        trail.append((key, record.to_bytes(), ts))
    produce(kafka_bootstrap, topics.clean, clean_items)
    produce(kafka_bootstrap, topics.audit, trail)

    report = replay_check(kafka_bootstrap, topic_prefix, lo, hi)
    assert report.decisions_checked == len(window) - 1
    assert report.matching == len(window) - 2
    assert [d["decision_id"] for d in report.differing] == [tampered.decision.decision_id]
    assert set(report.differing[0]["fields"]) == {"quantity"}
    assert report.missing_in_audit == [dropped.decision.decision_id]
    assert report.not_rederived == []
    assert not report.ok

    # starting the input at --from instead of where the worker began loses the model's state
    cold = replay_check(kafka_bootstrap, topic_prefix, lo, hi, warm_from_ms=lo)
    assert len(cold.differing) + len(cold.not_rederived) > 1

    args = ["replay-check", "--prefix", topic_prefix, "--from", str(lo), "--to", str(hi)]
    assert main([*args, "--bootstrap-servers", kafka_bootstrap]) == 1


def test_replay_check_of_an_untouched_trail_is_clean(
    kafka_bootstrap: str, topic_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    topics = Topics(topic_prefix)
    live = Pipeline(load_config(topic_prefix=topic_prefix))
    t0 = base_ms()
    clean_items, audit_items = [], []
    for i, clean in enumerate(clean_ticks(1500, seed=4)):
        clean_items.append((clean.tick.instrument, clean.to_bytes(), t0 + i * STEP_MS))
        out = live.decide(clean)
        if out.audit is not None:
            audit_items.append((clean.tick.instrument, out.audit.to_bytes(), t0 + i * STEP_MS))
    produce(kafka_bootstrap, topics.clean, clean_items)
    produce(kafka_bootstrap, topics.audit, audit_items)
    args = ["replay-check", "--prefix", topic_prefix, "--from", "0", "--to", str(t0 + 10**6)]
    assert main([*args, "--bootstrap-servers", kafka_bootstrap]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["ok"] and printed["matching"] == len(audit_items) > 100

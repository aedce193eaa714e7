"""Replay from a real broker: a time range is republished into another namespace, and a live
period's decisions are re-derived from its recorded input and checked against the audit trail.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import KafkaError, Message, Producer

from tests.stubs import decide
from tickwise.replay.engine import run_backtest
from tickwise.replay.kafka_replay import replay_check, replay_topic
from tickwise.schemas.decisions import AuditRecord, Decision
from tickwise.schemas.ticks import CleanTick
from tickwise.schemas.topics import ALERTS, AUDIT, TICKS_CLEAN, Topics
from tickwise.streams.cli import main
from tickwise.streams.config import load_config
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.state import EngineState, Output
from tickwise.streams.live.tap import read_values
from tickwise.streams.sources import synthetic

pytestmark = pytest.mark.kafka

STEP_MS = 10
RawItem = tuple[str, bytes, int]  # key, value, record timestamp (ms)


def base_ms() -> int:
    return (int(time.time()) - 3600) * 1000  # an hour ago: well inside the topics' retention


def clean_ticks(count: int, seed: int) -> list[CleanTick]:
    """The clean ticks the engine publishes for a synthetic feed without bad ticks."""
    stream = decide("engine", synthetic(seed=seed, count=count), load_config())
    out = stream.messages(TICKS_CLEAN.name)
    assert len(out) == count
    return out


def produce(bootstrap: str, topic: str, items: list[RawItem]) -> list[tuple[int, int]]:
    """Produce (key, value, timestamp ms) in order, idempotently; fail on any delivery error.

    Returns where each item landed: (partition, offset)."""
    errors: list[object] = []
    placed: list[tuple[int, int]] = [(-1, -1)] * len(items)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})

    def delivered(i: int) -> Callable[[KafkaError | None, Message], None]:
        def report(error: KafkaError | None, msg: Message) -> None:
            if error is not None:
                errors.append(error)
            else:
                placed[i] = (msg.partition(), msg.offset())

        return report

    for i, (key, value, ts) in enumerate(items):
        producer.produce(topic, value, key.encode(), timestamp=ts, on_delivery=delivered(i))
        producer.poll(0)
    assert producer.flush(60) == 0 and errors == []
    return placed


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


def raw_items(count: int, seed: int, t0: int, bad_rate: float = 0.0) -> list[RawItem]:
    return [
        (rec.key, rec.payload, t0 + i * STEP_MS)
        for i, rec in enumerate(synthetic(seed=seed, count=count, bad_rate=bad_rate))
    ]


def worker_outputs(
    prefix: str, items: list[RawItem], placed: list[tuple[int, int]], config: str | None = None
) -> list[tuple[int, Output]]:
    """(raw record timestamp, output) as the worker makes them: an engine state per raw
    partition, each fed its partition's records in offset order, one message a batch (so each
    output is stamped with the record that led to it)."""
    raw = Topics(prefix).raw
    states: dict[int, EngineState] = defaultdict(lambda: EngineState(load_config(config)))
    out = []
    for (_, payload, ts), (p, offset) in sorted(
        zip(items, placed, strict=True), key=lambda x: x[1]
    ):
        at, fresh = np.array([offset], np.int64), np.zeros(1, np.bool_)
        out += [(ts, o) for o in states[p].process([payload], raw, p, at, fresh)]
    return out


def test_replay_check_finds_exactly_the_decisions_that_differ(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    topics = Topics(topic_prefix)
    t0 = base_ms()
    items = raw_items(3000, seed=9, t0=t0)
    placed = produce(kafka_bootstrap, topics.raw, items)
    lo, hi = t0 + 1500 * STEP_MS, t0 + 2600 * STEP_MS
    config = tmp_path / "every.toml"  # every decision published: many to tamper with
    config.write_text('[audit]\nholds = "each"\n')
    audit = [
        (ts, out.message)
        for ts, out in worker_outputs(topic_prefix, items, placed, str(config))
        if isinstance(out.message, AuditRecord)
    ]
    window = [record for ts, record in audit if lo <= ts < hi]
    assert len(window) > 500
    tampered, dropped = window[40], window[90]
    altered = tampered.decision.model_copy(update={"quantity": tampered.decision.quantity + 1})
    trail = []
    for ts, record in audit:
        if record is dropped:
            continue
        if record is tampered:
            record = record.model_copy(update={"decision": altered})
        trail.append((record.decision.instrument, record.to_bytes(), ts))
    produce(kafka_bootstrap, topics.audit, trail)

    report = replay_check(kafka_bootstrap, topic_prefix, lo, hi, str(config))
    assert report.ticks_replayed == 1100
    assert report.decisions_checked == len(window) - 1
    assert report.matching == len(window) - 2
    assert [d["decision_id"] for d in report.differing] == [tampered.decision.decision_id]
    assert set(report.differing[0]["fields"]) == {"quantity"}
    assert report.missing_in_audit == [dropped.decision.decision_id]
    assert report.not_rederived == []
    assert not report.ok

    # starting the input at --from instead of where the worker began loses the model's state
    cold = replay_check(kafka_bootstrap, topic_prefix, lo, hi, str(config), warm_from_ms=lo)
    assert len(cold.differing) + len(cold.not_rederived) > 1

    args = ["replay-check", "--topic-prefix", topic_prefix, "--from", str(lo), "--to", str(hi)]
    assert main([*args, "--config", str(config), "--bootstrap-servers", kafka_bootstrap]) == 1


def test_replay_check_of_an_untouched_trail_is_clean(
    kafka_bootstrap: str, topic_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    topics = Topics(topic_prefix)
    t0 = base_ms()
    items = raw_items(1500, seed=4, t0=t0)
    placed = produce(kafka_bootstrap, topics.raw, items)
    audit = [
        (out.key or "", out.encoded(), ts)
        for ts, out in worker_outputs(topic_prefix, items, placed)
        if out.topic == AUDIT
    ]
    produce(kafka_bootstrap, topics.audit, audit)
    args = ["replay-check", "--topic-prefix", topic_prefix, "--from", "0", "--to", str(t0 + 10**6)]
    assert main([*args, "--bootstrap-servers", kafka_bootstrap]) == 0
    printed = json.loads(capsys.readouterr().out)
    # the decisions' records are matched; the summaries of holds between them are not decisions
    records = [body for _, body, _ in audit if b'"kind":"hold_summary"' not in body]
    assert len(records) < len(audit)
    assert printed["ok"] and printed["matching"] == len(records) > 0


def test_replay_check_runs_the_data_quality_monitor_as_the_backtest_does(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Bad ticks raise data-quality alerts whose policy halts trading: replay-check derives the
    alerts the backtest derives, and the decisions the halt leads to match the worker's."""
    config = tmp_path / "dq.toml"
    config.write_text(
        "[label]\nhorizon_s = 0.5\n[model]\nwarmup_labels = 5\n"
        "[monitor]\nquarantine_window = 50\nmax_quarantine_rate = 0.08\n"
        '[monitor.policies]\nDATA_QUALITY = "halt_instrument"\n'
    )
    create_topics(kafka_bootstrap, topic_prefix)
    topics = Topics(topic_prefix)
    t0 = base_ms()
    items = raw_items(2000, seed=6, t0=t0, bad_rate=0.1)
    placed = produce(kafka_bootstrap, topics.raw, items)
    live = worker_outputs(topic_prefix, items, placed, str(config))
    produce(
        kafka_bootstrap,
        topics.audit,
        [(out.key or "", out.encoded(), ts) for ts, out in live if out.topic == AUDIT],
    )
    run_backtest(
        synthetic(seed=6, count=2000, bad_rate=0.1),
        load_config(str(config)),
        tmp_path / "backtest",
    )
    expected = Counter((tmp_path / "backtest" / "alerts.jsonl").read_bytes().splitlines())
    assert any(b'"DATA_QUALITY"' in line for line in expected)
    halted = [o.message for _, o in live if isinstance(o.message, Decision)]
    assert any(not d.approved for d in halted) and any(d.approved for d in halted)

    derived: list[Output] = []
    report = replay_check(
        kafka_bootstrap, topic_prefix, 0, t0 + 10**6, str(config), observe=derived.append
    )
    assert report.ok and report.matching == len(halted)
    assert Counter(o.encoded() for o in derived if o.topic == ALERTS) == expected

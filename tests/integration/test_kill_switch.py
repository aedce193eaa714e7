"""The kill switch on a real broker: orders stop within a second, and stay stopped on restart."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from tickwise.schemas.decisions import AUDIT_ADAPTER, Action, AuditRecord, ControlCommand, Decision
from tickwise.schemas.topics import Topics
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.control import send_commands
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import consumer, messages, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG = """
[model]
warmup_labels = 5
[label]
horizon_s = 0.5
[risk]
max_orders = 0
"""


def read_timed(bootstrap: str, topic: str, idle: float, deadline: float) -> list[tuple[int, bytes]]:
    """(Kafka create time in ms, value) of every message until ``idle`` s pass without one."""
    c = consumer(bootstrap, [topic])
    try:
        return [(m.timestamp()[1], m.value() or b"") for m in messages(c, idle, deadline)]
    finally:
        c.close()


def is_order(d: Decision) -> bool:
    return d.approved and d.action is not Action.HOLD


def kill(scope: str, state: str, cid: str) -> ControlCommand:
    return ControlCommand(
        command_id=cid,
        command="kill_switch_on" if state == "on" else "kill_switch_off",
        scope=scope,
        reason="integration test",
        operator="pytest",
        ts_event_ns=time.time_ns(),
    )


def test_kill_switch_stops_orders_within_a_second_and_survives_a_restart(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    config = tmp_path / "tickwise.toml"
    config.write_text(CONFIG)
    app_id = f"ks-{uuid.uuid4().hex[:8]}"
    records = list(synthetic(seed=3, count=10_000))
    worker = spawn_worker(
        kafka_bootstrap, topic_prefix, app_id, str(config), str(tmp_path / "w1.log")
    )
    feeder = threading.Thread(
        target=publish, args=(records[1500:6000], kafka_bootstrap, topics.raw, 1000.0), daemon=True
    )
    killed_ms = 0
    try:
        publish(records[:1500], kafka_bootstrap, topics.raw)
        # wait until the live worker trades, then pull the switch while ticks keep flowing
        c = consumer(kafka_bootstrap, [topics.decisions])
        try:
            for msg in messages(c, idle_timeout=90, deadline=time.monotonic() + 120):
                if is_order(Decision.model_validate_json(msg.value())):
                    break
        finally:
            c.close()
        feeder.start()
        time.sleep(1.5)
        assert feeder.is_alive(), "the feed must still be running when the switch is pulled"
        killed_ms = time.time_ns() // 10**6
        send_commands([kill("global", "on", "ks-1")], kafka_bootstrap, topics.control)
        feeder.join(60)
        live = read_timed(kafka_bootstrap, topics.decisions, idle=3, deadline=time.monotonic() + 90)
    finally:
        stop_process(worker)

    decisions = [(ts, Decision.model_validate_json(v)) for ts, v in live]
    before = [d for ts, d in decisions if ts < killed_ms]
    late = [d for ts, d in decisions if ts > killed_ms + 1000]
    assert any(is_order(d) for d in before)
    assert len(late) > 100, "the worker must keep deciding after the switch"
    assert not any(is_order(d) for d in late), "an order was approved >1 s after the kill switch"
    assert any("KILL_SWITCH" in d.reject_reasons for d in late)

    entries = [
        AUDIT_ADAPTER.validate_json(v)
        for _, v in read_timed(
            kafka_bootstrap, topics.audit, idle=2, deadline=time.monotonic() + 60
        )
    ]
    audit = [e for e in entries if isinstance(e, AuditRecord)]  # hold summaries apply nothing
    applied = {r.instrument: a for r in audit for a in r.controls_applied if a.command_id == "ks-1"}
    assert set(applied) == {r.instrument for r in audit}, "each instrument records when it applied"

    # a restarted worker (same group: it continues from its committed offsets) reads the
    # compacted control topic first, so its very first decision is already halted
    restarted_ms = time.time_ns() // 10**6
    worker = spawn_worker(
        kafka_bootstrap, topic_prefix, app_id, str(config), str(tmp_path / "w2.log")
    )
    resumed: list[Decision] = []
    try:
        publish(records[6000:9000], kafka_bootstrap, topics.raw)
        c = consumer(kafka_bootstrap, [topics.decisions])
        try:
            for msg in messages(c, idle_timeout=60, deadline=time.monotonic() + 150):
                if msg.timestamp()[1] > restarted_ms:
                    resumed.append(Decision.model_validate_json(msg.value()))
                    if len(resumed) >= 300:
                        break
        finally:
            c.close()
    finally:
        stop_process(worker)
    assert len(resumed) >= 300, (tmp_path / "w2.log").read_text()[-3000:]
    assert not any(is_order(d) for d in resumed)

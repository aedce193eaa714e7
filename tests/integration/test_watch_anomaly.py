"""The order-rate burst on a real broker: a worker trading under the threshold rule is fed a
stretch of ticks fifty times faster in event time; the watchtower raises ORDER_BURST, its halt
policy publishes the kill switch for that instrument at the window's end, the worker applies
it (its later intents are refused), and ``replay-check`` re-derives every decision around it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from stubs import read_all

from tests.integration.test_watch import Alerts
from tests.stubs import squeezed_feed
from tickwise.replay.kafka_replay import replay_check
from tickwise.schemas.decisions import AUDIT_ADAPTER, AuditRecord, ControlCommand, Decision
from tickwise.schemas.topics import Topics
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import free_port
from tickwise.streams.live.feed import publish
from tickwise.streams.live.state import Output
from tickwise.streams.live.tap import consumer, messages, spawn_watch, spawn_worker, stop_process
from tickwise.streams.watch.probe import admin_client, probe_group

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG = """
[decision]
rule = "threshold"
[model]
warmup_labels = 5
[label]
horizon_s = 0.5
[audit]
hold_summary_s = 5.0
[watch]
stale_after_s = 600.0
[watch.anomaly]
window_s = 5.0
hop_size_s = 10.0
hop_step_s = 5.0
min_history = 8
history = 30
"""
# ticks 3000..6000 of ES come fifty times faster: about a minute of trading in 1.2 s
FEED = (3, 9000, 3000, 6000, 50)
BEFORE_HALT = 6600  # published before the halt: the burst's window closes within these


def read_until(bootstrap: str, topic: str, found: object, timeout: float) -> list[bytes]:
    """Values of ``topic`` from the start until ``found(values)`` holds or ``timeout`` passes."""
    c = consumer(bootstrap, [topic])
    values: list[bytes] = []
    try:
        for msg in messages(c, idle_timeout=timeout, deadline=time.monotonic() + timeout):
            values.append(msg.value() or b"")
            if found(values):  # type: ignore[operator]
                return values
    finally:
        c.close()
    raise AssertionError(f"{topic}: not found within {timeout} s ({len(values)} messages)")


@pytest.fixture
def processes() -> Iterator[list[object]]:
    running: list[object] = []
    yield running
    for p in running:
        if isinstance(p, Alerts):
            p.close()
        else:
            stop_process(p)  # type: ignore[arg-type]


@pytest.mark.timeout(1200)  # a worker, a watchtower and a replay on a shared machine
def test_an_order_rate_burst_halts_the_instrument_and_replays_exactly(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, processes: list[object]
) -> None:
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    topics = Topics(topic_prefix)
    config = tmp_path / "tickwise.toml"
    config.write_text(CONFIG)
    alerts = Alerts(kafka_bootstrap, topics.alerts)
    processes.append(alerts)
    log = str(tmp_path / "watch.log")
    watch = spawn_watch(kafka_bootstrap, topic_prefix, str(config), free_port(), log, "INFO")
    processes.append(watch)
    worker_log = tmp_path / "worker.log"
    app_id = f"burst-{uuid.uuid4().hex[:8]}"
    worker = spawn_worker(kafka_bootstrap, topic_prefix, app_id, str(config), str(worker_log))
    processes.append(worker)
    feed = squeezed_feed(*FEED)
    publish(feed[:BEFORE_HALT], kafka_bootstrap, topics.raw)

    try:
        burst = alerts.wait("ORDER_BURST", 420)
    except AssertionError:
        print((tmp_path / "watch.log").read_text(errors="replace")[-3000:])
        print(worker_log.read_text(errors="replace")[-3000:])
        raise
    assert burst.instrument == "ES" and burst.severity.value == "CRITICAL"
    assert burst.ts_event_ns % 5_000_000_000 == 0  # the end of a 5 s window of event time
    command_id = f"cmd-{burst.alert_id}"

    def has_command(values: list[bytes]) -> bool:
        return any(ControlCommand.model_validate_json(v).command_id == command_id for v in values)

    control = read_until(kafka_bootstrap, topics.control, has_command, 120)
    command = next(
        c for c in map(ControlCommand.model_validate_json, control) if c.command_id == command_id
    )
    assert (command.command, command.scope, command.operator) == ("kill_switch_on", "ES", "watch")
    assert command.ts_event_ns == command.effective_ts_event_ns == burst.ts_event_ns

    # the rest of the feed: the worker applies the halt at its next decision
    publish(feed[BEFORE_HALT:], kafka_bootstrap, topics.raw)
    admin = admin_client(kafka_bootstrap)
    deadline = time.monotonic() + 420
    while probe_group(admin, app_id, topics.raw).lag > 0:  # until it has decided every tick
        assert time.monotonic() < deadline, worker_log.read_text(errors="replace")[-3000:]
        time.sleep(1)
    stop_process(worker)
    trail = [v for _, v in read_all(kafka_bootstrap, topics.audit)]  # no lag: all of it is in
    records = [e for e in map(AUDIT_ADAPTER.validate_json, trail) if isinstance(e, AuditRecord)]
    applied = [
        i
        for i, r in enumerate(records)
        if any(a.command_id == command_id for a in r.controls_applied)
    ]
    assert len(applied) == 1, "the halt is applied once, at one decision's event time"
    at = records[applied[0]]
    assert at.ts_event_ns >= command.effective_ts_event_ns
    after = [r.decision for r in records[applied[0] :] if r.decision.action.value != "HOLD"]
    assert after and all(not d.approved and "KILL_SWITCH" in d.reject_reasons for d in after)
    before = [r.decision for r in records[: applied[0]]]
    assert any(d.approved for d in before)

    # replay-check re-derives every decision, the halt and those around it included
    derived: list[Output] = []
    report = replay_check(
        kafka_bootstrap, topic_prefix, 0, 2**62 // 10**6, str(config), observe=derived.append
    )
    assert report.ok, report.as_dict()
    assert report.matching == len(records)
    halted = [
        o.message
        for o in derived
        if isinstance(o.message, Decision) and "KILL_SWITCH" in o.message.reject_reasons
    ]
    assert {d.decision_id for d in halted} == {d.decision_id for d in after}

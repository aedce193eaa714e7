"""Live rollout through the ``control`` topic: shadow, promote, rollback, no worker restart.

A real ``tickwise worker`` process decides a synthetic stream in three batches. Between
batches the registry issues stage changes that travel on ``control``; decisions of each batch
must come from the version the registry put in production, and after ``rollback`` the next
decisions come from the previous version again; ``replay-check`` re-derives every one of them
from the recorded input and the audit trail alone. The worker runs the columnar engine, which
hands its model stage over to river's staged one when the shadow arrives, state and all. A
command whose model spec is no model of the task is refused loudly, and the worker goes on
deciding with the version it has.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from stubs import read_all, wait_consumed

from tickwise.replay.kafka_replay import replay_check
from tickwise.schemas.decisions import Alert, ControlCommand, Decision, Signal
from tickwise.schemas.topics import Topics
from tickwise.streams.config import ModelConfig
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.control import send_control
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import spawn_worker, stop_process
from tickwise.streams.registry import ModelVersion, Registry
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG = """
[model]
warmup_labels = 10
[label]
horizon_s = 0.3
"""
SETTLE_S = 4.0  # the worker polls control every 0.5 s; leave room for a busy machine


def values(bootstrap: str, topic: str) -> list[bytes]:
    """Every committed value of ``topic`` now (read once the worker consumed its input)."""
    return [v for _, v in read_all(bootstrap, topic)]


def baseline_and_tree(tmp_path: Path) -> tuple[Registry, ModelVersion]:
    """A registry with the baseline in production and a tree registered after it."""
    registry = Registry(tmp_path / "registry")
    base = registry.register(ModelConfig(warmup_labels=10), "ops", "baseline")
    tree = registry.register(
        ModelConfig(model_id="tree", kind="hoeffding_tree", grace_period=30, warmup_labels=10),
        "quant",
        "a tree",
        parent=base.key,
    )
    registry.promote(base.key, "production", "ops", "initial", 1)
    return registry, tree


def test_promote_and_rollback_switch_live_decisions(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    (tmp_path / "t.toml").write_text(CONFIG)
    registry, tree = baseline_and_tree(tmp_path)
    records = list(synthetic(seed=8, count=4500, instruments=["ES", "NQ", "CL"]))
    batches = [records[:1500], records[1500:3000], records[3000:]]
    worker = spawn_worker(
        kafka_bootstrap,
        topic_prefix,
        group := f"rollout-{uuid.uuid4().hex[:8]}",
        config=str(tmp_path / "t.toml"),
        log_path=str(tmp_path / "worker.log"),
    )
    try:
        shadow = registry.promote(tree.key, "shadow", "quant", "watch it", 2)
        send_control(kafka_bootstrap, topics.control, shadow)
        time.sleep(SETTLE_S)
        publish(batches[0], kafka_bootstrap, topics.raw)
        wait_consumed(kafka_bootstrap, group, topics.raw)
        seen = len(values(kafka_bootstrap, topics.decisions))
        assert seen > 0

        promote = registry.promote(tree.key, "production", "alice", "beat baseline in shadow", 3)
        send_control(kafka_bootstrap, topics.control, promote)
        time.sleep(SETTLE_S)
        publish(batches[1], kafka_bootstrap, topics.raw)
        wait_consumed(kafka_bootstrap, group, topics.raw)
        after_promote = len(values(kafka_bootstrap, topics.decisions))

        rollback = registry.rollback("bob", "fills look wrong", 4)
        send_control(kafka_bootstrap, topics.control, rollback)
        time.sleep(SETTLE_S)
        publish(batches[2], kafka_bootstrap, topics.raw)
        wait_consumed(kafka_bootstrap, group, topics.raw)
        decisions = [
            Decision.model_validate_json(v) for v in values(kafka_bootstrap, topics.decisions)
        ]
        signals = [Signal.model_validate_json(v) for v in values(kafka_bootstrap, topics.signals)]
        alerts = [Alert.model_validate_json(v) for v in values(kafka_bootstrap, topics.alerts)]
    finally:
        stop_process(worker)

    batch_of = {json.loads(r.payload)["tick_id"]: i for i, b in enumerate(batches) for r in b}
    models = [{d.model_id for d in decisions if batch_of.get(d.tick_id) == i} for i in range(3)]
    assert models == [{"logreg"}, {"tree"}, {"logreg"}], models
    assert seen < after_promote < len(decisions)
    # the shadow scored live in batch one without ever reaching risk
    assert any(s.model_id == "tree" and s.stage == "shadow" for s in signals)
    # each command was applied once per instrument, and says where
    applied = {(a.detail.split()[1], a.instrument) for a in alerts if a.code == "CONTROL_APPLIED"}
    cmds = (shadow.command_id, promote.command_id, rollback.command_id)
    assert applied == {(c + ":", i) for c in cmds for i in ("ES", "NQ", "CL")}
    trail = registry.audit_trail()
    assert [(e.model, e.to_stage, e.operator) for e in trail if e.event == "stage"][-2:] == [
        (tree.key, "retired", "bob"),
        ("logreg:v1", "production", "bob"),
    ]
    # the audit trail alone replays the rollout: every decision re-derived, shadow to rollback
    report = replay_check(
        kafka_bootstrap, topic_prefix, 0, int(time.time() * 1000) + 60_000, str(tmp_path / "t.toml")
    )
    assert report.ok, report.as_dict()
    assert report.decisions_checked == report.matching > 0


def test_a_worker_refuses_a_bad_model_spec_loudly(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=1)
    (tmp_path / "t.toml").write_text(CONFIG)
    worker = spawn_worker(
        kafka_bootstrap,
        topic_prefix,
        group := f"refuse-{uuid.uuid4().hex[:8]}",
        config=str(tmp_path / "t.toml"),
        log_path=str(tmp_path / "worker.log"),
    )
    try:
        shadow = ControlCommand(
            command_id="bad-spec", command="promote", scope="global", reason="typo",
            operator="quant", ts_event_ns=1, model_id="tree", model_version=2, stage="shadow",
            model_spec={"model_id": "tree", "model_version": 2, "kind": "linear"},
        )  # fmt: skip
        send_control(kafka_bootstrap, topics.control, shadow)
        time.sleep(SETTLE_S)
        publish(list(synthetic(seed=8, count=1500)), kafka_bootstrap, topics.raw)
        wait_consumed(kafka_bootstrap, group, topics.raw)
        decisions = [
            Decision.model_validate_json(v) for v in values(kafka_bootstrap, topics.decisions)
        ]
        alerts = [Alert.model_validate_json(v) for v in values(kafka_bootstrap, topics.alerts)]
    finally:
        stop_process(worker)
    refused = [a for a in alerts if a.code == "COMMAND_REFUSED"]
    assert len(refused) == 1 and shadow.command_id in refused[0].detail
    assert "does not do classification" in refused[0].detail
    assert refused[0].severity == "CRITICAL"
    assert decisions and {d.model_id for d in decisions} == {"logreg"}
    assert "not applied" in (tmp_path / "worker.log").read_text()

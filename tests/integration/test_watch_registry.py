"""The registry's log on a real broker: a promote and a rollback made with ``tickwise model``
reach the ``registry`` topic as links of one chain, which the watchtower checks without an
alert and holds the head of; an entry altered on that topic raises AUDIT_BROKEN naming it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from stubs import read_all

from tests.integration.test_watch import ALERTS, Alerts, value
from tickwise.schemas.registry import REGISTRY_CHAIN, RegistryEntry
from tickwise.schemas.topics import Topics
from tickwise.streams.cli import main
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import free_port
from tickwise.streams.live.metrics import Samples, scrape
from tickwise.streams.live.tap import spawn_watch, stop_process
from tickwise.streams.operators.audit import check_link
from tickwise.streams.registry import Registry

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _metrics_until(port: int, holds: object, timeout: float) -> Samples:
    deadline, samples = time.time() + timeout, {}
    while time.time() < deadline:
        samples = scrape(port)
        if holds(samples):  # type: ignore[operator]
            return samples
        time.sleep(0.5)
    raise AssertionError(f"metrics never held within {timeout} s: {samples}")


@pytest.mark.timeout(900)
def test_cli_promote_and_rollback_are_chained_live_and_an_altered_entry_alerts(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    topics = Topics(topic_prefix)
    config = tmp_path / "tickwise.toml"
    config.write_text("[watch]\nstale_after_s = 600.0\ncheck_interval_s = 0.5\n")
    alerts = Alerts(kafka_bootstrap, topics.alerts)
    port = free_port()
    log = tmp_path / "watch.log"
    watch = spawn_watch(kafka_bootstrap, topic_prefix, str(config), port, str(log), "INFO")
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})
    try:
        producer.produce(topics.audit, key=b"probe", value=b"not a record")
        producer.flush()
        alerts.wait("AUDIT_UNREADABLE", 120)  # it has its partitions

        root = tmp_path / "registry"
        model = tmp_path / "model.toml"
        model.write_text("[model]\nwarmup_labels = 5\n")
        reg = ["--registry", str(root)]
        broker = ["--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix]
        for reason in ("baseline", "retrained"):  # written locally, published with the next
            assert (
                main(["model", "register", *reg, "--config", str(model), "--reason", reason]) == 0
            )
        promote = ["model", "promote", *reg, *broker, "--stage", "production"]
        assert main([*promote, "logreg:v1", "--reason", "first"]) == 0
        assert main([*promote, "logreg:v2", "--reason", "better"]) == 0
        assert main(["model", "rollback", *reg, *broker, "--reason", "slippage"]) == 0
        local = Registry(root).log_lines()
        assert len(local) == 7  # 2 registrations, 1 + 2 stage moves, a rollback's 2

        # the topic holds the registry's log byte for byte, each entry linked to the last
        published = read_all(kafka_bootstrap, topics.registry)  # each publish was acked
        assert [v for _, v in published] == local
        assert {k for k, _ in published} == {REGISTRY_CHAIN.encode()}
        heads: dict[str, tuple[int, str]] = {}
        for _, raw in published:
            assert check_link(RegistryEntry.model_validate_json(raw), heads, raw) == []

        # the watchtower checked all seven, and raised nothing about them
        checked = "tickwise_watch_checked_total"
        _metrics_until(port, lambda m: value(m, checked, topic=topics.registry) == 7, 120)
        time.sleep(2)
        assert [a.code for _, a in alerts.seen if a.code.startswith("AUDIT")] == [
            "AUDIT_UNREADABLE"
        ]

        # the next entry, altered on the topic: its hash no longer matches what it says
        shadow = ["model", "promote", *reg, "--no-publish", "logreg:v2", "--stage", "shadow"]
        assert main([*shadow, "--reason", "try again"]) == 0
        entry = Registry(root).log_lines()[-1]
        doc = json.loads(entry)
        assert doc["seq"] == 7
        doc["operator"] = "mallory"
        delivered: list[tuple[int, int]] = []
        producer.produce(
            topics.registry,
            key=REGISTRY_CHAIN.encode(),
            value=json.dumps(doc, separators=(",", ":")).encode(),
            on_delivery=lambda err, msg: delivered.append((msg.partition(), msg.offset())),
        )
        producer.flush()
        broken = alerts.wait("AUDIT_BROKEN", 30, text="reg-7 ")
        partition, offset = delivered[0]
        assert f"{topics.registry}[{partition}]@{offset}" in broken.detail
        assert "hash does not match its content" in broken.detail
        assert broken.severity.value == "CRITICAL"
        samples = _metrics_until(
            port, lambda m: value(m, ALERTS, code="AUDIT_BROKEN", severity="CRITICAL") == 1, 30
        )
        assert value(samples, checked, topic=topics.registry) == 8
        time.sleep(2)
        codes = [a.code for _, a in alerts.seen if a.code.startswith("AUDIT")]
        assert codes == ["AUDIT_UNREADABLE", "AUDIT_BROKEN"]
    finally:
        stop_process(watch)
        alerts.close()
        print(log.read_text(errors="replace")[-3000:])

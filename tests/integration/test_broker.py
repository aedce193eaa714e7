"""The session broker works end to end, and ``LocalBroker`` starts, adopts and stops cleanly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tickwise.streams.cli import main
from tickwise.streams.live.broker import LocalBroker, free_port, pid_alive, port_open

pytestmark = pytest.mark.kafka


def test_session_broker_round_trip(kafka_bootstrap: str, topic_prefix: str) -> None:
    """Create a topic, produce one record, read it back through a consumer group and commit."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert admin.list_topics(timeout=10).brokers, "the broker lists no brokers"

    topic = f"{topic_prefix}round-trip"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)

    errors: list[object] = []
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    producer.produce(topic, key=b"ES", value=b"tick-1", on_delivery=lambda e, _: errors.append(e))
    assert producer.flush(30) == 0
    assert errors == [None]

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topic_prefix}group",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        message = None
        deadline = time.monotonic() + 30
        while message is None and time.monotonic() < deadline:
            polled = consumer.poll(1.0)
            if polled is not None and polled.error() is None:
                message = polled
            elif polled is not None and polled.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(polled.error())
        assert message is not None, "no record came back within 30 s"
        assert (message.key(), message.value()) == (b"ES", b"tick-1")
        # Committing exercises the group coordinator and its one-replica offsets topic.
        consumer.commit(message=message, asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed[0].offset == message.offset() + 1
    finally:
        consumer.close()
    admin.delete_topics([topic])[topic].result(30)


def _cli(data_dir: Path, port: int, *argv: str) -> int:
    return main(
        ["broker", *argv, "--port", str(port), "--data-dir", str(data_dir), "--heap", "512m"]
    )


@pytest.mark.slow
def test_local_broker_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """start -> answers; a second start adopts the same process; stop frees the port."""
    port = free_port()
    data_dir = tmp_path / "broker"
    broker = LocalBroker(port=port, data_dir=data_dir, heap="512m")
    assert not broker.is_running()
    assert _cli(data_dir, port, "status") == 1

    try:
        bootstrap = broker.start(timeout=90)
        assert bootstrap == f"127.0.0.1:{port}" == broker.bootstrap
        assert broker.is_running()
        pid = broker.pid()
        assert pid is not None
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
        assert 1 in metadata.brokers
        state = json.loads((data_dir / "broker.json").read_text())
        assert (state["pid"], state["port"], state["bootstrap"]) == (pid, port, bootstrap)

        # Starting again, from another object or the CLI, finds the running broker.
        assert LocalBroker(port=port, data_dir=data_dir).start(timeout=30) == bootstrap
        capsys.readouterr()
        assert _cli(data_dir, port, "start") == 0
        assert "already running" in capsys.readouterr().out
        assert broker.pid() == pid
        assert _cli(data_dir, port, "status") == 0
        assert bootstrap in capsys.readouterr().out

        # Stopping through the CLI: another object, as when the user runs `tickwise broker stop`.
        assert _cli(data_dir, port, "stop") == 0
        assert not broker.is_running()
        assert not pid_alive(pid)
        assert not port_open(port)
        assert not (data_dir / "broker.pid").exists()
        assert _cli(data_dir, port, "status") == 1
        assert "not running" in capsys.readouterr().out
    finally:
        broker.stop()

"""The watchtower's raw-tick reader rides through a broker stop and start on a private broker:
its thread lives on, says what went wrong (counted, logged), and reads on from where it was,
nothing of the ticks after the restart missed and nothing before it read twice."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from fault_scenario import BROKER_START_S

from tests.integration.test_watch_ticks import Reading, burst
from tickwise.schemas.topics import Topics
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import LocalBroker, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BEFORE, AFTER = 2_000, 3_000


@pytest.mark.timeout(600)
def test_the_reader_reads_on_after_the_broker_restarts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = LocalBroker(port=free_port(), data_dir=tmp_path / "kafka", heap="512m")
    bootstrap = broker.start(timeout=BROKER_START_S)
    try:
        create_topics(bootstrap, "fault.", partitions=2)
        topic = Topics("fault.").raw
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        with caplog.at_level(logging.WARNING, logger="tickwise.streams.watch.ticks"):
            reading = Reading(bootstrap, topic, lookback_s=600.0)
            try:
                first = burst(producer, topic, BEFORE, ("ES", "NQ"))
                reading.until(lambda r: r.read == BEFORE)
                assert {i: t[:2] for i, t in reading.view.items()} == first
                broker.stop()
                time.sleep(3)  # the reader polls a broker that is gone
                broker.start(timeout=BROKER_START_S)
                producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
                then = burst(producer, topic, AFTER, ("ES", "NQ", "CL"))
                reading.until(lambda r: r.read == BEFORE + AFTER, 180)
                reading.until(lambda r: {i: t[:2] for i, t in r.view.items()} == then, 10)
                assert reading.reader.is_alive()
                time.sleep(1)
                assert reading.read == BEFORE + AFTER  # nothing before the restart read again
            finally:
                assert reading.reader.stop()
        said = [r.getMessage() for r in caplog.records]
        assert any("raw-tick reader" in m for m in said), said  # the outage was told
        assert reading.errors > 0
    finally:
        broker.stop()

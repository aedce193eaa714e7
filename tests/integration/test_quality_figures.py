"""Data-quality figures: the Prometheus endpoint and `tickwise status` agree with the feed."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tickwise.schemas.topics import Topics
from tickwise.streams.cli import main
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import free_port
from tickwise.streams.live.feed import publish
from tickwise.streams.live.metrics import scrape
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_metrics_endpoint_and_status_count_what_was_fed(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = list(synthetic(seed=8, count=4000, bad_rate=0.03, regime="gaps"))
    accepted = Counter(r.key for r in records if r.injected is None)
    bad = sum(1 for r in records if r.injected)
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    port = free_port()
    worker = spawn_worker(
        kafka_bootstrap,
        topic_prefix,
        f"dq-{uuid.uuid4().hex[:8]}",
        log_path=str(tmp_path / "worker.log"),
        extra_args=["--metrics-port", str(port)],
    )
    try:
        publish(records, kafka_bootstrap, topics.raw)
        read_values(kafka_bootstrap, topics.quarantine, bad, 120)
        read_values(kafka_bootstrap, topics.clean, len(records) - bad, 120)
        deadline, samples = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            samples = scrape(port)
            got = sum(v for (n, _), v in samples.items() if n == "tickwise_ticks_accepted_total")
            if got == len(records) - bad:
                break
            time.sleep(0.5)
    finally:
        stop_process(worker)

    for name, n in accepted.items():
        assert samples[("tickwise_ticks_accepted_total", (("instrument", name),))] == n
    rejected = sum(v for (n, _), v in samples.items() if n == "tickwise_ticks_rejected_total")
    assert rejected == bad
    gaps = sum(v for (n, _), v in samples.items() if n == "tickwise_event_time_gaps_total")
    assert gaps > 0, "the gaps regime leaves event-time gaps longer than a minute"

    capsys.readouterr()
    args = ["--topic-prefix", topic_prefix, "--bootstrap-servers", kafka_bootstrap, "--json"]
    assert main(["status", *args]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {name: f["accepted"] for name, f in status.items() if f["accepted"]} == dict(accepted)
    assert sum(f["rejected"] for f in status.values()) == bad
    assert sum(f["gaps"] for f in status.values()) == gaps

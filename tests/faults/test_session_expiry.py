"""The worker's group session expires while the broker is away, and the worker carries on.

The broker (a private ``LocalBroker``; the shared one is never stopped) is down for longer than
the consumer's session, so librdkafka reports the worker's partitions lost. The worker must get
them back (by rejoining, or by replacing its consumer when no rejoin comes), rebuild them from
checkpoint and committed offset, and decide exactly what the backtest decided: not go silent.
The worker is also frozen (SIGSTOP) across the broker's restart, as a long stop of the process
(a host suspended, a pause in the runtime) would: its client wakes up to a session that expired
and a group that forgot it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from stubs import (
    backtested,
    exactly_once_problems,
    live_outputs,
    wait_for_log,
    wait_until,
    worker_story,
)

from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import LocalBroker, free_port
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.live.transport import SESSION_TIMEOUT_MS
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BROKER_START_S = 240.0
SESSION_S = SESSION_TIMEOUT_MS / 1000


def forgotten(admin: AdminClient, group: str) -> bool:
    """Whether the group's coordinator answers that the group has no member (not while it is
    still loading the group, after a restart)."""
    try:
        described = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    except KafkaException:
        return False
    return not described.members


@pytest.mark.timeout(600)
@pytest.mark.parametrize("frozen", [False, True], ids=["running", "frozen"])
def test_a_worker_whose_session_expired_gets_its_partitions_back(
    tmp_path: Path, frozen: bool
) -> None:
    count = 4000
    prefix = f"se{uuid.uuid4().hex[:6]}."
    run = backtested(tmp_path, prefix, list(synthetic(seed=73, count=count, bad_rate=0.02)))
    broker = LocalBroker(port=free_port(), data_dir=tmp_path / "kafka", heap="512m")
    bootstrap = broker.start(timeout=BROKER_START_S)
    worker = None
    feeder = None
    group, log = f"session-{uuid.uuid4().hex[:6]}", tmp_path / "worker.log"
    try:
        create_topics(bootstrap, prefix, partitions=3)
        preload = count // 4
        assert publish(run.records[:preload], bootstrap, run.topics.raw) == preload
        fed: list[int] = []
        feeder = threading.Thread(
            target=lambda: fed.append(
                publish(run.records[preload:], bootstrap, run.topics.raw, 150.0)
            ),
            daemon=True,
        )
        feeder.start()
        worker = spawn_worker(
            bootstrap,
            prefix,
            group,
            config=str(run.config_file),
            log_path=str(log),
            checkpoint_dir=str(tmp_path / "checkpoints"),
            extra_args=["--loglevel", "INFO"],
        )
        quarter = len(run.replay) // 4
        assert len(read_values(bootstrap, run.topics.decisions, quarter, 240)) >= quarter

        if frozen:
            os.kill(worker.pid, signal.SIGSTOP)
        away = time.monotonic()
        broker.stop()
        if not frozen:  # the session expires while the broker is away, as the client says
            wait_for_log(log, "session timed out", timeout=SESSION_S * 12)
        broker.start(timeout=BROKER_START_S)
        if frozen:
            # the restarted broker forgets a member that sends no heartbeat for a session, and
            # the client wakes long enough after its last heartbeat to know its session expired
            admin = AdminClient({"bootstrap.servers": bootstrap})
            wait_until(lambda: forgotten(admin, group), "the group forgets the worker", 180)
            time.sleep(max(0.0, away + SESSION_S * 1.5 - time.monotonic()))
            os.kill(worker.pid, signal.SIGCONT)

        feeder.join(300)
        assert fed == [count - preload], "the feed rides through the broker restart"
        out = live_outputs(bootstrap, run, group, timeout=180)
        assert worker.poll() is None, "the worker must ride through, not exit"
    finally:
        if worker is not None:
            if frozen:
                os.kill(worker.pid, signal.SIGCONT)
            stop_process(worker)
        if feeder is not None:
            feeder.join(60)
        broker.stop()

    said = log.read_text(errors="replace")
    assert "session timed out" in said, "the fault this test is about did not happen"
    assert exactly_once_problems(run, out) == [], worker_story(tmp_path)

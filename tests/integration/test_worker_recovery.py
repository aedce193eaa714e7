"""A worker killed with SIGKILL mid-stream and restarted: nothing lost, nothing twice, and the
same decisions as an uninterrupted run (the backtest of the same input)."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import uuid
from pathlib import Path

import pytest
from stubs import backtested, exactly_once_problems, live_outputs, worker_story

from tickwise.schemas.decisions import ControlCommand
from tickwise.schemas.topics import Topics
from tickwise.streams.config import ModelConfig
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.control import send_control
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.sources import RawRecord, synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WARM = 200  # ticks fed before the rest, to know the worker is up
FEED_RATE = 1_500  # ticks/s: four seconds of feed


class MakesMarker:
    """Unpickling this creates ``path``: what a hostile checkpoint would do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.path),)


def canary(records: list[RawRecord]) -> ControlCommand:
    """A second version as a canary on one instrument from the stream's first tick on: the
    engine's model stage is river's staged one then, checkpointed and recovered as such."""
    v2 = ModelConfig(model_version=2, learning_rate=0.05, warmup_labels=20)
    return ControlCommand(
        command_id="canary-v2", command="promote", scope="global", reason="rollout",
        operator="test", ts_event_ns=1, model_id=v2.model_id, model_version=2, stage="canary",
        model_spec=v2.model_dump(), instruments=["NQ"], capital_fraction=0.5,
        effective_ts_event_ns=min(r.ts_event_ns for r in records if r.ts_event_ns is not None),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("checkpoints", "rollout"),
    [(True, False), (False, False), (True, True)],
    ids=["from-checkpoint", "from-scratch", "a-canary-from-checkpoint"],
)
def test_sigkill_and_restart_lose_and_duplicate_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, checkpoints: bool, rollout: bool
) -> None:
    records = list(synthetic(seed=21, count=6000, bad_rate=0.02))
    commands = [canary(records)] if rollout else []
    run = backtested(tmp_path, topic_prefix, records, commands)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    for command in commands:  # on the control topic before the worker reads it
        send_control(kafka_bootstrap, run.topics.control, command)
    app_id = f"recovery-{uuid.uuid4().hex[:8]}"
    ckpt = tmp_path / "checkpoints"

    def start(n: int):
        return spawn_worker(
            kafka_bootstrap,
            topic_prefix,
            app_id,
            config=str(run.config_file),
            log_path=str(tmp_path / f"worker{n}.log"),
            checkpoint_dir=str(ckpt),
            extra_args=["--loglevel", "INFO"],
        )

    first = start(1)
    # the worker up (its first clean ticks out), then a feed paced so it is mid-stream when it
    # dies: the engine decides a preloaded topic in well under a checkpoint interval
    head, rest = run.records[:WARM], run.records[WARM:]
    assert publish(head, kafka_bootstrap, run.topics.raw) == WARM
    assert read_values(kafka_bootstrap, run.topics.clean, 1, 180)
    sent: list[int] = []
    feed = threading.Thread(
        target=lambda: sent.append(publish(rest, kafka_bootstrap, run.topics.raw, rate=FEED_RATE))
    )
    feed.start()
    try:
        # kill it mid-stream: once a third of the decisions are out, well before the end
        third = len(run.replay) // 3
        assert len(read_values(kafka_bootstrap, run.topics.decisions, third, 180)) >= third
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        stop_process(first)
        feed.join()
    assert sent == [len(rest)]
    if not checkpoints:
        for path in ckpt.glob("*.ckpt"):
            path.unlink()
    else:
        assert list(ckpt.glob("*.ckpt")), "the first worker should have checkpointed"

    second = start(2)
    try:
        out = live_outputs(kafka_bootstrap, run, app_id)
    finally:
        stop_process(second)

    assert exactly_once_problems(run, out) == [], worker_story(tmp_path)
    if rollout:  # the canary decided NQ, at its version, on both sides of the kill
        assert any(b'"model_version":2' in d and b'"NQ"' in d for _, d in out.decisions)
    # recovery says at INFO what it did: where it started, what it replayed, where it goes on
    log = (tmp_path / "worker2.log").read_text(errors="replace")
    used = "checkpoint at offset" if checkpoints else "no checkpoint"
    assert used in log and "without emitting" in log and "committed offset" in log, log[-2000:]


def test_a_partition_it_cannot_rebuild_stops_the_worker_loudly(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    # An untrusted checkpoint (here an unsigned pickle that would run code): skipping the
    # partition would lose it, starting it from nothing would decide on the wrong state, and
    # retrying forever would hide it behind a process that looks alive. The worker must
    # exit non-zero, say why, emit nothing, and never unpickle the file.
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=1)
    assert publish(list(synthetic(seed=3, count=50)), kafka_bootstrap, topics.raw) == 50
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    marker = tmp_path / "ran"
    (ckpt / f"{topics.raw}-0.ckpt").write_bytes(pickle.dumps(MakesMarker(marker)))
    log = tmp_path / "worker.log"
    worker = spawn_worker(
        kafka_bootstrap, topic_prefix, f"bad-ckpt-{uuid.uuid4().hex[:8]}", None, str(log), str(ckpt)
    )
    try:
        code = worker.wait(120)
    finally:
        stop_process(worker)
    assert code != 0
    text = log.read_text(errors="replace")
    assert "cannot take it over" in text and "not a trusted tickwise checkpoint" in text
    assert not marker.exists(), "the unsigned file was unpickled"
    assert read_values(kafka_bootstrap, topics.clean, 1, 3) == []

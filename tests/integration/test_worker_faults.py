"""The transactional worker under faults on the shared broker: killed with a transaction open,
started on a log that retention has trimmed, fed by a consumer that skips records, and fed by
a transactional feed (whose markers and aborted records leave gaps in the offsets)."""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from stubs import backtested, exactly_once_problems, live_outputs, worker_story

from tickwise.schemas.topics import Topics
from tickwise.streams.config import load_config
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.feed import publish
from tickwise.streams.live.reader import RangeReader
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.live.transport import transactional_producer
from tickwise.streams.live.worker import build_transport
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def open_transaction(bootstrap: str, topic: str, partitions: int) -> bool:
    """Whether ``topic`` holds records of a transaction neither committed nor aborted: its
    high watermark is past its last stable offset."""
    ends = {}
    for isolation in ("read_uncommitted", "read_committed"):
        c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"probe-{uuid.uuid4().hex[:6]}",
                "isolation.level": isolation,
            }
        )
        try:
            ends[isolation] = [
                c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)
            ]
        finally:
            c.close()
    return any(
        hw > lso for hw, lso in zip(ends["read_uncommitted"], ends["read_committed"], strict=True)
    )


def test_sigkill_with_a_transaction_open_loses_and_duplicates_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    run = backtested(tmp_path, topic_prefix, list(synthetic(seed=51, count=9000, bad_rate=0.02)))
    topics = run.topics
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    assert publish(run.records, kafka_bootstrap, topics.raw) == len(run.records)
    app_id = f"txn-kill-{uuid.uuid4().hex[:8]}"

    def start(n: int):
        return spawn_worker(
            kafka_bootstrap,
            topic_prefix,
            app_id,
            config=str(run.config_file),
            log_path=str(tmp_path / f"worker{n}.log"),
            checkpoint_dir=str(tmp_path / "checkpoints"),
            extra_args=["--loglevel", "INFO"],
        )

    first = start(1)
    killed_open = False
    try:
        assert len(read_values(kafka_bootstrap, topics.decisions, len(run.replay) // 4, 180)) > 0
        # freeze the worker, and kill it only if the broker holds a transaction of it open
        for _ in range(200):
            os.kill(first.pid, signal.SIGSTOP)
            if open_transaction(kafka_bootstrap, topics.clean, 3):
                first.kill()
                killed_open = True
                break
            os.kill(first.pid, signal.SIGCONT)
            time.sleep(0.02)
        first.wait(30)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
        stop_process(first)
    assert killed_open, "never caught the worker with a transaction open"

    second = start(2)
    try:
        out = live_outputs(kafka_bootstrap, run, app_id)
    finally:
        stop_process(second)

    assert exactly_once_problems(run, out) == [], worker_story(tmp_path)
    log = (tmp_path / "worker2.log").read_text(errors="replace")
    # recovery says at INFO what it did, per partition
    for p in range(3):
        assert f"partition {p}: " in log and "replayed offsets [" in log, log[-3000:]
    assert "committed offset" in log


def test_a_trimmed_raw_partition_stops_the_worker_naming_the_missing_offsets(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=1)
    assert publish(list(synthetic(seed=5, count=100)), kafka_bootstrap, topics.raw) == 100
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.delete_records(
        [TopicPartition(topics.raw, 0, 40)], request_timeout=30
    ).values():
        future.result(30)
    log = tmp_path / "worker.log"
    worker = spawn_worker(
        kafka_bootstrap,
        topic_prefix,
        f"trimmed-{uuid.uuid4().hex[:8]}",
        log_path=str(log),
        checkpoint_dir=str(tmp_path / "checkpoints"),
    )
    try:
        code = worker.wait(120)
    finally:
        stop_process(worker)
    assert code != 0, "a worker that cannot replay its partition must not carry on"
    text = log.read_text(errors="replace")
    assert f"{topics.raw} partition 0: offsets 0 to 39 are no longer retained" in text, text
    assert read_values(kafka_bootstrap, topics.clean, 1, 3) == []


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_consumer_that_skips_records_is_sent_back_and_nothing_is_lost(
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    """Once, a batch comes without five records a partition is due: what a stale fetch
    delivered after a rebalance, or a seek the client did not honour, would hand over. The
    first five (a later message shows the gap), or the last five of the partition (nothing
    after them does: the consumer's position is past them). The worker must read them again
    rather than go on past them."""
    run = backtested(tmp_path, topic_prefix, list(synthetic(seed=53, count=3000, bad_rate=0.02)))
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    half = len(run.records) // 2
    assert publish(run.records[:half], kafka_bootstrap, run.topics.raw) == half
    app_id = f"skip-{uuid.uuid4().hex[:8]}"
    config = load_config(run.config_file, topic_prefix=topic_prefix, app_id=app_id)
    live = {"checkpoint_store": "dir", "checkpoint_dir": str(tmp_path / "checkpoints")}
    config = config.model_copy(update={"live": config.live.model_copy(update=live)})
    transport = build_transport(config, kafka_bootstrap)
    consume = transport._consume
    skipped: list[tuple[int, int]] = []
    decided, fed = threading.Event(), threading.Event()
    ends: dict[int, int] = {}  # each partition's end once the whole feed is in

    def skipping():  # the worker's own consume, with one partition's records left out once
        if decided.is_set():  # held until the second half is in and its ends are known
            fed.wait(120)
        batch = consume()
        for partition, runner in list(transport.runners.items()):
            due = [m for m in batch if m.partition() == partition]
            due = [m for m in due if m.offset() >= runner.next_offset]
            if skipped or runner.next_offset == 0 or len(due) <= 10:
                continue
            if where == "first":
                gone = due[:5]
            elif due[-1].offset() == ends.get(partition, 0) - 1:
                gone = due[-5:]
            else:
                continue
            skipped.append((partition, gone[0].offset()))
            ids = {id(m) for m in gone}
            return [m for m in batch if id(m) not in ids]
        return batch

    transport._consume = skipping  # type: ignore[method-assign]
    failed: list[BaseException] = []

    def work() -> None:
        try:
            transport.run()
        except BaseException as exc:
            failed.append(exc)

    caplog.set_level(logging.WARNING, logger="tickwise.streams.live.transport")
    worker = threading.Thread(target=work, name="worker")
    worker.start()
    try:
        assert read_values(kafka_bootstrap, run.topics.decisions, 1, 120), "the worker decides"
        decided.set()
        rest = run.records[half:]
        assert publish(rest, kafka_bootstrap, run.topics.raw) == len(rest)
        with RangeReader(kafka_bootstrap) as reader:
            ends.update({p: reader.watermarks(run.topics.raw, p)[1] for p in range(3)})
        fed.set()
        out = live_outputs(kafka_bootstrap, run, app_id)
    finally:
        fed.set()
        transport.stop()
        worker.join(180)
    assert not failed and not worker.is_alive()
    assert skipped, "no batch came after a commit to leave records out of"
    assert exactly_once_problems(run, out) == []
    partition, offset = skipped[0]
    said = f"partition {partition}: the consumer skipped records at offset {offset}"
    how = "(it delivered offset" if where == "first" else "(its position is"
    assert any(said in r.getMessage() and how in r.getMessage() for r in caplog.records), (
        caplog.text[-2000:]
    )


def test_a_transactional_feeds_gaps_are_crossed_and_its_aborted_records_never_read(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """A feed that writes ``ticks.raw`` in transactions (as an exactly-once connector does):
    every commit leaves a marker's offset, and an aborted transaction's records stay in the
    log, unread. The worker crosses those gaps, and only those: nothing lost, nothing extra."""
    run = backtested(tmp_path, topic_prefix, list(synthetic(seed=57, count=3000, bad_rate=0.02)))
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    producer = transactional_producer(kafka_bootstrap, f"feed-{uuid.uuid4().hex[:8]}", 60_000, 30.0)
    rng = random.Random(57)

    def feed(records: list) -> None:
        i = 0
        while i < len(records):
            if rng.random() < 0.2:  # a transaction the feed aborts: ticks that never happened
                producer.begin_transaction()
                for r in records[i : i + rng.randrange(1, 30)]:
                    producer.produce(run.topics.raw, b"{not a tick}" + r.payload, r.key.encode())
                producer.abort_transaction(30)
            n = rng.randrange(1, 120)
            producer.begin_transaction()
            for r in records[i : i + n]:
                producer.produce(run.topics.raw, r.payload, r.key.encode())
            producer.commit_transaction(30)
            i += n

    half = len(run.records) // 2
    feed(run.records[:half])
    app_id = f"txn-feed-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker1.log"
    worker = spawn_worker(
        kafka_bootstrap,
        topic_prefix,
        app_id,
        config=str(run.config_file),
        log_path=str(log),
        checkpoint_dir=str(tmp_path / "checkpoints"),
        extra_args=["--loglevel", "INFO"],
    )
    try:
        assert read_values(kafka_bootstrap, run.topics.decisions, 1, 120), "the worker decides"
        feed(run.records[half:])  # now the gaps also come between batches the worker takes
        out = live_outputs(kafka_bootstrap, run, app_id)
    finally:
        stop_process(worker)
    assert exactly_once_problems(run, out) == [], worker_story(tmp_path)
    assert "skipped records" not in log.read_text(errors="replace")

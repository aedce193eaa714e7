"""Two workers on one group while ticks flow, with the partitions moving between them.

Each on a host of its own, one stops, then starts again (a rebalance each time): partitions move
with their state through the checkpoint topic alone (they share no directory). And one killed
with SIGKILL in the middle of a rebalance, then started again. Every decision is the backtest's,
with no tick lost or handled twice.
"""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient
from stubs import (
    backtested,
    exactly_once_problems,
    live_outputs,
    trickle,
    wait_for_log,
    wait_until,
    worker_story,
)

from tickwise.streams.checkpoint import KEY_ENV, KEY_FILE_ENV
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RATE = 100.0  # ticks/s while the partitions move; the rest at once
# one instrument per raw partition (keys hash to 2, 1 and 0), so whichever partition moves has a
# state to move
INSTRUMENTS = ("ES", "NQ", "ZN")
RECOVERY = re.compile(
    r"partition (\d+): (no checkpoint|checkpoint at offset \d+);.* committed offset (\d+)"
)


def moved_with_state(log: str) -> list[int]:
    """The partitions a worker took that had been handled before; each must come with a
    checkpoint (a recovery from nothing would replay the whole partition)."""
    taken = [(int(p), how, int(c)) for p, how, c in RECOVERY.findall(log)]
    assert taken, log[-3000:]
    handled = [(p, how) for p, how, c in taken if c > 0]
    assert all(how != "no checkpoint" for _, how in handled), log[-3000:]
    return [p for p, _ in handled]


def group_state(admin: AdminClient, group: str) -> ConsumerGroupState:
    """The consumer group's state as its coordinator reports it."""
    future = admin.describe_consumer_groups([group], request_timeout=10)[group]
    return future.result(15).state


def wait_stable(admin: AdminClient, group: str) -> None:
    """Wait until the group's coordinator reports it stable: its rebalance, both rounds of a
    cooperative one, is over."""
    stable = ConsumerGroupState.STABLE
    wait_until(lambda: group_state(admin, group) == stable, f"{group} stable", 90)


@pytest.mark.timeout(900)  # two workers, two rebalances: about two minutes, more under load
def test_partitions_move_between_workers_sharing_no_directory(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    run = backtested(
        tmp_path,
        topic_prefix,
        list(synthetic(seed=31, count=6000, instruments=INSTRUMENTS, bad_rate=0.02)),
    )
    topics = run.topics
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    app_id = f"scale-{uuid.uuid4().hex[:8]}"
    key = secrets.token_hex(32)  # one key for the cluster, handed to each host
    homes = {name: tmp_path / f"host-{name}" for name in "ab"}

    def start(host: str, n: int):
        home = homes[host]
        home.mkdir(exist_ok=True)
        env = {
            "HOME": str(home),
            "XDG_CACHE_HOME": "",
            "XDG_CONFIG_HOME": "",
            KEY_ENV: key,
            KEY_FILE_ENV: "",
        }
        log = tmp_path / f"worker-{host}{n}.log"
        proc = spawn_worker(
            kafka_bootstrap,
            topic_prefix,
            app_id,
            config=str(run.config_file),
            log_path=str(log),
            extra_args=["--loglevel", "INFO"],
            env=env,
        )
        return proc, log

    fed: list[int] = []
    hurry = threading.Event()
    feed = threading.Thread(
        target=lambda: fed.append(
            publish(trickle(run.records, RATE, hurry), kafka_bootstrap, topics.raw)
        )
    )
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    a, a_log = start("a", 1)
    b = None
    try:
        feed.start()
        wait_for_log(a_log, "without emitting", count=3)  # a takes all three partitions
        assert read_values(kafka_bootstrap, topics.decisions, 1, 60), "a decides"
        b, b_log = start("b", 1)
        # b takes partitions from a: their state can only have come through the topic
        wait_for_log(b_log, "without emitting")
        wait_stable(admin, app_id)
        b_took = b_log.read_text(errors="replace")
        assert moved_with_state(b_took), "b took a partition with state"
        taken = a_log.read_text(errors="replace").count("without emitting")
        b.send_signal(signal.SIGTERM)  # a clean stop: b checkpoints what it gives up
        assert b.wait(60) == 0
        # a takes them all back, from b's checkpoints
        wait_for_log(a_log, "without emitting", count=taken + b_took.count("without emitting"))
        moved_with_state(a_log.read_text(errors="replace"))
        wait_stable(admin, app_id)
        b, b_log = start("b", 2)
        wait_for_log(b_log, "without emitting")
        wait_stable(admin, app_id)
        assert moved_with_state(b_log.read_text(errors="replace")), "b took a partition with state"
        assert feed.is_alive(), "the ticks must still be flowing after both rebalances"
        hurry.set()
        feed.join(120)
        assert fed == [len(run.records)]
        out = live_outputs(kafka_bootstrap, run, app_id)
    finally:
        hurry.set()
        feed.join(120)
        for proc in (a, b):
            if proc is not None:
                stop_process(proc)

    assert exactly_once_problems(run, out) == [], worker_story(tmp_path)
    # and no host kept a checkpoint of its own: the topic was the only shared state
    assert [p for home in homes.values() for p in home.rglob("*.ckpt")] == []


REBALANCING = (ConsumerGroupState.PREPARING_REBALANCING, ConsumerGroupState.COMPLETING_REBALANCING)


@pytest.mark.timeout(900)  # about two minutes; more under load
def test_sigkill_during_a_rebalance_loses_and_duplicates_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    run = backtested(
        tmp_path,
        topic_prefix,
        list(synthetic(seed=33, count=6000, instruments=INSTRUMENTS, bad_rate=0.02)),
    )
    topics = run.topics
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    app_id = f"rebalance-kill-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "host"
    home.mkdir()
    # one host: the restarted worker takes the killed one's slot, so its transactional id,
    # and fences what the killed one left open
    env = {"HOME": str(home), "XDG_CACHE_HOME": "", "XDG_CONFIG_HOME": ""}
    env |= {KEY_ENV: secrets.token_hex(32), KEY_FILE_ENV: ""}

    def start(name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"worker-{name}.log"
        proc = spawn_worker(
            kafka_bootstrap,
            topic_prefix,
            app_id,
            config=str(run.config_file),
            log_path=str(log),
            extra_args=["--loglevel", "INFO"],
            env=env,
        )
        return proc, log

    preload = 1000
    assert publish(run.records[:preload], kafka_bootstrap, topics.raw) == preload
    fed: list[int] = []
    hurry = threading.Event()
    feed = threading.Thread(
        target=lambda: fed.append(
            publish(trickle(run.records[preload:], RATE, hurry), kafka_bootstrap, topics.raw)
        )
    )
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    workers: list[subprocess.Popen[bytes]] = []
    try:
        a, a_log = start("a")
        workers.append(a)
        wait_for_log(a_log, "without emitting", count=3)  # a takes all three partitions
        feed.start()
        assert read_values(kafka_bootstrap, topics.decisions, 1, 60), "a decides"
        assert group_state(admin, app_id) == ConsumerGroupState.STABLE
        b, b_log = start("b")
        workers.append(b)
        # b joins: kill a the moment the coordinator says the group is rebalancing, while a
        # is handing partitions over (cooperative: it keeps some, gives up others)
        deadline, caught = time.monotonic() + 120, None
        while caught is None and time.monotonic() < deadline and b.poll() is None:
            state = group_state(admin, app_id)
            if state in REBALANCING:
                a.kill()
                caught = state
        a.wait(30)
        assert caught is not None, f"never caught the group rebalancing:\n{b_log.read_text()}"
        assert feed.is_alive(), "the ticks must still be flowing through the rebalance"
        # recovery: a starts again; b and it share the partitions, each from its checkpoint
        again, again_log = start("a-again")
        workers.append(again)
        wait_for_log(again_log, "without emitting")
        wait_stable(admin, app_id)
        assert feed.is_alive(), "the ticks must still be flowing while the partitions move back"
        hurry.set()
        feed.join(180)
        assert fed == [len(run.records) - preload]
        out = live_outputs(kafka_bootstrap, run, app_id)
        assert b.poll() is None and again.poll() is None, "the survivors must ride through"
    finally:
        hurry.set()
        feed.join(180)
        for proc in workers:
            stop_process(proc)

    assert exactly_once_problems(run, out) == [], worker_story(tmp_path)
    # the partitions a had handled went on from a checkpoint, not from nothing
    logs = b_log.read_text(errors="replace") + again_log.read_text(errors="replace")
    assert moved_with_state(logs), logs[-3000:]

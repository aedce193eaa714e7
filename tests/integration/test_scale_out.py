"""Two workers on one group, each on a host of its own, while ticks flow: one stops, then starts
again (a rebalance each time). Partitions move between them with their state, through the
checkpoint topic alone (they share no directory), and every decision is the backtest's, with no
tick lost or handled twice."""

from __future__ import annotations

import re
import secrets
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from stubs import backtested, exactly_once_problems, live_outputs

from tickwise.streams.checkpoint import KEY_ENV, KEY_FILE_ENV
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RATE = 100.0  # ticks/s: the feed outlasts both rebalances
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


def wait_for_log(path: Path, text: str, count: int = 1, timeout: float = 90.0) -> str:
    """The log once ``text`` appears in it ``count`` times; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text(errors="replace") if path.exists() else ""
        if log.count(text) >= count:
            return log
        time.sleep(0.2)
    raise AssertionError(f"{path.name}: no {text!r} after {timeout:g} s:\n{log[-3000:]}")


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
    feed = threading.Thread(
        target=lambda: fed.append(publish(run.records, kafka_bootstrap, topics.raw, rate=RATE))
    )
    a, a_log = start("a", 1)
    b = None
    try:
        feed.start()
        wait_for_log(a_log, "without emitting", count=3)  # a takes all three partitions
        assert read_values(kafka_bootstrap, topics.decisions, 1, 60), "a decides"
        b, b_log = start("b", 1)
        # b takes partitions from a: their state can only have come through the topic
        wait_for_log(b_log, "without emitting")
        time.sleep(3)
        assert moved_with_state(b_log.read_text(errors="replace")), "b took a partition with state"
        taken = a_log.read_text(errors="replace").count("without emitting")
        b.send_signal(signal.SIGTERM)  # a clean stop: b checkpoints what it gives up
        assert b.wait(60) == 0
        # a takes them back, from b's checkpoints
        wait_for_log(a_log, "without emitting", count=taken + 1)
        moved_with_state(a_log.read_text(errors="replace"))
        time.sleep(3)
        b, b_log = start("b", 2)
        wait_for_log(b_log, "without emitting")
        time.sleep(3)
        assert moved_with_state(b_log.read_text(errors="replace")), "b took a partition with state"
        assert feed.is_alive(), "the ticks must still be flowing after both rebalances"
        feed.join(120)
        assert fed == [len(run.records)]
        out = live_outputs(kafka_bootstrap, run)
    finally:
        feed.join(120)
        for proc in (a, b):
            if proc is not None:
                stop_process(proc)

    assert exactly_once_problems(run, out) == []
    # and no host kept a checkpoint of its own: the topic was the only shared state
    assert [p for home in homes.values() for p in home.rglob("*.ckpt")] == []

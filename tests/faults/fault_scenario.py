"""A worker SIGKILLed mid-stream and restarted, then its broker stopped and started again.

Shared by ``test_broker_restart.py`` (one run, in ``make test``) and ``loop.py`` (many runs,
outside it): the fault is intermittent by nature, so one passing run proves little. The broker
is a private ``LocalBroker`` so the shared one is never stopped.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stubs import backtested, exactly_once_problems, live_outputs

from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import LocalBroker, free_port
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

BROKER_START_S = 240.0


@dataclass
class Outcome:
    """What one run saw; ``problems`` is empty when every promise held."""

    decisions: int
    expected: int
    problems: list[str]
    seconds: float


def sigkill_then_broker_restart(
    workdir: Path,
    seed: int = 41,
    count: int = 9000,
    down_s: float = 5.0,
    note: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """Run the scenario once in ``workdir``; return what it found (never raises on a mismatch).

    Ticks: a third preloaded, the rest fed at 400 ticks/s through both faults. The first worker
    is killed once a fifth of the decisions are out; the second is started on the same
    checkpoint directory, and the broker is stopped for ``down_s`` once the second worker has
    made decisions of its own.
    """
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = f"f{uuid.uuid4().hex[:6]}."
    run = backtested(workdir, prefix, list(synthetic(seed=seed, count=count, bad_rate=0.02)))
    records, replay, topics = run.records, run.replay, run.topics
    problems: list[str] = []

    broker = LocalBroker(port=free_port(), data_dir=workdir / "kafka", heap="512m")
    bootstrap = broker.start(timeout=BROKER_START_S)
    note(f"private broker on {bootstrap}")
    app_id = f"faults-{uuid.uuid4().hex[:6]}"
    workers = []
    try:
        create_topics(bootstrap, prefix, partitions=3)
        preload = count // 3
        publish(records[:preload], bootstrap, topics.raw)
        feed_errors: list[BaseException] = []

        def feed() -> None:
            try:
                publish(records[preload:], bootstrap, topics.raw, 400.0)
            except BaseException as exc:  # reported by the run, not lost in the thread
                feed_errors.append(exc)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()

        def start(n: int):
            worker = spawn_worker(
                bootstrap,
                prefix,
                app_id,
                config=str(run.config_file),
                log_path=str(workdir / f"worker{n}.log"),
                checkpoint_dir=str(workdir / "checkpoints"),
                extra_args=["--loglevel", "INFO"],
            )
            workers.append(worker)
            return worker

        first = start(1)
        fifth = len(replay) // 5
        seen = len(read_values(bootstrap, topics.decisions, fifth, 240))
        first.kill()
        first.wait(30)
        note(f"worker 1 SIGKILLed after {seen} decisions")

        second = start(2)
        half = len(replay) // 2
        seen = len(read_values(bootstrap, topics.decisions, half, 240))
        broker.stop()
        note(f"broker stopped after {seen} decisions; down for {down_s:g} s")
        time.sleep(down_s)
        broker.start(timeout=BROKER_START_S)
        note("broker started again")

        feeder.join(300)
        if feed_errors or feeder.is_alive():
            problems.append(f"the feed did not finish: {feed_errors[:1]!r}")
        out = live_outputs(bootstrap, run, app_id, timeout=300)
        if second.poll() is not None:
            problems.append(f"worker 2 exited with {second.returncode} (it must ride through)")
    finally:
        for worker in workers:
            stop_process(worker)
        broker.stop()

    problems += exactly_once_problems(run, out)
    recovered = (workdir / "worker2.log").read_text(errors="replace")
    if "committed offset" not in recovered or "replayed offsets" not in recovered:
        problems.append("worker 2 did not log its recovery at INFO")
    return Outcome(len(out.decisions), len(replay), problems, time.monotonic() - started)

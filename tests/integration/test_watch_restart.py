"""Restarting the watchtower on a real broker, over a worker's audit trail: stopped with
SIGTERM, then with SIGKILL, and started again with the same app id each time, it keeps its
chain heads and trading windows (its tables' changelogs), raises no AUDIT_* alert for what it
had checked, counts nothing twice, and goes on checking: one record broken after the
restarts raises exactly that alert."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from confluent_kafka import Producer
from stubs import read_all

from tests.integration.test_watch import HEAD, Alerts, value
from tickwise.schemas.decisions import AUDIT_ADAPTER, AuditRecord
from tickwise.schemas.topics import Topics
from tickwise.streams.config import load_config
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import free_port
from tickwise.streams.live.feed import publish
from tickwise.streams.live.metrics import Samples, scrape
from tickwise.streams.live.tap import spawn_watch, spawn_worker, stop_process
from tickwise.streams.sources import synthetic
from tickwise.streams.watch.anomaly import Anomalies
from tickwise.streams.watch.probe import admin_client, probe_group

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG = """
[watch]
stale_after_s = 600.0
check_interval_s = 0.5
"""
CHECKED = "tickwise_watch_checked_total"
BATCHES = (0, 1500, 2500, 3500)  # ticks before the first start, and before each restart
T = TypeVar("T")


def last_values(bootstrap: str, changelog: str) -> dict[str, object]:
    """A faust table as its changelog leaves it now: the last value per key (both JSON)."""
    return {json.loads(k or b""): json.loads(v) for k, v in read_all(bootstrap, changelog)}


def settled(read: Callable[[], T], want: T, timeout: float = 60.0) -> T:
    """``read()`` once it returns ``want``, or what it returns after ``timeout``: a table's
    changelog is written a moment after the table, so it is read again until it is there,
    rather than after a silence long enough for any write."""
    deadline = time.monotonic() + timeout
    while (got := read()) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    return got


class Tower:
    """One run of the watchtower, with its own /metrics port and log."""

    def __init__(self, bootstrap: str, prefix: str, config: Path, log: Path) -> None:
        self.port, self.log = free_port(), log
        self.proc = spawn_watch(bootstrap, prefix, str(config), self.port, str(log), "INFO")

    def until(self, holds: object, timeout: float = 300.0) -> Samples:
        deadline, samples = time.time() + timeout, {}
        while time.time() < deadline:
            assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
            try:
                samples = scrape(self.port)
            except OSError:
                samples = {}
            if samples and holds(samples):  # type: ignore[operator]
                return samples
            time.sleep(0.5)
        tail = self.log.read_text(errors="replace")[-3000:]
        raise AssertionError(f"never held within {timeout} s: {samples}\n{tail}")


@pytest.fixture
def running() -> Iterator[list[object]]:
    procs: list[object] = []
    yield procs
    for p in procs:
        if isinstance(p, Alerts):
            p.close()
        elif isinstance(p, Tower):
            stop_process(p.proc)
        else:
            stop_process(p)  # type: ignore[arg-type]


@pytest.mark.timeout(1800)  # a worker and three watchtower starts on a shared machine
def test_a_restarted_watchtower_keeps_its_heads_and_windows_and_goes_on_checking(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, running: list[object]
) -> None:
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    topics = Topics(topic_prefix)
    config = tmp_path / "tickwise.toml"
    config.write_text(CONFIG)
    alerts = Alerts(kafka_bootstrap, topics.alerts)
    running.append(alerts)
    app_id = f"restart-{uuid.uuid4().hex[:8]}"
    worker = spawn_worker(
        kafka_bootstrap, topic_prefix, app_id, str(config), str(tmp_path / "worker.log")
    )
    running.append(worker)
    admin = admin_client(kafka_bootstrap)
    ticks = list(synthetic(seed=16, count=BATCHES[-1]))

    def feed(batch: int) -> list[bytes]:
        """Publish the batch's ticks, wait until the worker decided them; the audit trail."""
        assert publish(ticks[BATCHES[batch] : BATCHES[batch + 1]], kafka_bootstrap, topics.raw)
        deadline = time.monotonic() + 600
        while probe_group(admin, app_id, topics.raw).lag > 0:
            assert time.monotonic() < deadline, "the worker never took its backlog"
            time.sleep(0.25)
        return [v for _, v in read_all(kafka_bootstrap, topics.audit)]  # all in: no lag

    def heads_of(trail: list[bytes]) -> dict[str, int]:
        last: dict[str, int] = {}
        for raw in trail:
            entry = AUDIT_ADAPTER.validate_json(raw)
            last[entry.instrument] = entry.seq
        return last

    def at_heads(heads: dict[str, int]) -> object:
        return lambda m: all(value(m, HEAD, instrument=i) == s for i, s in heads.items())

    trail = feed(0)
    first = Tower(kafka_bootstrap, topic_prefix, config, tmp_path / "watch1.log")
    running.append(first)
    first.until(lambda m: value(m, CHECKED, topic=topics.audit) == len(trail))
    first.until(at_heads(heads_of(trail)), 60)
    assert stop_process(first.proc) == 0  # SIGTERM: faust commits and stops

    # started again after the worker went on: only what is new is checked
    checked_before = len(trail)
    trail = feed(1)
    second = Tower(kafka_bootstrap, topic_prefix, config, tmp_path / "watch2.log")
    running.append(second)
    new = len(trail) - checked_before
    assert new > 0
    samples = second.until(lambda m: value(m, CHECKED, topic=topics.audit) == new)
    second.until(at_heads(heads_of(trail)), 60)
    assert value(samples, CHECKED, topic=topics.decisions) > 0

    # SIGKILL: whatever it had not committed is delivered again to the next run
    second.proc.kill()
    second.proc.wait(30)
    checked_before = len(trail)
    trail = feed(2)
    heads = heads_of(trail)
    third = Tower(kafka_bootstrap, topic_prefix, config, tmp_path / "watch3.log")
    running.append(third)
    samples = third.until(at_heads(heads))
    assert value(samples, CHECKED, topic=topics.audit) >= len(trail) - checked_before
    stop_process(worker)
    time.sleep(3)  # a look or more after the last record
    assert [a.code for _, a in alerts.seen if a.code.startswith("AUDIT")] == []

    # the tables hold what one pass over the whole trail holds: nothing lost, nothing twice
    changelog = f"{topic_prefix}tickwise-watch-{{}}-changelog".format

    def seqs() -> dict[str, int]:
        chain = last_values(kafka_bootstrap, changelog("chain-heads"))
        return {i: h["seq"] for i, h in chain.items()}  # type: ignore[index]

    assert settled(seqs, heads) == heads
    oracle: dict[str, object] = {}
    anomalies = Anomalies(load_config(str(config)), oracle)
    for raw in trail:
        anomalies.on_entry(AUDIT_ADAPTER.validate_json(raw))
    want = json.loads(json.dumps(oracle))
    windows = settled(lambda: last_values(kafka_bootstrap, changelog("trading-windows")), want)
    assert windows and windows == want

    # it goes on checking: the next record of one chain, its content changed after sealing
    last = max(
        (AuditRecord.model_validate_json(r) for r in trail if b'"kind":"hold_summary"' not in r),
        key=lambda r: r.seq,
    )
    doc = json.loads(last.to_bytes())
    doc.update(seq=last.seq + 1, audit_id=f"{last.audit_id}-next", prev_hash=last.hash)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})
    at: list[int] = []
    producer.produce(
        topics.audit,
        key=last.instrument.encode(),
        value=json.dumps(doc, separators=(",", ":")).encode(),
        on_delivery=lambda err, msg: at.append(msg.offset()),
    )
    producer.flush()
    broken = alerts.wait("AUDIT_BROKEN", 60, text=f"{last.audit_id}-next")
    assert f"@{at[0]}" in broken.detail and "hash does not match its content" in broken.detail
    assert broken.instrument == last.instrument
    third.until(lambda m: value(m, HEAD, instrument=last.instrument) == last.seq + 1, 60)
    time.sleep(3)
    assert [a.code for _, a in alerts.seen if a.code.startswith("AUDIT")] == ["AUDIT_BROKEN"]

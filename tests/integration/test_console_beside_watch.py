"""The console beside a watchtower, on a real broker: its page state carries the watchtower's
health and the chart series of its windows, its accounts are the watchtower's, and how much it
reads before it is ready does not grow with the topics (counted in messages read, not time)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.stubs import audit_bodies
from tickwise.schemas.decisions import AuditRecord
from tickwise.schemas.topics import Topics
from tickwise.streams.console.charts import instrument_series
from tickwise.streams.console.server import spawn_console
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import free_port
from tickwise.streams.live.tap import spawn_watch, stop_process

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

VIEWER = "viewer-" + uuid.uuid4().hex
USERS = f"bob:viewer:{VIEWER}"
PARTITIONS = 3


def get(url: str, token: str | None = VIEWER) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, json.loads(body) if exc.headers.get_content_type().endswith(
            "json"
        ) else body


def until(read: Callable[[], Any], holds: Callable[[Any], bool], timeout: float) -> Any:
    deadline, value = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = read()
        except OSError:
            value = None
        if value is not None and holds(value):
            return value
        time.sleep(0.5)
    raise AssertionError(f"never held within {timeout} s; last: {str(value)[-1500:]}")


@dataclass
class Tower:
    bootstrap: str
    topics: Topics
    url: str
    workdir: Path

    def console(self, name: str, **kwargs: Any) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        proc = spawn_console(
            self.bootstrap, self.topics.prefix, port, USERS,
            log_path=str(self.workdir / f"{name}.log"), **kwargs,
        )  # fmt: skip
        return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def tower(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tower]:
    """A watchtower with its views on loopback, over topics of its own."""
    workdir = tmp_path_factory.mktemp("console-watch")
    prefix = f"cw{uuid.uuid4().hex[:8]}."
    create_topics(kafka_bootstrap, prefix, partitions=PARTITIONS)
    config = workdir / "tickwise.toml"
    config.write_text(
        '[watch]\ncheck_interval_s = 0.5\nworker_group = "nobody"\n'
        "[watch.anomaly]\nwindow_s = 1.0\nhop_size_s = 3.0\nhop_step_s = 1.0\n"
    )
    port = free_port()
    log = workdir / "watch.log"
    proc = spawn_watch(
        kafka_bootstrap, prefix, str(config), free_port(), str(log), "INFO",
        web_port=port, users=USERS,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: get(url + "/watch/health"), lambda r: r[1]["last_look"] is not None, 120)
        yield Tower(kafka_bootstrap, Topics(prefix), url, workdir)
    finally:
        stop_process(proc)
        print(log.read_text(errors="replace")[-3000:])


def sizes(bootstrap: str, topic: str) -> list[int]:
    """Messages each partition of ``topic`` holds (no transactions here: no markers)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"sizes-{uuid.uuid4().hex[:6]}"})
    try:
        out = []
        for p in range(PARTITIONS):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            out.append(high - low)
        return out
    finally:
        c.close()


def feed(tower: Tower, bodies: list[bytes]) -> int:
    """Publish audit records and their decisions, keyed by instrument; return the fills."""
    producer = Producer({"bootstrap.servers": tower.bootstrap, "linger.ms": 5})
    fills = 0
    for raw in bodies:
        record = AuditRecord.model_validate_json(raw)
        key = record.instrument.encode()
        producer.produce(tower.topics.audit, key=key, value=raw)
        producer.produce(tower.topics.decisions, key=key, value=record.decision.to_bytes())
        fills += len(record.fills)
    producer.flush()
    return fills


def test_the_views_refuse_anonymous_reads_and_a_bad_query(tower: Tower) -> None:
    assert get(tower.url + "/watch/health", token=None)[0] == 401
    assert get(tower.url + "/watch/windows", token="not-a-user-token")[0] == 401
    status, body = get(tower.url + "/watch/windows?instrument=no%20such")
    assert status == 400 and "not an instrument" in body["error"]
    assert get(tower.url + "/table/")[0] == 404  # faust's own table pages stay off


def test_the_console_shows_the_watchtowers_health_windows_and_accounts(tower: Tower) -> None:
    fills = feed(tower, audit_bodies(1500, holds="each"))
    # the watchtower has counted every fill
    windows = until(
        lambda: get(tower.url + "/watch/windows")[1],
        lambda w: sum(x["fills"] for k in w["keys"] for x in k["tumbling"]) == fills > 0,
        60,
    )
    console, url = tower.console("console", watch_url=tower.url, watch_token=VIEWER)
    try:
        # the same windows on both sides, once the watchtower has read the whole trail
        state, windows = until(
            lambda: (get(url + "/api/state")[1], get(tower.url + "/watch/windows")[1]),
            lambda both: (
                both[0]["ready"] and both[0]["watch"]["charts"] == instrument_series(both[1])
            ),
            60,
        )
        watch = state["watch"]
        assert watch["url"] == tower.url and watch["error"] is None
        health = get(tower.url + "/watch/health")[1]
        assert watch["health"]["workers"]["group"] == health["workers"]["group"] == "nobody"
        assert {"code": "WORKER_DOWN", "subject": "nobody"} in watch["health"]["firing"]
        assert watch["lag"]["t"] and len(watch["lag"]["t"]) == len(watch["lag"]["lag"])
        instruments = {k["instrument"] for k in windows["keys"]}
        assert set(watch["charts"]) == instruments and len(instruments) > 1
        assert all(len(c["t"]) >= 5 and any(c["orders"]) for c in watch["charts"].values())
        for name in instruments:  # the account over the whole trail, not the console's tail
            last = max(
                (k for k in windows["keys"] if k["instrument"] == name),
                key=lambda k: k["latest_ns"],
            )
            if last["account"]["cash"] is not None:
                shown = state["instruments"][name]
                assert shown["position"] == last["account"]["position"]
                assert shown["realized_pnl"] == last["account"]["realized_pnl"]
        # one instrument's windows, as the views serve them
        name = sorted(instruments)[0]
        one = get(tower.url + f"/watch/windows?instrument={name}")[1]
        assert [k["key"] for k in one["keys"]] == [
            k["key"] for k in windows["keys"] if k["instrument"] == name
        ]
    finally:
        stop_process(console)


def test_a_console_beside_the_watchtower_reads_the_tail_whatever_the_topics_hold(
    tower: Tower,
) -> None:
    """Thousands of old decisions: the console beside the watchtower reads the last ``tail``
    of each partition and is ready; one standing alone reads every one of them first."""
    bodies = audit_bodies(2000, seed=9, holds="each")
    feed(tower, bodies)
    health = until(lambda: get(tower.url + "/watch/health")[1], lambda h: h["chains"], 30)
    tail = 40
    held = {t: sizes(tower.bootstrap, t) for t in (tower.topics.decisions, tower.topics.audit)}
    assert sum(held[tower.topics.decisions]) > 10 * tail * PARTITIONS
    beside, url = tower.console("tail", watch_url=tower.url, watch_token=VIEWER, tail=tail)
    alone, alone_url = tower.console("alone")
    try:
        state = until(lambda: get(url + "/api/state")[1], lambda s: s["ready"], 60)
        for topic, name in ((tower.topics.decisions, "decisions"), (tower.topics.audit, "audit")):
            assert state["counts"][name] == sum(min(tail, n) for n in held[topic])
        assert state["watch"]["health"]["chains"].keys() == health["chains"].keys()
        full = until(lambda: get(alone_url + "/api/state")[1], lambda s: s["ready"], 120)
        assert full["watch"] is None
        assert full["counts"]["decisions"] == sum(held[tower.topics.decisions])
    finally:
        stop_process(beside)
        stop_process(alone)

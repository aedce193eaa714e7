"""``tickwise watch`` on a real broker: tampered audit records fed to a side topic raise their
alerts within 5 s naming the offsets, a feed that stops is stale for that instrument only (and
not at all outside its session hours), also after a burst of ticks as fast as a producer goes
(each read once, each instrument's last one in the feed table), a SIGKILLed worker is down and
behind until it is restarted, and its /metrics show what it found and the kill switches in
force."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.integration.test_watch_ticks import BURST, INSTRUMENTS, READ, burst
from tests.stubs import audit_bodies, read_all
from tickwise.schemas.decisions import Alert, AuditRecord, ControlCommand
from tickwise.schemas.topics import Topics
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import free_port
from tickwise.streams.live.control import send_control
from tickwise.streams.live.feed import publish
from tickwise.streams.live.metrics import Samples, scrape
from tickwise.streams.live.tap import consumer, spawn_watch, spawn_worker, stop_process
from tickwise.streams.sources import synthetic
from tickwise.streams.watch.sessions import DAYS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ALERT_WITHIN_S = 5.0
STALE, AGE = "tickwise_watch_feed_stale", "tickwise_watch_feed_age_seconds"
KILL, HEAD = "tickwise_watch_kill_switch", "tickwise_watch_audit_chain_head_seq"
ALERTS = "tickwise_watch_alerts_total"


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


class Alerts:
    """The alerts topic, read in a thread, each alert with the wall time it was read."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.seen: list[tuple[float, Alert]] = []
        self._stop = threading.Event()
        self._c = consumer(bootstrap, [topic])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._c.poll(0.1)
            if msg is not None and not msg.error():
                self.seen.append((time.time(), Alert.model_validate_json(msg.value())))

    def wait(self, code: str, timeout: float, since: float = 0.0, text: str = "") -> Alert:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t, alert in list(self.seen):
                if t >= since and alert.code == code and text in alert.detail:
                    return alert
            time.sleep(0.05)
        codes = [(a.code, a.detail[:120]) for _, a in self.seen]
        raise AssertionError(f"no {code} ({text!r}) within {timeout} s; seen: {codes}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._c.close()


@dataclass
class Watched:
    """A running watchtower: its topics, its alerts as read, a producer, its /metrics port and
    its process."""

    topics: Topics
    alerts: Alerts
    producer: Producer
    metrics_port: int
    proc: subprocess.Popen[bytes]

    def metrics_until(self, holds: Callable[[Samples], bool], timeout: float) -> Samples:
        """Scrape until ``holds`` is true of the samples; fail with the last ones."""
        deadline, samples = time.time() + timeout, {}
        while time.time() < deadline:
            samples = {k: v for k, v in scrape(self.metrics_port).items() if "watch" in k[0]}
            if holds(samples):
                return samples
            time.sleep(0.5)
        raise AssertionError(f"metrics never held within {timeout} s: {samples}")


@pytest.fixture
def watch(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> Iterator[Callable[[str], Watched]]:
    """Start a watchtower with a ``[watch]`` section: topics, its alerts and a producer."""
    running: list[tuple[subprocess.Popen[bytes], Alerts]] = []

    def start(section: str) -> Watched:
        config = tmp_path / "tickwise.toml"
        config.write_text("[watch]\n" + section)
        create_topics(kafka_bootstrap, topic_prefix, partitions=3)
        topics = Topics(topic_prefix)
        alerts = Alerts(kafka_bootstrap, topics.alerts)
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})
        port = free_port()
        log = str(tmp_path / "watch.log")
        proc = spawn_watch(kafka_bootstrap, topic_prefix, str(config), port, log, "INFO")
        running.append((proc, alerts))
        # ready once it has read something: a message that is no audit record
        producer.produce(topics.audit, key=b"probe", value=b"not a record")
        producer.flush()
        alerts.wait("AUDIT_UNREADABLE", 90)
        return Watched(topics, alerts, producer, port, proc)

    yield start
    for proc, alerts in running:
        stop_process(proc)
        alerts.close()
    if (tmp_path / "watch.log").exists():
        print((tmp_path / "watch.log").read_text(errors="replace")[-3000:])


def _by_instrument() -> dict[str, list[bytes]]:
    chains: dict[str, list[bytes]] = {}
    for raw in audit_bodies(1500, holds="each"):
        chains.setdefault(AuditRecord.model_validate_json(raw).instrument, []).append(raw)
    return chains


def _send(producer: Producer, topic: str, bodies: list[bytes]) -> list[int]:
    """Publish in order; return each message's offset."""
    offsets: list[int] = []

    def note(err: object, msg: object) -> None:
        assert err is None, err
        offsets.append(msg.offset())  # type: ignore[attr-defined]

    for raw in bodies:
        key = AuditRecord.model_validate_json(raw).instrument.encode()
        producer.produce(topic, key=key, value=raw, on_delivery=note)
    producer.flush()
    return offsets


def test_altered_dropped_and_swapped_records_raise_their_alerts_within_5_s(
    watch: Callable[[str], Watched],
) -> None:
    watched = watch("stale_after_s = 600.0\n")
    topics, alerts, producer = watched.topics, watched.alerts, watched.producer
    chains = _by_instrument()
    altered_i, dropped_i, swapped_i = sorted(chains, key=lambda i: -len(chains[i]))[:3]

    # altered: one field of record 6 changed, its hash left as it was
    bodies = chains[altered_i][:12]
    doc = json.loads(bodies[6])
    doc["signal"]["score"] = doc["signal"]["score"] / 2 + 0.25
    bodies[6] = json.dumps(doc, separators=(",", ":")).encode()
    sent = time.time()
    offsets = _send(producer, topics.audit, bodies)
    alert = alerts.wait("AUDIT_BROKEN", ALERT_WITHIN_S, text=doc["audit_id"])
    assert f"@{offsets[6]}" in alert.detail and "hash does not match" in alert.detail
    assert alert.instrument == altered_i and alert.severity.value == "CRITICAL"
    assert time.time() - sent < ALERT_WITHIN_S + 1

    # dropped: record 5 never published; the alert names the record after and the one before
    bodies = chains[dropped_i][:12]
    gone = AuditRecord.model_validate_json(bodies.pop(5))
    offsets = _send(producer, topics.audit, bodies)
    alert = alerts.wait("AUDIT_GAP", ALERT_WITHIN_S, text=f"aud-{dropped_i}-{gone.seq + 1} ")
    assert f"@{offsets[5]}" in alert.detail and f"@{offsets[4]}" in alert.detail

    # swapped: records 3 and 4 published in each other's place
    bodies = chains[swapped_i][:12]
    bodies[3], bodies[4] = bodies[4], bodies[3]
    offsets = _send(producer, topics.audit, bodies)
    gap = alerts.wait("AUDIT_GAP", ALERT_WITHIN_S, text=f"aud-{swapped_i}-4 ")
    late = alerts.wait("AUDIT_REORDERED", ALERT_WITHIN_S, text=f"aud-{swapped_i}-3 ")
    assert f"@{offsets[3]}" in gap.detail and f"@{offsets[4]}" in late.detail

    time.sleep(2)  # nothing else: every other record linked
    audit_codes = sorted(a.code for _, a in alerts.seen if a.code.startswith("AUDIT"))
    expected = ["AUDIT_BROKEN", "AUDIT_GAP", "AUDIT_GAP", "AUDIT_REORDERED", "AUDIT_UNREADABLE"]
    assert audit_codes == expected


def test_a_feed_that_stops_is_stale_for_that_instrument_only(
    watch: Callable[[str], Watched],
) -> None:
    section = 'stale_after_s = 2.0\ncheck_interval_s = 0.5\nmax_lag = 10\nworker_group = "nobody-'
    # CL's market is closed for the next two hours: its silence is no staleness
    opens = datetime.now(UTC) + timedelta(hours=2)
    closed = f'[watch.sessions.CL]\ntimezone = "UTC"\nopen = "{opens:%H:%M}"\n'
    closed += f'close = "{opens + timedelta(hours=1):%H:%M}"\ndays = {list(DAYS)}\n'
    watched = watch(section + f'{uuid.uuid4().hex}"\n' + closed)
    topics, alerts, producer = watched.topics, watched.alerts, watched.producer
    start = time.time()

    def tick(*instruments: str) -> None:
        for instrument in instruments:
            producer.produce(topics.raw, key=instrument.encode(), value=b"{}")
        producer.flush()

    tick("CL")
    while time.time() - start < 3:
        tick("ES", "NQ")
        time.sleep(0.2)
    stopped = time.time()
    while time.time() - stopped < 6:
        tick("NQ")
        time.sleep(0.2)
    stale = alerts.wait("FEED_STALE", 1, since=start)
    assert stale.instrument == "ES" and "ES: no tick" in stale.detail
    assert [a.instrument for _, a in alerts.seen if a.code == "FEED_STALE"] == ["ES"]
    samples = watched.metrics_until(lambda m: value(m, STALE, instrument="ES") == 1, 30)
    assert value(samples, STALE, instrument="NQ") == value(samples, STALE, instrument="CL") == 0
    assert value(samples, "tickwise_watch_feed_in_session", instrument="CL") == 0
    assert value(samples, "tickwise_watch_feed_in_session", instrument="ES") == 1
    assert value(samples, AGE, instrument="ES") > value(samples, AGE, instrument="NQ")  # type: ignore[operator]
    tick("ES")
    cleared = alerts.wait("FEED_STALE_CLEARED", 5, since=stopped)
    assert cleared.instrument == "ES"
    # no worker in the group: down, and its backlog is every tick published
    assert "has no member" in alerts.wait("WORKER_DOWN", 1).detail
    assert "messages behind on ticks.raw" in alerts.wait("WORKER_LAG", 1).detail
    samples = watched.metrics_until(lambda m: value(m, STALE, instrument="ES") == 0, 30)
    group = {k[1][0][1] for k in samples if k[0] == "tickwise_watch_worker_members"}.pop()
    assert value(samples, "tickwise_watch_worker_members", group=group) == 0
    assert value(samples, "tickwise_watch_worker_lag_messages", group=group) > 10  # type: ignore[operator]
    assert value(samples, "tickwise_watch_broker_reachable") == 1
    raised = value(samples, ALERTS, code="FEED_STALE", severity="WARNING")
    assert raised == 1 and value(samples, ALERTS, code="AUDIT_GAP", severity="CRITICAL") == 0


def test_the_watchtower_keeps_each_last_tick_of_a_burst_and_flags_the_feed_that_stops(
    watch: Callable[[str], Watched], kafka_bootstrap: str, topic_prefix: str
) -> None:
    watched = watch('stale_after_s = 3.0\ncheck_interval_s = 0.5\nworker_group = "nobody"\n')
    topics, producer = watched.topics, watched.producer
    started = time.time()
    burst(producer, topics.raw, BURST - len(INSTRUMENTS), INSTRUMENTS)
    sent = time.time()  # just before each instrument's last tick was sent
    burst(producer, topics.raw, len(INSTRUMENTS), INSTRUMENTS)
    # ES goes on ticking; the others stopped with the burst
    es_ticks = 0
    while time.time() - started < 10:
        burst(producer, topics.raw, 1, ("ES",))
        es_ticks += 1
        time.sleep(0.2)
    samples = watched.metrics_until(lambda m: value(m, READ) == BURST + es_ticks, 30)
    stopped = set(INSTRUMENTS) - {"ES"}
    flagged = [a.instrument for _, a in watched.alerts.seen if a.code == "FEED_STALE"]
    assert sorted(flagged) == sorted(stopped)  # each once, ES never
    assert value(samples, STALE, instrument="ES") == 0
    assert all(value(samples, STALE, instrument=i) == 1 for i in stopped)
    # the feed table (its changelog): every instrument, each seen no earlier than its last tick
    assert stop_process(watched.proc) == 0  # the reader's thread stops with the app
    changelog = f"{topic_prefix}tickwise-watch-feed-last-tick-changelog"
    feeds = {json.loads(k or b""): json.loads(v) for k, v in read_all(kafka_bootstrap, changelog)}
    assert set(feeds) == set(INSTRUMENTS)
    assert all(float(feeds[i]) >= sent for i in stopped)  # type: ignore[arg-type]


def test_metrics_show_kill_switches_and_chain_heads(
    watch: Callable[[str], Watched], kafka_bootstrap: str
) -> None:
    watched = watch("stale_after_s = 600.0\ncheck_interval_s = 0.5\n")
    topics = watched.topics

    def switch(state: str, scope: str, n: int) -> None:
        command = ControlCommand(
            command_id=f"k{n}-{uuid.uuid4().hex[:6]}",
            command=f"kill_switch_{state}",  # type: ignore[arg-type]
            scope=scope,
            reason="test",
            operator="tester",
            ts_event_ns=time.time_ns(),
        )
        send_control(kafka_bootstrap, topics.control, command)

    switch("on", "global", 1)
    switch("on", "ES", 2)
    switch("off", "global", 3)
    watched.producer.produce(topics.control, key=b"junk", value=b"{}")
    chains = _by_instrument()
    instrument = max(chains, key=lambda i: len(chains[i]))
    bodies = chains[instrument][:8]
    _send(watched.producer, topics.audit, bodies)
    last_seq = AuditRecord.model_validate_json(bodies[-1]).seq

    def settled(m: Samples) -> bool:
        return (
            value(m, KILL, scope="ES") == 1
            and value(m, KILL, scope="global") == 0
            and value(m, HEAD, instrument=instrument) == last_seq
        )

    samples = watched.metrics_until(settled, 60)
    assert "not a control command" in watched.alerts.wait("CONTROL_UNREADABLE", 30).detail
    checked = value(samples, "tickwise_watch_checked_total", topic=topics.audit)
    assert checked == len(bodies) + 1  # and the probe that is no record
    assert value(samples, ALERTS, code="AUDIT_UNREADABLE", severity="CRITICAL") == 1


def test_a_sigkilled_worker_is_down_and_behind_until_it_restarts(
    watch: Callable[[str], Watched], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    app_id = f"watched-{uuid.uuid4().hex[:8]}"
    section = (
        f'stale_after_s = 600.0\ncheck_interval_s = 0.5\nmax_lag = 100\nworker_group = "{app_id}"\n'
    )
    watched = watch(section)
    topics, alerts = watched.topics, watched.alerts
    records = list(synthetic(seed=16, count=3000))

    def start(n: int) -> subprocess.Popen[bytes]:
        return spawn_worker(
            kafka_bootstrap,
            topic_prefix,
            app_id,
            log_path=str(tmp_path / f"worker{n}.log"),
            checkpoint_dir=str(tmp_path / "checkpoints"),
        )

    # before any worker: the group has no member and every published tick is its backlog
    assert publish(records[:1500], kafka_bootstrap, topics.raw) == 1500
    alerts.wait("WORKER_DOWN", 60, text=app_id)
    alerts.wait("WORKER_LAG", 60, text=app_id)
    first = start(1)
    try:
        alerts.wait("WORKER_DOWN_CLEARED", 180, text=app_id)
        alerts.wait("WORKER_LAG_CLEARED", 240, text=app_id)  # it took its backlog
        killed = time.time()
        first.kill()
        first.wait(30)
    finally:
        stop_process(first)
    # while it is dead, the feed goes on: down once its session times out, and behind
    assert publish(records[1500:], kafka_bootstrap, topics.raw) == 1500
    down = alerts.wait("WORKER_DOWN", 120, since=killed, text=app_id)
    assert down.severity.value == "CRITICAL" and "has no member" in down.detail
    lag = alerts.wait("WORKER_LAG", 120, since=killed, text=app_id)
    assert "messages behind on ticks.raw" in lag.detail
    samples = watched.metrics_until(
        lambda m: value(m, "tickwise_watch_worker_members", group=app_id) == 0, 30
    )
    assert value(samples, "tickwise_watch_worker_lag_messages", group=app_id) > 100  # type: ignore[operator]

    restarted = time.time()
    second = start(2)
    try:
        alerts.wait("WORKER_DOWN_CLEARED", 180, since=restarted, text=app_id)
        alerts.wait("WORKER_LAG_CLEARED", 240, since=restarted, text=app_id)
        samples = watched.metrics_until(
            lambda m: (value(m, "tickwise_watch_worker_members", group=app_id) or 0) >= 1, 30
        )
        # while it runs: down and cleared as often as the worker went and came, no more
        codes = [a.code for _, a in alerts.seen if a.code.startswith("WORKER_DOWN")]
    finally:
        stop_process(second)
    assert value(samples, "tickwise_watch_worker_lag_messages", group=app_id) <= 100  # type: ignore[operator]
    assert codes == ["WORKER_DOWN", "WORKER_DOWN_CLEARED"] * 2

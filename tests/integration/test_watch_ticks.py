"""The watchtower's raw-tick reader on a real broker: a burst of ticks published as fast as a
producer goes leaves each instrument's latest tick the last one published, every tick read once;
a reader started later reads the last ``lookback_s`` of the topic, not its history. In the
watchtower: ``test_watch.py``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from tickwise.schemas.topics import Topics
from tickwise.streams.live.admin import create_topics
from tickwise.streams.watch.ticks import LastTick, LatestTicks, TickReader

pytestmark = [pytest.mark.kafka]

INSTRUMENTS = ("ES", "NQ", "CL", "GC", "ZN")
BURST = 30_000
READ = "tickwise_watch_ticks_read_total"


def burst(
    producer: Producer, topic: str, count: int, instruments: tuple[str, ...], ts_ms: int = 0
) -> dict[str, tuple[int, int]]:
    """Publish ``count`` ticks round the instruments as fast as the producer goes; each
    instrument's last tick as the broker placed it: (partition, offset)."""
    last: dict[str, tuple[int, int]] = {}

    def placed(err: object, msg: object) -> None:
        assert err is None, err
        key = msg.key().decode()  # type: ignore[attr-defined]
        at = (msg.partition(), msg.offset())  # type: ignore[attr-defined]
        last[key] = max(last.get(key, at), at)

    for i in range(count):
        instrument = instruments[i % len(instruments)]
        body = json.dumps({"instrument": instrument, "n": i}).encode()
        producer.produce(
            topic, key=instrument.encode(), value=body, on_delivery=placed, timestamp=ts_ms
        )
        if i % 5000 == 4999:
            producer.poll(0)
    producer.flush(60)
    return last


class Reading:
    """A reader on its thread, what it noted taken as the watchtower's look takes it."""

    def __init__(self, bootstrap: str, topic: str, lookback_s: float) -> None:
        self.latest = LatestTicks()
        self.read = self.errors = 0
        self.view: dict[str, LastTick] = {}
        self.reader = TickReader(
            bootstrap, topic, "tickwise-watch-test", self.latest, lookback_s, self._read, self._err
        )
        self.reader.start()

    def _read(self, n: int) -> None:
        self.read += n

    def _err(self) -> None:
        self.errors += 1

    def until(self, holds: Callable[[Reading], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.view.update(self.latest.take())
            if holds(self):
                return
            time.sleep(0.1)
        raise AssertionError(f"never held within {timeout} s: read {self.read}, {self.view}")


def test_a_burst_leaves_each_instrument_at_its_last_tick_every_tick_read(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    topic = Topics(topic_prefix).raw
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
    probe = burst(producer, topic, 1, ("PROBE",))
    reading = Reading(kafka_bootstrap, topic, lookback_s=600.0)
    try:
        reading.until(lambda r: "PROBE" in r.view)  # it reads: the burst is no backlog to it
        before = time.time()
        last = burst(producer, topic, BURST, INSTRUMENTS)
        reading.until(lambda r: r.read == BURST + 1)
        reading.until(lambda r: all(r.view[i][:2] == at for i, at in last.items()), 10)
        assert reading.view["PROBE"][:2] == probe["PROBE"]
        assert all(reading.view[i].seen >= before for i in INSTRUMENTS)
        time.sleep(1)
        assert reading.read == BURST + 1  # nothing read twice
    finally:
        assert reading.reader.stop()


def test_a_reader_started_later_reads_the_lookback_not_the_history(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    topic = Topics(topic_prefix).raw
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
    hour_ago = int((time.time() - 3600) * 1000)
    burst(producer, topic, 3000, ("OLD", "ES"), ts_ms=hour_ago)  # retired OLD, and ES an hour ago
    recent = burst(producer, topic, 3000, ("ES", "NQ", "CL"))
    reading = Reading(kafka_bootstrap, topic, lookback_s=600.0)
    try:
        reading.until(lambda r: r.read == 3000)
        reading.until(lambda r: {i: t[:2] for i, t in r.view.items()} == recent, 10)
        assert "OLD" not in reading.view
    finally:
        assert reading.reader.stop()

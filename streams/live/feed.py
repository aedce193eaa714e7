"""``tickwise feed``: publish recorded or synthetic ticks to ``ticks.raw``.

The producer is idempotent with ``acks=all``, so a retry inside the client cannot duplicate a
tick; keys are instruments, so each instrument's ticks stay in order on one partition.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable

from confluent_kafka import Producer

from tickwise.schemas.topics import Topics
from tickwise.streams.live.bootstrap import resolve_bootstrap
from tickwise.streams.live.security import env_client_config
from tickwise.streams.progress import PROGRESS_EVERY, Progress, utc_second, wants_progress
from tickwise.streams.sources import RawRecord, SourceError, open_sources


class Pacer:
    """Hold publishing to a fixed rate or to a multiple of the recorded pace.

    The wall clock is used here only to pace delivery; nothing downstream reads it.
    """

    def __init__(self, rate: float = 0.0, speed: float = 0.0) -> None:
        self.rate, self.speed = rate, speed
        self._start = time.monotonic()
        self._first_ts: int | None = None
        self._sent = 0

    def wait(self, record: RawRecord) -> None:
        due: float | None = None
        if self.rate > 0:
            due = self._start + self._sent / self.rate
        elif self.speed > 0 and record.ts_event_ns is not None:
            if self._first_ts is None:
                self._first_ts = record.ts_event_ns
            due = self._start + (record.ts_event_ns - self._first_ts) / 1e9 / self.speed
        self._sent += 1
        if due is not None:
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def publish(
    records: Iterable[RawRecord],
    bootstrap: str,
    topic: str,
    rate: float = 0.0,
    speed: float = 0.0,
    progress: bool = False,
    desc: str = "feed",
    time_field: str = "event_time",
) -> int:
    """Publish every record; return how many were acknowledged. Raises if any delivery failed.

    With ``progress``, a bar named ``desc`` counts the records sent, those acknowledged, and
    the last record's ``ts_event_ns`` under ``time_field``.
    """
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
            **env_client_config(),
        }
    )
    failures: list[str] = []
    acked = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal acked
        if err is not None:
            failures.append(str(err))
        else:
            acked += 1

    pacer = Pacer(rate, speed)
    sent = 0
    last_ts: int | None = None
    with Progress(progress, desc, unit="records") as bar:
        for record in records:
            pacer.wait(record)
            while True:
                try:
                    producer.produce(
                        topic,
                        record.payload,
                        record.key.encode(),
                        on_delivery=on_delivery,
                        headers=list(record.headers) if record.headers else None,
                    )
                    break
                except BufferError:  # local queue full: let the client drain, then retry
                    producer.poll(0.05)
            producer.poll(0)
            sent += 1
            last_ts = record.ts_event_ns
            if sent % PROGRESS_EVERY == 0:
                bar.update(sent, acked=acked, **{time_field: utc_second(last_ts)})
        remaining = producer.flush(60)
        bar.close(sent, acked=acked, **{time_field: utc_second(last_ts)})
    if failures or remaining:
        raise RuntimeError(f"{len(failures)} deliveries failed, {remaining} unsent: {failures[:3]}")
    return acked


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise feed`` and return the exit code."""
    if not args.synthetic and not args.file:
        print("tickwise feed: give --file PATH or --synthetic", file=sys.stderr)
        return 2
    topic = Topics(args.topic_prefix).raw
    try:
        sent = publish(
            open_sources(args, args.file or []),
            resolve_bootstrap(args),
            topic,
            args.rate,
            args.speed,
            progress=wants_progress(args),
        )
    except SourceError as exc:
        print(f"tickwise feed: {exc}", file=sys.stderr)
        return 2
    print(f"published {sent} records to {topic}")
    return 0

"""The raw ticks' side of the watchtower: each instrument's latest tick, read in batches.

Of ``ticks.raw`` the watchtower needs only which instrument ticked and when it saw that (the
wall clock of FEED_STALE), never a tick's content. faust hands every message through its
stream as an event, which bounds it at a few thousand ticks a second, below a feed at full
rate. So a confluent-kafka consumer on a thread of its own takes the ticks a batch at a time,
reads their keys only, and keeps per instrument the latest (partition, offset, wall time);
the app's timer takes those (``LatestTicks.take``) into its feed table, so the table, its
changelog and its restore stay faust's.

No group offsets: the consumer assigns itself every partition and commits nothing. Freshness
is about what arrives now, and the feed table already carries the last tick seen across a
restart; resuming from a committed offset would only re-read the ticks of an outage and mark
them seen at reading time, making a feed that died meanwhile look alive. Each partition is read
from its first record of the last ``lookback_s`` (Kafka's timestamps), so a (re)started
watchtower learns at once the instruments that ticked that recently, and never reads the
topic's history.

The thread outlives a broker's restart (librdkafka reconnects and goes on fetching from where
it was; errors are logged and counted, never raised out of it) and stops with the app.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tickwise.streams.live.reader import TRANSIENT, consumer_settings

log = logging.getLogger(__name__)

BATCH = 10_000  # messages a consume call returns at most
WAIT_S = 0.2  # how long a consume call waits for its batch: the stop's and the freshness' delay
RETRY_S = 1.0  # between attempts to (re)build the consumer while the broker does not answer
METADATA_TIMEOUT_S = 10.0


class KeyedMessage(Protocol):
    """What a batch's messages offer: confluent-kafka's ``Message``."""

    def error(self) -> KafkaError | None: ...
    def key(self) -> bytes | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


class LastTick(NamedTuple):
    """An instrument's latest tick read: where it was, and the wall time (s) it was read."""

    partition: int
    offset: int
    seen: float


def latest_of(batch: Iterable[KeyedMessage]) -> tuple[dict[bytes, tuple[int, int]], int]:
    """Per key, the (partition, offset) of its last message in ``batch``; and how many messages
    were ticks. Keys only: a later message of a key replaces the earlier one, an empty key or an
    error event counts for nothing.

    Examples
    --------
    >>> class M:
    ...     def __init__(self, key, offset): self.k, self.o = key, offset
    ...     def error(self): return None
    ...     def key(self): return self.k
    ...     def partition(self): return 0
    ...     def offset(self): return self.o
    >>> latest_of([M(b"ES", 1), M(b"NQ", 2), M(b"ES", 3), M(None, 4)])
    ({b'ES': (0, 3), b'NQ': (0, 2)}, 3)
    """
    ticks = [m for m in batch if m.error() is None and m.key()]
    return {m.key(): (m.partition(), m.offset()) for m in ticks}, len(ticks)  # type: ignore[misc]


class LatestTicks:
    """Per instrument, the latest tick read: written by the reader's thread, taken by the
    app's timer; a lock around a small dict, one entry per instrument."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, LastTick] = {}

    def note(self, batch: Iterable[KeyedMessage], now: float) -> int:
        """Keep the latest tick of each instrument of ``batch``, read at ``now``; how many ticks
        the batch held."""
        latest, ticks = latest_of(batch)
        if not latest:
            return ticks
        found = {
            key.decode(errors="replace"): LastTick(partition, offset, now)
            for key, (partition, offset) in latest.items()
        }
        with self._lock:
            self._latest.update(found)
        return ticks

    def take(self) -> dict[str, LastTick]:
        """What was read since the last take, and forget it."""
        with self._lock:
            taken, self._latest = self._latest, {}
        return taken


class TickReader:
    """A thread that reads ``topic``'s keys into ``latest`` until ``stop``.

    ``on_read(n)`` and ``on_error()`` are told of each batch's ticks and each error (metrics);
    ``clock`` gives the wall time a batch was read at.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        latest: LatestTicks,
        lookback_s: float,
        on_read: Callable[[int], None] = lambda n: None,
        on_error: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topic, self.latest, self.lookback_s = topic, latest, lookback_s
        self._settings = consumer_settings(
            bootstrap,
            group,  # a formality: it never joins the group nor commits
            **{
                "isolation.level": "read_committed",
                "auto.offset.reset": "latest",  # an offset retention trimmed: the newest ticks
                "error_cb": self._on_client_error,
            },
        )
        self._on_read, self._on_error, self._clock = on_read, on_error, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tickwise-watch-ticks", daemon=True)
        self._last_error = ""  # the error last logged, so a broker outage logs once, not per poll

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the thread to stop and wait for it; False if it had not stopped by ``timeout``."""
        self._stop.set()
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the raw-tick reader has not stopped after %.0f s", timeout)
            return False
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            consumer = self._open()
            if consumer is None:
                return  # stopped while the broker did not answer
            try:
                self._read(consumer)
            except Exception as exc:  # whatever it raised: a new consumer, never a dead thread
                self._report(f"reading {self.topic} failed: {exc!r}; opening a new consumer")
                self._stop.wait(RETRY_S)
            finally:
                try:
                    consumer.close()
                except (KafkaException, RuntimeError) as exc:
                    log.warning("closing the raw-tick consumer: %r", exc)

    def _open(self) -> Consumer | None:
        """A consumer assigned every partition from its first tick of the last ``lookback_s``;
        retried until the broker answers or the reader is stopped."""
        while not self._stop.is_set():
            consumer = Consumer(self._settings)
            try:
                consumer.assign(self._starts(consumer))
                return consumer
            except (KafkaException, RuntimeError) as exc:
                self._report(f"cannot start reading {self.topic}: {exc}")
                consumer.close()
                self._stop.wait(RETRY_S)
        return None

    def _starts(self, consumer: Consumer) -> list[TopicPartition]:
        meta = consumer.list_topics(self.topic, timeout=METADATA_TIMEOUT_S).topics.get(self.topic)
        if meta is None or meta.error is not None or not meta.partitions:
            why = meta.error if meta is not None and meta.error is not None else "no partitions"
            raise RuntimeError(f"topic {self.topic!r}: {why}")
        parts = sorted(meta.partitions)
        # the ends first: a tick appended after this is at or past its partition's end, so a
        # partition with no record of the lookback starts there and misses nothing (the client's
        # OFFSET_END would be resolved later, skipping whatever came meanwhile)
        ends = {
            p: consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=METADATA_TIMEOUT_S
            )[1]
            for p in parts
        }
        since_ms = int((self._clock() - self.lookback_s) * 1000)
        wanted = [TopicPartition(self.topic, p, since_ms) for p in parts]
        found = consumer.offsets_for_times(wanted, timeout=METADATA_TIMEOUT_S)
        return [
            TopicPartition(
                self.topic, tp.partition, ends[tp.partition] if tp.offset < 0 else tp.offset
            )
            for tp in found
        ]

    def _read(self, consumer: Consumer) -> None:
        while not self._stop.is_set():
            batch = consumer.consume(num_messages=BATCH, timeout=WAIT_S)
            if not batch:
                continue
            ticks = self.latest.note(batch, self._clock())
            self._on_read(ticks)
            if ticks < len(batch):
                for msg in batch:
                    error = msg.error()
                    if error is not None:
                        self._on_client_error(error)
            if ticks and self._last_error:
                log.warning("reading %s again (after: %s)", self.topic, self._last_error)
                self._last_error = ""

    def _on_client_error(self, error: KafkaError) -> None:
        """Each error librdkafka reports: a transient one (the broker away, a leader moving) a
        warning, any other an error."""
        transient = error.code() in TRANSIENT or (error.retriable() and not error.fatal())
        self._report(f"{self.topic}: {error.str()}", transient)

    def _report(self, text: str, transient: bool = False) -> None:
        """Count every error; log each once, until another comes or ticks flow again, so a
        broker that is away for a minute says so once, not at every poll."""
        self._on_error()
        if text != self._last_error:
            if transient:
                log.warning("raw-tick reader: %s (librdkafka reconnects and goes on)", text)
            else:
                log.error("raw-tick reader: %s", text)
        self._last_error = text

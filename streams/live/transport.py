"""The live transport: ``ticks.raw`` in batches, outputs and input offsets in one transaction.

Why Kafka's own exactly-once (KIP-98, KIP-447) rather than a home-made one: a batch's outputs
and the consumer offsets that say it was handled commit atomically, so after any crash the
group's committed offset is exactly where the committed outputs end. Nothing has to be looked
up in the output topics, and a zombie that lost its partitions cannot commit either (the
offsets carry the consumer group's generation, which fences it).

The loop, on one thread:

1. apply the control commands that arrived (between transactions, so the point where each
   applied is a committed offset, and the partition is checkpointed right there before it
   goes on: a recovery replays up to that point, then applies the command where it applied);
2. take a batch: whatever the consumer holds, or wait at most ``POLL_S`` for the first
   message, so a lone tick is not held back and a burst comes in batches of ``BATCH_MAX``;
3. process it per partition in chunks (a partition's whole batch: ``PartitionRunner.chunk``)
   inside one transaction, which closes early when a command waits or after ``TXN_MAX_S``;
   commit outputs and the offsets of what was processed; the rest of the batch goes into the
   next transaction.

No transaction is ever open while the consumer is polled, so a rebalance callback always finds
every output of a revoked partition committed; it checkpoints the partition and lets it go.

Faults: a retriable error is retried; an abortable one aborts the transaction; a fatal one
(the producer fenced) replaces the producer. After an abort or a new producer, every owned
partition is rebuilt to its committed offset (checkpoint plus replay) and the consumer seeks
back there, so the decisions stay those of an uninterrupted run. A batch must carry on where
its partition stands (``carry_on``): a consumer that hands over records past a gap the log
fills is sent back to the gap, never followed past it. A broker that is down is
waited for; only what cannot be rebuilt (a trimmed log, an untrusted checkpoint) stops the
worker, loudly.
"""

from __future__ import annotations

import fcntl
import getpass
import logging
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from itertools import count
from pathlib import Path
from typing import IO, Any

from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from tickwise.schemas.decisions import Alert, ControlCommand, Severity
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.topics import Topics
from tickwise.streams.checkpoint import CheckpointStore
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.live.control import ControlFollower
from tickwise.streams.live.feed import publish
from tickwise.streams.live.liveness import HangWatch, StallWatch, WorkerStalled
from tickwise.streams.live.metrics import PipelineMetrics
from tickwise.streams.live.partition import PartitionRunner
from tickwise.streams.live.reader import (
    TRANSIENT,
    RangeReader,
    RangeReadError,
    consumer_settings,
)
from tickwise.streams.live.security import env_client_config
from tickwise.streams.live.state import CommandRefused, Output
from tickwise.streams.operators.validation import QualityMonitor
from tickwise.streams.sources import RawRecord

log = logging.getLogger(__name__)

BATCH_MAX = 5_000  # messages one consume call takes at most (and one transaction, mostly)
POLL_S = 0.1  # longest wait for a batch's first message; commands apply at least this often
TXN_MAX_S = 0.1  # a transaction takes no further chunk after this long
RETRY_S = 0.5  # pause between two attempts while the broker is away
CALL_TIMEOUT_S = 10.0  # one blocking client call; a timeout is retried, not fatal
SEEK_ATTEMPTS = 20
WEDGED_S = 45.0  # a transactional call still blocked after this is given up on
TRANSACTION_TIMEOUT_MS = 60_000
SESSION_TIMEOUT_MS = 10_000  # how long a SIGKILLed worker keeps its partitions
STALL_S = 60.0  # input waiting this long with nothing committed: the consumer is replaced
STALL_LOOK_S = 5.0  # while stalled, the input is looked at no more often than this
RESTARTS_MAX = 3  # new consumers in a row that bring no commit: the worker stops
CLOSE_S = 30.0  # a consumer's close, given up on after this
SHUTDOWN_CLOSE_S = 120.0  # the last close checkpoints every partition: it gets longer
# The loop stuck in one step this long ends the process. Each step's calls are bounded well
# below (a checkpoint save retries for 120 s at most), and recovery beats once a message.
HANG_S = 300.0

# The worker's clients; the live benchmark's bare pass-through floor uses them too, so the floor
# moves with any change here.
CONSUMER_SETTINGS: dict[str, Any] = {
    "partition.assignment.strategy": "cooperative-sticky",
    "isolation.level": "read_committed",  # what the range reader replays
    "auto.offset.reset": "error",  # a trimmed log must not be skipped quietly
    "enable.partition.eof": False,
    "session.timeout.ms": SESSION_TIMEOUT_MS,
    "heartbeat.interval.ms": 1000,
    "fetch.wait.max.ms": 10,
}
PRODUCER_SETTINGS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 1,
    "compression.type": "lz4",
    # The first retry after this long, doubling up to retry.backoff.max.ms (1 s). Why not
    # librdkafka's 100 ms: right after a commit the coordinator is still writing the commit
    # markers and answers the next transaction's first request with CONCURRENT_TRANSACTIONS,
    # so every transaction waited out one whole backoff (~100 ms of each tick's latency).
    "retry.backoff.ms": 5,
}


class TakeOverError(RuntimeError):
    """A partition whose state cannot be rebuilt: the worker must stop rather than guess."""


class ProducerWedged(RuntimeError):
    """A transactional call did not return long after its own timeout.

    librdkafka's ``send_offsets_to_transaction`` can block forever when the group coordinator
    goes away mid-call (confluentinc/librdkafka#5456 and #5511); seen here after a broker
    restart. The producer is abandoned and a new one fences it.
    """


class Rewind(Exception):
    """The open transaction is gone: rebuild every partition to its committed offset."""


def instance_slot(app_id: str) -> tuple[int, IO[str]]:
    """The lowest slot number no live worker of ``app_id`` on this host holds, and its lock.

    Why: the transactional id is ``<app id>.<host>.<slot>``. A worker restarted after a crash
    takes its predecessor's slot, so ``init_transactions`` aborts the dead worker's open
    transaction at once instead of after the transaction timeout; two live workers on one
    host never share an id (which would fence each other in turn). The lock dies with the
    process, SIGKILL included.
    """
    base = Path(tempfile.gettempdir()) / f"tickwise-{getpass.getuser()}" / "slots"
    base.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", app_id)
    for slot in count():
        fh = open(base / f"{name}.{slot}.lock", "a")  # noqa: SIM115 - held for the process
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        return slot, fh
    raise AssertionError("unreachable")


def transactional_id(app_id: str, slot: int) -> str:
    """The transactional id of the worker holding ``slot`` on this host (see ``instance_slot``)."""
    return f"{app_id}.{socket.gethostname()}.{slot}"


def transactional_producer(
    bootstrap: str,
    txn_id: str,
    transaction_timeout_ms: int,
    init_timeout_s: float,
    wait: Callable[[str], None] | None = None,
    settings: dict[str, Any] | None = None,
) -> Producer:
    """An idempotent producer of ``txn_id`` with its transactions initialised.

    Initialising fences the id's predecessor and aborts a transaction it left open, so a
    restarted writer never commits beside a zombie. ``wait`` is called between attempts while
    the broker is away; without it a failed attempt raises (the caller retries). ``settings``
    add to or replace ``PRODUCER_SETTINGS``.
    """
    producer = Producer(
        {
            **env_client_config(),
            "bootstrap.servers": bootstrap,
            "transactional.id": txn_id,
            "transaction.timeout.ms": transaction_timeout_ms,
            **PRODUCER_SETTINGS,
            **(settings or {}),
        }
    )
    while True:
        try:
            producer.init_transactions(init_timeout_s)
            return producer
        except KafkaException as exc:
            if wait is None or not exc.args[0].retriable():
                raise
            wait(f"init transactions: {exc}")


def take_batch(consumer: Consumer, most: int, wait_s: float) -> list[Message]:
    """What ``consumer`` holds already, up to ``most``; when it holds nothing, the first
    message to arrive within ``wait_s`` and whatever came with it.

    Why not ``consume(most, wait_s)``: it returns only once it has ``most`` messages or
    ``wait_s`` passed, which holds a lone tick back for the whole wait.
    """
    batch = consumer.consume(most, 0)
    if not batch:
        batch = consumer.consume(1, wait_s)
        if batch:
            batch += consumer.consume(most - 1, 0)
    return batch


class Watchdog:
    """Blocking producer calls on a thread of their own, given up on (``ProducerWedged``) when
    still blocked ``limit`` s after they started; the caller then abandons the producer."""

    def __init__(self, limit: float = WEDGED_S) -> None:
        self.limit = limit
        self._calls = ThreadPoolExecutor(1, thread_name_prefix="tickwise-txn")

    def call(self, call: Callable[[], Any], what: str) -> Any:
        """``call()``'s result, or ``ProducerWedged`` after ``limit`` s (it may still return
        later, on its own thread, which is why a wedged producer is kept, never freed)."""
        future = self._calls.submit(call)
        try:
            return future.result(self.limit)
        except FutureTimeout:
            raise ProducerWedged(f"{what} still blocked after {self.limit:g} s") from None

    def shutdown(self) -> None:
        """Let the thread go once its call returns; a wedged one is not waited for."""
        self._calls.shutdown(wait=False)


def carry_on(
    messages: Iterable[Message], expected: int, holds_records: Callable[[int, int], bool]
) -> tuple[list[Message], int | None]:
    """The messages of one partition that carry on from offset ``expected``, each once and in
    offset order; and, if the consumer skipped records, the offset to read again from.

    Why: a consumer can hand over a partition's messages past where its owner stands (a stale
    fetch delivered after the partition came back, a seek not honoured), and the owner would
    skip the ticks in between for good. A gap is fine only where the log holds no committed
    record (a transaction marker, an aborted record): ``holds_records(start, stop)`` says
    whether ``[start, stop)`` holds one. Messages before ``expected`` were handled already.
    """
    taken: list[Message] = []
    for msg in messages:
        offset = msg.offset() or 0
        if offset < expected:
            continue
        if offset > expected and holds_records(expected, offset):
            return taken, expected
        taken.append(msg)
        expected = offset + 1
    return taken, None


def _transient(error: KafkaError) -> bool:
    return error.code() in TRANSIENT or (error.retriable() and not error.fatal())


def _close_consumer(consumer: Consumer, timeout: float) -> bool:
    """Close ``consumer`` on a thread of its own; False if it had not closed after ``timeout``
    (a close waits on the group coordinator, which may be away or wedged)."""
    closed = threading.Event()

    def close() -> None:
        try:
            consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("closing a consumer: %r", exc)
        finally:
            closed.set()

    threading.Thread(target=close, name="tickwise-close", daemon=True).start()
    return closed.wait(timeout)


class Transport:
    """One worker process: a group consumer on ``ticks.raw``, one transactional producer, and a
    ``PartitionRunner`` per assigned partition."""

    def __init__(
        self,
        config: TickwiseConfig,
        bootstrap: str,
        store: CheckpointStore,
        observe: Callable[[Output], None] | None = None,
        metrics: PipelineMetrics | None = None,
        slot: tuple[int, IO[str]] | None = None,
        quality: QualityMonitor | None = None,
    ) -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.store = store
        self.observe = observe
        self.quality = quality
        self._refused: set[str] = set()  # ids of commands a partition's state refused
        self.metrics = metrics
        self.topics = Topics(config.topic_prefix)
        self.raw_topic = self.topics.raw
        self.runners: dict[int, PartitionRunner] = {}
        self.follower = ControlFollower(bootstrap, self.topics.control, self._on_bad_command)
        self.slot, self._slot_lock = slot or instance_slot(config.app_id)
        self.transactional_id = transactional_id(config.app_id, self.slot)
        self._stop = threading.Event()
        self._failure: BaseException | None = None  # raised in a rebalance callback
        self._in_transaction = False
        self._dirty = False  # the runners' state may be ahead of the committed offsets
        self._partitions: dict[str, int] = {}
        self._warned_at = 0.0
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._watchdog = Watchdog()
        self._abandoned: list[tuple[Producer, Watchdog]] = []  # kept, never freed
        self._stall = StallWatch(STALL_S, RESTARTS_MAX)
        self._looked_at = 0.0
        self._group_seen: dict[int, int] = {}
        self._hang = HangWatch(HANG_S, "the worker's loop")

    # -- life cycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to end after the transaction in progress (signal-safe)."""
        self._stop.set()

    def run(self) -> None:
        """Run until ``stop``; raises what stops the worker (``TakeOverError`` and the like)."""
        self.follower.start()
        while not self.follower.ready.wait(0.2):  # no decision before the kill switch is known
            if self.follower.failure is not None:
                raise self.follower.failure
            if self._stop.is_set():
                self.follower.stop()
                return
        self._producer = self._new_producer()
        self._hang.start()
        self._consumer = self._new_consumer()
        try:
            while not self._stop.is_set():
                self._hang.beat()
                if self.follower.failure is not None:
                    raise self.follower.failure
                self._apply_controls()
                batch = self._consume()
                if batch:
                    self._handle(batch)
                else:
                    self._pass_gaps()
                self._watch_progress()
        finally:
            self._hang.stop()
            self._close()

    def _new_consumer(self) -> Consumer:
        """The group consumer on ``ticks.raw``, subscribed; partitions come in ``_on_assign``."""
        consumer = Consumer(
            consumer_settings(self.bootstrap, self.config.app_id, **CONSUMER_SETTINGS)
        )
        consumer.subscribe(
            [self.raw_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        return consumer

    def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        # closing revokes every partition: each is checkpointed
        if consumer is not None and not _close_consumer(consumer, SHUTDOWN_CLOSE_S):
            log.warning("the consumer did not close within %g s; left behind", SHUTDOWN_CLOSE_S)
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(5)
        self._watchdog.shutdown()
        self.follower.stop()

    # -- rebalance ----------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            committed = self._committed([tp.partition for tp in partitions])
            assign = []
            for tp in partitions:
                self.runners[tp.partition] = self._take_over(tp.partition, committed[tp.partition])
                assign.append(TopicPartition(tp.topic, tp.partition, committed[tp.partition]))
            consumer.incremental_assign(assign)
            self._stall.progressed(reset=False)  # give the new partitions time to commit
        except BaseException as exc:  # raised by run() after consume returns
            self._failure = exc

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # No transaction is open while the consumer polls, so every output of these
        # partitions is committed: checkpoint them and let them go.
        self._abort_if_open("partitions revoked")
        for tp in partitions:
            runner = self.runners.pop(tp.partition, None)
            if runner is not None and not self._dirty:
                try:
                    runner.checkpoint(0.0)
                except OSError as exc:  # the next owner replays a little more
                    log.warning(
                        "partition %s: checkpoint on revocation failed: %r", tp.partition, exc
                    )

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost, not handed over: another worker may own them already, so nothing is written.
        self._abort_if_open("partitions lost")
        for tp in partitions:
            if self.runners.pop(tp.partition, None) is not None:
                log.warning(
                    "partition %s lost (session expired); its new owner carries on", tp.partition
                )

    def _abort_if_open(self, why: str) -> None:
        if self._in_transaction and self._producer is not None:
            log.warning("%s with a transaction open: aborting it", why)
            producer = self._producer
            try:
                self._bounded(lambda: producer.abort_transaction(CALL_TIMEOUT_S), "abort")
            except (KafkaException, ProducerWedged) as exc:
                log.warning(
                    "abort failed (the broker aborts it or the next owner fences it): %s", exc
                )
            self._in_transaction = False

    def _take_over(self, partition: int, committed: int) -> PartitionRunner:
        runner = PartitionRunner(
            self.config,
            self.bootstrap,
            self.raw_topic,
            partition,
            self.store,
            self.observe,
            self.quality,
        )
        self._recover(runner, committed)
        applied = [self._control(runner, command) for command in self.follower.known()]
        if any(applied):
            runner.checkpoint(0.0, force=True)
        return runner

    def _recover(self, runner: PartitionRunner, committed: int) -> None:
        while True:
            try:
                runner.recover(committed, progress=self._hang.beat)
                return
            except KafkaException as exc:  # the broker is away: wait for it
                if not _transient(exc.args[0]):
                    raise TakeOverError(
                        f"partition {runner.partition}: cannot take it over: {exc}"
                    ) from exc
                self._wait(f"partition {runner.partition}: recovery: {exc}")
            except Exception as exc:
                raise TakeOverError(
                    f"partition {runner.partition}: cannot take it over: {exc}"
                ) from exc

    def _committed(self, partitions: Iterable[int], fresh: bool = False) -> dict[int, int]:
        """The group's committed offset of each partition (0 when none), waiting for the broker.

        ``fresh``: ask through a new consumer of the group that never joins it.
        """
        tps = [TopicPartition(self.raw_topic, p) for p in partitions]
        if not tps:
            return {}
        while True:
            asking = self._consumer
            if fresh or asking is None:
                settings = {"isolation.level": "read_committed"}  # waits out pending commits
                asking = Consumer(consumer_settings(self.bootstrap, self.config.app_id, **settings))
            try:
                answer = asking.committed(tps, timeout=CALL_TIMEOUT_S)
            except KafkaException as exc:
                if not _transient(exc.args[0]):
                    raise
                self._wait(f"committed offsets: {exc}")
                continue
            finally:
                if asking is not self._consumer:
                    asking.close()
            errors = [tp.error for tp in answer if tp.error is not None]
            if errors:
                self._wait(f"committed offsets: {errors[0]}")
                continue
            return {tp.partition: 0 if tp.offset == OFFSET_INVALID else tp.offset for tp in answer}

    # -- the batch loop -----------------------------------------------------------------------

    def _consume(self) -> list[Message]:
        consumer = self._consumer
        assert consumer is not None
        batch = take_batch(consumer, BATCH_MAX, POLL_S)
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        messages = []
        for msg in batch:
            error = msg.error()
            if error is None:
                messages.append(msg)
            elif error.code() == KafkaError._AUTO_OFFSET_RESET or error.fatal():
                raise TakeOverError(
                    f"{self.raw_topic} partition {msg.partition()}: cannot read on from offset "
                    f"{msg.offset()}: {error.str()}"
                )
            else:
                self._warn(f"consumer: {error}")
        return messages

    def _handle(self, batch: list[Message]) -> None:
        by_partition: dict[int, list[Message]] = {}
        for msg in batch:
            by_partition.setdefault(msg.partition(), []).append(msg)
        chunks: list[tuple[int, list[Message]]] = []
        for partition, messages in by_partition.items():
            runner = self.runners.get(partition)
            if runner is None:
                continue  # revoked meanwhile: its new owner reads these
            holds = partial(self._holds_records, partition)
            fresh, skipped = carry_on(messages, runner.next_offset, holds)
            if skipped is not None:
                self._send_back(partition, skipped, f"it delivered offset {messages[-1].offset()}")
            size = runner.chunk
            chunks += [(partition, fresh[i : i + size]) for i in range(0, len(fresh), size)]
        done = 0
        try:
            while done < len(chunks) and not self._stop.is_set():
                done += self._transact(chunks[done:])
                self._apply_controls()
        except Rewind:
            self._rewind()

    def _pass_gaps(self) -> None:
        """With the input idle, commit each partition past the offsets behind its last record
        that hold none (a transactional feed's last commit marker); send the consumer back if
        they hold records it skipped.

        Why: the consumer's position moves past such offsets with nothing to hand over, so the
        group's offsets would stay short of the log's end for good: lag would never read zero,
        and the stall watch would take the marker for input waiting and replace the consumer.
        """
        consumer = self._consumer
        assert consumer is not None
        try:
            positions = consumer.position([TopicPartition(self.raw_topic, p) for p in self.runners])
        except KafkaException:
            return
        passed: dict[int, int] = {}
        for tp in positions:
            runner = self.runners.get(tp.partition)
            if runner is None or tp.error is not None or tp.offset <= runner.next_offset:
                continue
            if self._holds_records(tp.partition, runner.next_offset, tp.offset):
                self._send_back(tp.partition, runner.next_offset, f"its position is {tp.offset}")
            else:
                passed[tp.partition] = tp.offset
        if passed:
            try:
                self._transact([], passed)
            except Rewind:
                self._rewind()

    def _send_back(self, partition: int, offset: int, seen: str) -> None:
        """The consumer skipped records from ``offset`` on: say so, and read them again."""
        log.warning(
            "partition %s: the consumer skipped records at offset %s (%s); reading again from "
            "there",
            partition,
            offset,
            seen,
        )
        self._seek(partition, offset)

    def _transact(
        self, chunks: list[tuple[int, list[Message]]], passed: dict[int, int] | None = None
    ) -> int:
        """Process chunks in one transaction until a command waits or it is old; commit it
        with the input offsets (and ``passed``: offsets that hold no record, committed past);
        return how many chunks it took."""
        producer = self._producer
        consumer = self._consumer
        assert producer is not None and consumer is not None
        started = time.monotonic()
        ends: dict[int, int] = dict(passed or {})
        produced: dict[int, list[float]] = {}
        taken = 0
        try:
            producer.begin_transaction()
            self._in_transaction = self._dirty = True
            for partition, chunk in chunks:
                runner = self.runners[partition]
                for out in runner.process(chunk):
                    self._produce(out, partition)
                ends[partition] = (chunk[-1].offset() or 0) + 1
                produced.setdefault(partition, []).extend(m.timestamp()[1] / 1e3 for m in chunk)
                taken += 1
                if self.follower.has_new() or time.monotonic() - started > TXN_MAX_S:
                    break
            producer.poll(0)  # serve delivery reports once a transaction, not per message
            offsets = [TopicPartition(self.raw_topic, p, end) for p, end in ends.items()]
            metadata = consumer.consumer_group_metadata()
            # Not retried: a failure aborts and rewinds (one batch's work). It can also block
            # past its timeout (librdkafka #5456/#5511): ``_bounded`` gives up on it then.
            self._bounded(
                lambda: producer.send_offsets_to_transaction(offsets, metadata, CALL_TIMEOUT_S),
                "send offsets",
            )
            self._retrying(lambda: producer.commit_transaction(CALL_TIMEOUT_S), "commit")
            self._in_transaction = self._dirty = False
            self._stall.progressed()
        except (KafkaException, ProducerWedged) as exc:
            self._transaction_failed(exc)
            raise Rewind from exc
        now = time.time()
        for partition, end in ends.items():
            runner = self.runners.get(partition)
            if runner is not None:
                runner.committed(end)
                runner.checkpoint(self.config.live.checkpoint_interval_s)
            if self.metrics is not None:
                times = produced.get(partition, [])
                self.metrics.on_batch(partition, times, now, self._lag(partition))
        return taken

    def _produce(self, out: Output, partition: int) -> None:
        producer = self._producer
        assert producer is not None
        topic = self.topics.name(out.topic)
        key = out.key.encode() if out.key is not None else None
        # co-partitioned: an instrument's outputs go to its raw partition's number
        target = partition if self._partitions.get(topic, 0) > partition else -1
        while True:
            try:
                producer.produce(topic, out.encoded(), key, partition=target)
                return
            except BufferError:  # the local queue is full while the broker is away
                self._warn("the producer's queue is full (waiting for the broker)")
                producer.poll(RETRY_S)
                self._hang.beat()

    def _retrying(self, call: Callable[[], Any], what: str) -> None:
        """Run a transactional call, again while it fails retriably (the broker is away)."""
        while True:
            try:
                self._bounded(call, what)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if not error.retriable() or error.txn_requires_abort() or error.fatal():
                    raise
                self._wait(f"{what}: {error}")

    def _bounded(self, call: Callable[[], Any], what: str) -> Any:
        """Run a blocking producer call on the producer's own thread, for ``WEDGED_S`` at most."""
        return self._watchdog.call(call, what)

    def _replace_producer(self, why: str) -> None:
        log.warning("%s; replacing the transactional producer", why)
        self._in_transaction = False
        if self._producer is not None:
            # a call may still block inside it: keep both alive rather than free them under it
            self._abandoned.append((self._producer, self._watchdog))
            self._watchdog = Watchdog()
        self._producer = self._new_producer()

    def _transaction_failed(self, exc: KafkaException | ProducerWedged) -> None:
        if isinstance(exc, ProducerWedged):
            self._replace_producer(str(exc))
            return
        error = exc.args[0]
        if error.fatal():
            self._replace_producer(f"transactional producer failed fatally ({error})")
            return
        log.warning("transaction failed (%s); aborting it", error)
        producer = self._producer
        assert producer is not None
        while self._in_transaction:
            try:
                self._bounded(lambda: producer.abort_transaction(CALL_TIMEOUT_S), "abort")
                self._in_transaction = False
            except ProducerWedged as wedged:
                self._replace_producer(str(wedged))
            except KafkaException as again:
                if again.args[0].retriable() and not again.args[0].fatal():
                    self._wait(f"abort: {again.args[0]}")
                else:
                    self._replace_producer(f"abort failed ({again.args[0]})")

    def _rewind(self) -> None:
        """Rebuild every owned partition to its committed offset and read on from there.

        The committed offsets are asked for by a consumer of their own: the worker's consumer
        answers only once its group is back, which after a broker restart needs the loop to
        poll again; and after a call that never returned, only the broker knows whether the
        last transaction committed.
        """
        committed = self._committed(list(self.runners), fresh=True)
        for partition, offset in committed.items():
            runner = self.runners[partition]
            self._recover(runner, offset)
            self._seek(partition, offset)
            log.warning("partition %s: rewound to committed offset %s", partition, offset)
        self._dirty = False

    def _seek(self, partition: int, offset: int) -> None:
        """Have the consumer read ``partition`` on from ``offset``; ``TakeOverError`` when it
        cannot (reading on from elsewhere would skip ticks)."""
        consumer = self._consumer
        assert consumer is not None
        for attempt in count(1):
            try:
                consumer.seek(TopicPartition(self.raw_topic, partition, offset))
                return
            except KafkaException as exc:
                if attempt >= SEEK_ATTEMPTS:
                    raise TakeOverError(
                        f"partition {partition}: cannot seek to offset {offset}: {exc}"
                    ) from exc
                self._wait(f"partition {partition}: seek to {offset}: {exc}")

    def _holds_records(self, partition: int, start: int, stop: int) -> bool:
        """Whether raw offsets ``[start, stop)`` of ``partition`` hold a committed record; True
        when that cannot be told (the consumer then reads them again: a re-read, never a loss)."""
        try:
            with RangeReader(self.bootstrap) as reader:
                read = reader.read(self.raw_topic, {partition: (start, stop)})
                return any(msg is not None for _, msg in read)
        except (KafkaException, RangeReadError) as exc:
            log.warning(
                "partition %s: cannot read offsets [%s, %s): %s", partition, start, stop, exc
            )
            return True

    # -- liveness -----------------------------------------------------------------------------

    def _watch_progress(self) -> None:
        """Replace the consumer when input waits and nothing was committed for ``STALL_S``.

        Why: after a broker restart that outlived the session, a consumer can report its
        partitions lost and never get them back, silently. A new consumer joins the group
        afresh; its partitions are rebuilt from their checkpoints and committed offsets.
        """
        now = time.monotonic()
        if not self._stall.due() or now - self._looked_at < STALL_LOOK_S:
            return
        self._looked_at = now
        waiting = self._waiting()
        if waiting is None:
            self._warn(
                f"nothing committed for {self._stall.idle_s():.0f} s and the broker does not "
                "answer (waiting for the broker)"
            )
            # a broker away is waited out, not a stall: once it answers, a full STALL_S to commit
            self._stall.progressed(reset=False)
            return
        complaint = self._stall.stalled(waiting)
        if complaint is not None:
            self._replace_consumer(complaint)

    def _waiting(self) -> dict[int, int] | None:
        """Messages of ``ticks.raw`` waiting, per partition; None if the broker does not answer.

        Owning partitions: what waits past each one's committed offset. Owning none: what waits
        past the group's committed offsets, or nothing when they moved since the last look
        (another worker is at work).
        """
        consumer = self._consumer
        assert consumer is not None
        try:
            if self.runners:
                waiting = {}
                for partition, runner in list(self.runners.items()):
                    _, high = consumer.get_watermark_offsets(
                        TopicPartition(self.raw_topic, partition), timeout=CALL_TIMEOUT_S
                    )
                    waiting[partition] = high - runner.next_offset
                return waiting
            settings = {"isolation.level": "read_committed"}
            asking = Consumer(consumer_settings(self.bootstrap, self.config.app_id, **settings))
            try:
                topic = asking.list_topics(self.raw_topic, timeout=CALL_TIMEOUT_S)
                tps = [
                    TopicPartition(self.raw_topic, p)
                    for p in topic.topics[self.raw_topic].partitions
                ]
                committed = asking.committed(tps, timeout=CALL_TIMEOUT_S)
                if any(tp.error is not None for tp in committed):
                    return None
                offsets = {tp.partition: max(tp.offset, 0) for tp in committed}
                if offsets != self._group_seen:
                    self._group_seen = offsets
                    return {}
                waiting = {}
                for partition, offset in offsets.items():
                    _, high = asking.get_watermark_offsets(
                        TopicPartition(self.raw_topic, partition), timeout=CALL_TIMEOUT_S
                    )
                    waiting[partition] = high - offset
                return waiting
            finally:
                _close_consumer(asking, CLOSE_S)
        except KafkaException:
            return None

    def _replace_consumer(self, why: str) -> None:
        """Leave the group and join it again with a new consumer, loudly; the partitions are
        rebuilt when they are assigned. Raises ``WorkerStalled`` if the old one will not close
        (its member could go on holding partitions no one processes)."""
        log.error(
            "%s: replacing the consumer (%d of %d in a row)",
            why,
            self._stall.restarts,
            RESTARTS_MAX,
        )
        self._abort_if_open("consumer replaced")
        self.runners.clear()  # not checkpointed: the state rebuilt on assignment is the same
        self._dirty = False
        old, self._consumer = self._consumer, None
        if old is not None and not _close_consumer(old, CLOSE_S):
            raise WorkerStalled(
                f"{why}; the consumer did not close within {CLOSE_S:g} s, so it may hold on to "
                "its partitions; stopping"
            )
        self._consumer = self._new_consumer()

    # -- control ------------------------------------------------------------------------------

    def _apply_controls(self) -> None:
        """Apply new commands to every partition, then checkpoint the ones they changed, so a
        recovery never replays past the point where a command applied."""
        commands = self.follower.take()
        if not commands:
            return
        for runner in self.runners.values():
            if any([self._control(runner, command) for command in commands]):
                runner.checkpoint(0.0, force=True)

    def _control(self, runner: PartitionRunner, command: ControlCommand) -> bool:
        """Apply one command to one partition; a command its state cannot carry out is left
        unapplied there, loudly (and again identically by a recovery)."""
        try:
            return runner.on_control(command)
        except CommandRefused as exc:
            if command.command_id not in self._refused:
                self._refused.add(command.command_id)
                self._refuse(command, str(exc))
            return False

    def _refuse(self, command: ControlCommand, why: str) -> None:
        """Say, in the log and on the alerts topic, that a command was not applied."""
        log.error("command %s not applied: %s", command.command_id, why)
        alert = Alert(
            alert_id=f"refused-{command.command_id}",
            ts_event_ns=command.ts_event_ns,
            severity=Severity.CRITICAL,
            code="COMMAND_REFUSED",
            detail=f"{command.command} {command.command_id} not applied: {why}",
            instrument=None if command.scope == "global" else command.scope,
            model_id=command.model_id,
        )
        try:
            publish(
                [RawRecord(command.command_id, alert.to_bytes(), "control", 0)],
                self.bootstrap,
                self.topics.alerts,
            )
        except Exception as exc:  # the log line stands; the broker may be away
            log.warning("could not publish the COMMAND_REFUSED alert: %r", exc)

    def _on_bad_command(self, record: QuarantineRecord) -> None:
        source = record.source
        publish(
            [RawRecord("", record.to_bytes(), "control", source.offset)],
            self.bootstrap,
            self.topics.quarantine,
        )

    # -- helpers ------------------------------------------------------------------------------

    def _new_producer(self) -> Producer:
        producer = transactional_producer(
            self.bootstrap,
            self.transactional_id,
            TRANSACTION_TIMEOUT_MS,
            CALL_TIMEOUT_S * 3,
            wait=self._wait,
            settings={"queue.buffering.max.messages": 1_000_000},
        )
        while True:
            try:
                metadata = producer.list_topics(timeout=CALL_TIMEOUT_S)
                break
            except KafkaException as exc:
                self._wait(f"metadata: {exc}")
        self._partitions = {name: len(t.partitions) for name, t in metadata.topics.items()}
        return producer

    def _lag(self, partition: int) -> int | None:
        assert self._consumer is not None
        runner = self.runners.get(partition)
        if runner is None:
            return None
        try:
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.raw_topic, partition), cached=True
            )
        except KafkaException:
            return None
        return None if high < 0 else max(0, high - runner.next_offset)

    def _wait(self, why: str) -> None:
        """Wait a little for the broker; give up only when asked to stop."""
        if self._stop.is_set():
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"stopping: {why}"))
        self._warn(f"{why} (waiting for the broker)")
        time.sleep(RETRY_S)
        self._hang.beat()

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._warned_at > 2.0:  # a broker away for a minute: not 600 lines
            self._warned_at = now
            log.warning("%s", text)

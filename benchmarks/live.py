"""Live speed on a real broker: sustained ticks/s per worker, the Kafka ceiling, and latency.

    python -m benchmarks.live                         # the full run (a few minutes)
    python -m benchmarks.live --ticks 20000 --seconds 5 --drain-timeout 30   # quick (~2 min)

Broker: ``--bootstrap-servers``, else ``KAFKA_BOOTSTRAP_SERVERS``, else a ``LocalBroker`` the
benchmark starts and stops itself. Every run uses its own topic prefix.

1. **Throughput.** ``--ticks`` synthetic ticks are preloaded to a one-partition ``ticks.raw``;
   then ``tickwise worker`` starts. It is measured from the topics' contents: Kafka stamps every
   output with the time the worker produced it (``CreateTime``), and throughput is the number of
   ticks over the span from the first to the last committed output. The worker's start-up
   (group join, recovery reads) happens before the first output and is reported separately,
   not counted.
2. **Peer.** In the same run, Quix Streams (the Kafka-native Python library) over the same
   preloaded ticks with exactly-once and per-instrument event-time EWMA features in its state
   store, one output per tick, measured from its outputs' timestamps the same way.
3. **Ceiling.** In the same run, on the same broker, a bare confluent-kafka loop consumes the
   same preloaded ticks in batches and produces each one unchanged to a topic of its own;
   measured the same way. The worker writes five or more messages per tick (clean tick,
   features, signal, decision, audit), the pass-through one, in the ratio's favour of the
   ceiling; that is the point of a ceiling.
4. **Latency.** A fresh worker is warmed up with unpaced ticks; then a child process offers
   ticks at each ``--rates`` value for ``--seconds`` each with ``tickwise feed``'s publisher. A
   tick's start is the wall-clock time it was *due* by the schedule (so a feed that falls behind
   counts against the pipeline, not hidden: no coordinated omission); its end is when a
   consumer (``read_committed``, a separate process from the worker) receives the decision for
   that ``tick_id``. Ticks whose decision has not arrived after ``--drain-timeout`` count as
   infinitely late, so a saturated rate shows as such. Under a decision cadence
   (``--config`` with ``features.sample_ms``) only the first tick of each bucket decides; the
   benchmark learns which ticks those are by running the same stream through the engine
   in-process first, and measures those. A rate is saturated when a decision is missing or
   the last one came more than a second after the last tick was due (a queue built up).
5. **Latency floor.** At each rate, after the worker, a bare confluent-kafka pass-through
   (``--floors``, in a child process) with the worker's own client settings relays the same
   paced ticks from a ``ticks.raw`` to a ``decisions`` topic of its own, one output per tick,
   measured by the same reader the same way. ``exactly-once`` commits one transaction per
   consumed batch as the worker does (``send_offsets_to_transaction``); ``at-least-once``
   waits for the outputs, then commits the offsets. The first is what the worker's latency
   can be held against; the gap between the two is what exactly-once itself costs here.
   ``no-relay`` reads the feed's ``ticks.raw`` itself: the feed, the broker and the reader
   alone, under any relay.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.common import (
    REPO,
    RESULTS,
    add_config_argument,
    command_line,
    table,
    write_results,
)
from tickwise.schemas.decisions import Decision
from tickwise.schemas.topics import CATALOGUE, CONTROL, DECISIONS, REGISTRY, TICKS_RAW, Topics
from tickwise.streams.config import load_config
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.bootstrap import add_bootstrap_argument
from tickwise.streams.live.broker import LocalBroker, free_port
from tickwise.streams.live.feed import publish
from tickwise.streams.live.reader import consumer_settings
from tickwise.streams.live.security import env_client_config
from tickwise.streams.live.state import EngineState, Output
from tickwise.streams.live.tap import consumer, messages, spawn_worker, stop_process
from tickwise.streams.live.transport import (
    BATCH_MAX,
    CALL_TIMEOUT_S,
    CONSUMER_SETTINGS,
    POLL_S,
    PRODUCER_SETTINGS,
    TRANSACTION_TIMEOUT_MS,
    take_batch,
    transactional_producer,
)
from tickwise.streams.sources import RawRecord, synthetic

SEED = 11
RATES = (1000, 5000, 20000)
# Beside the worker's latency: the bare pass-through in each ``settle_batch`` mode, and the
# paced feed read straight from ``ticks.raw`` (the feed, the broker and the reader alone).
RELAYS = ("exactly-once", "at-least-once")
NO_RELAY = "no-relay"
FLOORS = (*RELAYS, NO_RELAY)
COORDINATOR_WARMING = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._TIMED_OUT,
}


@contextmanager
def broker_for(bootstrap: str | None) -> Iterator[str]:
    """The configured broker, or a local one started (and stopped) for this benchmark."""
    bootstrap = bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        yield bootstrap
        return
    data_dir = Path(tempfile.mkdtemp(prefix="tickwise-bench-broker-"))
    broker = LocalBroker(port=free_port(), data_dir=data_dir)
    print(f"starting a local Kafka broker in {data_dir} ...", flush=True)
    try:
        yield broker.start()
    finally:
        broker.stop()


def new_prefix(name: str) -> str:
    return f"bench-{name}-{uuid.uuid4().hex[:6]}."


def output_times(
    bootstrap: str, topics: list[str], idle_s: float = 3.0, timeout: float = 600.0
) -> dict[str, list[tuple[int, int]]]:
    """(partition, CreateTime ms) of every committed message of ``topics``, per topic."""
    c = consumer(bootstrap, topics)
    seen: dict[str, list[tuple[int, int]]] = {t: [] for t in topics}
    try:
        for msg in messages(c, idle_timeout=idle_s, deadline=time.monotonic() + timeout):
            seen[msg.topic()].append((msg.partition(), msg.timestamp()[1]))
    finally:
        c.close()
    return seen


def output_topics(prefix: str) -> list[str]:
    """Every catalogue topic a worker writes to (all but ``ticks.raw``, ``control`` and
    ``registry``)."""
    topics = Topics(prefix)
    return [
        topics.name(s)
        for s in CATALOGUE
        if s.name != "ticks.raw" and s is not CONTROL and s is not REGISTRY
    ]


def committed_offset(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """Sum over partitions of the offsets ``group`` committed on ``topic`` (0 if none)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **env_client_config()})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    except KafkaException as exc:
        # A fresh broker has no group coordinator for the first seconds: nothing committed yet.
        if exc.args[0].code() not in COORDINATOR_WARMING:
            raise
        return 0
    finally:
        c.close()
    return sum(max(tp.offset, 0) for tp in tps)


def wait_committed(
    bootstrap: str, group: str, topic: str, partitions: int, target: int, timeout: float
) -> bool:
    """Poll the worker group's committed offsets once a second until they reach ``target``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if committed_offset(bootstrap, group, topic, partitions) >= target:
            return True
        time.sleep(1.0)
    return False


def span_rate(times: list[int], ticks: int) -> tuple[float, int, int]:
    """Ticks per second over the span of output timestamps (ms); (rate, first, last)."""
    first, last = min(times), max(times)
    return ticks / max((last - first) / 1000, 1e-3), first, last


def throughput(
    bootstrap: str, ticks: int, timeout: float, config: str | None = None
) -> dict[str, Any]:
    """Preload ``ticks``, start a worker, time its outputs (start-up excluded)."""
    prefix = new_prefix("tp")
    topics = Topics(prefix)
    create_topics(bootstrap, prefix, partitions=1)
    publish(synthetic(SEED, ticks), bootstrap, topics.raw)
    app_id = f"bench-tp-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="tickwise-bench-ckpt-") as ckpt:
        started_ms = time.time() * 1000
        worker = spawn_worker(bootstrap, prefix, app_id, config, checkpoint_dir=ckpt)
        try:
            done = wait_committed(bootstrap, app_id, topics.raw, 1, ticks, timeout)
        finally:
            stop_process(worker)
    seen = output_times(bootstrap, output_topics(prefix))
    lineage = seen[topics.clean] + seen[topics.quarantine]
    all_times = [t for times in seen.values() for _, t in times]
    rate, first, last = span_rate(all_times, len(lineage))
    return {
        "ticks": ticks,
        "accounted": len(lineage),
        "finished": done,
        "outputs": len(all_times),
        "outputs_per_tick": round(len(all_times) / max(len(lineage), 1), 2),
        "startup_s": round((first - started_ms) / 1000, 1),
        "seconds": round((last - first) / 1000, 2),
        "ticks_per_s": round(rate),
        "prefix": prefix,
    }


def settle_batch(
    consumer: Consumer, producer: Producer, sink: str, batch: list[Message], mode: str
) -> None:
    """Produce each message of ``batch`` unchanged to ``sink``, then settle the batch by ``mode``.

    ``exactly-once``: the outputs and the input offsets in one transaction, as the worker
    commits a batch (``send_offsets_to_transaction``, then ``commit_transaction``).
    ``at-least-once``: the outputs acknowledged, then the offsets committed (asynchronously).
    ``ceiling``: the offsets committed without waiting for the outputs (throughput only: a
    crash could lose a batch).
    """
    if mode == "exactly-once":
        producer.begin_transaction()
    ends: dict[tuple[str, int], int] = {}
    for msg in batch:
        if msg.error():
            raise RuntimeError(f"consumer error: {msg.error()}")
        producer.produce(sink, msg.value(), msg.key())
        ends[(msg.topic(), msg.partition())] = (msg.offset() or 0) + 1
    producer.poll(0)
    if mode == "exactly-once":
        offsets = [TopicPartition(t, p, end) for (t, p), end in ends.items()]
        metadata = consumer.consumer_group_metadata()
        producer.send_offsets_to_transaction(offsets, metadata, CALL_TIMEOUT_S)
        producer.commit_transaction(CALL_TIMEOUT_S)
        return
    if mode == "at-least-once" and producer.flush(CALL_TIMEOUT_S):
        raise RuntimeError(f"outputs not acknowledged within {CALL_TIMEOUT_S:g} s")
    consumer.commit(asynchronous=True)


def pass_through(bootstrap: str, source: str, ticks: int, timeout: float) -> dict[str, Any]:
    """Bare confluent-kafka: consume ``source`` in batches, produce each message unchanged."""
    sink = f"{source}.passthrough"
    admin = AdminClient({"bootstrap.servers": bootstrap, **env_client_config()})
    admin.create_topics([NewTopic(sink, num_partitions=1, replication_factor=1)])[sink].result(30)
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-pass-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **env_client_config(),
        }
    )
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
            **env_client_config(),
        }
    )
    c.subscribe([source])
    moved = 0
    first: float | None = None  # the clock starts at the first message: group join excluded
    deadline = time.monotonic() + timeout
    try:
        while moved < ticks and time.monotonic() < deadline:
            batch = take_batch(c, 500, 0.5)
            if batch and first is None:
                first = time.perf_counter()
            settle_batch(c, p, sink, batch, "ceiling")
            moved += len(batch)
        remaining = p.flush(60)
        seconds = time.perf_counter() - (first or time.perf_counter())
    finally:
        c.close()
    if remaining or moved < ticks:
        raise RuntimeError(f"pass-through moved {moved} of {ticks}, {remaining} unacknowledged")
    # Wall clock here, until every message is acknowledged: the loop produces faster than
    # CreateTime (ms) could resolve, so timestamps would overstate the ceiling.
    return {"ticks": moved, "seconds": round(seconds, 3), "ticks_per_s": round(moved / seconds)}


def quix_child(args: argparse.Namespace) -> int:
    """The Kafka-native peer: a Quix Streams app over the same preloaded ticks, with
    exactly-once, per-instrument event-time EWMA features of the mid or trade price in its
    state store (three decays, ``exp(-dt/tau)`` per tick) and one JSON output per tick.

    It does far less than the worker (no validation, model, risk or audit) and writes one
    message per tick where the worker writes five or more: a floor for what a Python stream
    library costs per message, not a like-for-like pipeline.
    """
    from quixstreams import Application, State

    taus_ns = (1e9, 10e9, 60e9)

    def features(tick: dict[str, Any], state: State) -> dict[str, Any]:
        price = tick.get("price")
        if price is None:
            price = (tick["bid"] + tick["ask"]) / 2
        ts = tick["ts_event_ns"]
        last = state.get("last")
        means = state.get("means") or [price] * len(taus_ns)
        if last is not None:
            dt = max(ts - last, 0)
            means = [
                m + (1 - math.exp(-dt / tau)) * (price - m)
                for m, tau in zip(means, taus_ns, strict=True)
            ]
        state.set("last", ts)
        state.set("means", means)
        return {"tick_id": tick["tick_id"], "ts_event_ns": ts, "ewm": means}

    with tempfile.TemporaryDirectory(prefix="tickwise-bench-quix-") as state_dir:
        app = Application(
            broker_address=args.bootstrap_servers,
            consumer_group=f"bench-quix-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
            processing_guarantee="exactly-once",
            state_dir=state_dir,
        )
        source = app.topic(args.topic, value_deserializer="json")
        sink = app.topic(f"{args.topic}.quix", value_serializer="json")
        app.dataframe(source).apply(features, stateful=True).to_topic(sink)
        app.run(count=args.count, timeout=args.drain_timeout)
    return 0


def quix_peer(bootstrap: str, source: str, ticks: int, timeout: float) -> dict[str, Any]:
    """Run ``quix_child`` in its own interpreter over ``source``; time its committed outputs."""
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "benchmarks.live", "--child-quix", "--topic", source]
    cmd += ["--count", str(ticks), "--bootstrap-servers", bootstrap, "--drain-timeout", "30"]
    subprocess.run(cmd, cwd=REPO, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    times = [ms for _, ms in output_times(bootstrap, [f"{source}.quix"])[f"{source}.quix"]]
    if len(times) < ticks:
        raise RuntimeError(f"Quix Streams wrote {len(times)} outputs for {ticks} ticks")
    rate, first, last = span_rate(times, len(times))
    import quixstreams

    return {
        "ticks": len(times),
        "seconds": round((last - first) / 1000, 2),
        "ticks_per_s": round(rate),
        "process_s": round(seconds, 1),
        "quixstreams": quixstreams.__version__,
    }


# --- latency ---------------------------------------------------------------------------------


def paced(records: Iterator[RawRecord], rate: float, stamps: dict[str, int]) -> Iterator[RawRecord]:
    """Hold each record until it is due at ``rate``; note its due wall-clock time by tick id."""
    start_ns = time.time_ns()
    start = time.monotonic()
    for i, rec in enumerate(records):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stamps[json.loads(rec.payload)["tick_id"]] = start_ns + int(i * 1e9 / rate)
        yield rec


def feed_child(args: argparse.Namespace) -> int:
    """Offer ticks ``skip .. skip+count`` of the synthetic stream at ``rate``; save the stamps."""
    stamps: dict[str, int] = {}
    records = islice(synthetic(SEED, args.skip + args.count), args.skip, None)
    publish(paced(records, args.rate, stamps), args.bootstrap_servers, args.topic)
    Path(args.stamps).write_text(json.dumps(stamps))
    return 0


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (inf entries stay inf)."""
    rank = math.ceil(round(q * len(sorted_values) / 100, 9))  # round: 99.9 % of 1000 is 999
    k = min(len(sorted_values) - 1, max(0, rank - 1))
    return sorted_values[k]


def settle(c: Consumer, quiet_s: float = 1.0, timeout: float = 60.0) -> None:
    """Join the group and read past the warm-up decisions before the clock starts.

    Otherwise the first measured decisions would wait for the consumer's group join.
    """
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while time.monotonic() < deadline:
        if c.poll(0.1) is not None:
            last = time.monotonic()
        elif c.assignment() and time.monotonic() - last > quiet_s:
            return
    raise RuntimeError(f"the decisions consumer did not settle within {timeout:.0f} s")


def deciding_ticks(config: str | None, skip: int, count: int) -> set[str] | None:
    """The ticks among ``skip .. skip+count`` that get a published decision, or None for
    "every tick".

    With a decision cadence only the first tick of each bucket decides, and with HOLDs
    summarised (``[audit] holds``, the default) only order intents and state changes are
    published; which ones is known ahead by running the same stream through the worker's
    engine here, the way a backtest would (backtest = live makes that exact). Without either,
    every clean tick's decision is published once warm.
    """
    settings = load_config(config)
    if not settings.features.sample_ms and settings.audit.holds == "each":
        return None
    state = EngineState(settings)
    payloads = [rec.payload for rec in synthetic(SEED, skip + count)]

    def run(start: int, end: int) -> list[Output]:
        offsets = np.arange(start, end, dtype=np.int64)
        return state.process(payloads[start:end], "bench", 0, offsets, np.zeros(end - start, bool))

    run(0, skip)  # the warm-up: its decisions are not measured
    return {o.message.tick_id for o in run(skip, len(payloads)) if isinstance(o.message, Decision)}


def latency_at(
    bootstrap: str,
    prefix: str,
    rate: int,
    skip: int,
    seconds: float,
    drain_timeout: float,
    deciding: set[str] | None,
    read: str | None = None,
) -> dict[str, Any]:
    """Offer ``rate`` ticks/s for ``seconds`` to ``ticks.raw``; latency to ``decisions`` (or
    ``read``) of every tick in ``deciding`` (None: every tick; see ``deciding_ticks``)."""
    topics = Topics(prefix)
    count = int(rate * seconds)
    c = consumer(bootstrap, [read or topics.decisions])
    settle(c)
    arrivals: dict[str, int] = {}
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        stamps_path = fh.name
    feed = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.live",
            "--child-feed",
            "--bootstrap-servers",
            bootstrap,
            "--topic",
            topics.raw,
            "--rate",
            str(rate),
            "--skip",
            str(skip),
            "--count",
            str(count),
            "--stamps",
            stamps_path,
        ],
        cwd=REPO,
    )
    received: list[tuple[int, int, bytes]] = []
    feed_ended: float | None = None
    last_arrival = time.monotonic()
    try:
        while True:
            msg = c.poll(0.1)
            now = time.monotonic()
            if msg is not None and not msg.error():
                received.append((time.time_ns(), msg.timestamp()[1], msg.value() or b""))
                last_arrival = now
            if feed_ended is None and feed.poll() is not None:
                feed_ended = now
            if feed_ended is not None and (
                now - last_arrival > 3.0 or now - feed_ended > drain_timeout
            ):
                break
    finally:
        c.close()
        if feed.poll() is None:
            feed.kill()
    if feed.returncode != 0:
        raise RuntimeError(f"the feed child failed with exit code {feed.returncode}")
    stamps: dict[str, int] = json.loads(Path(stamps_path).read_text())
    os.unlink(stamps_path)
    offered = len(stamps)
    if deciding is not None:
        stamps = {t: due for t, due in stamps.items() if t in deciding}
    produced: dict[str, int] = {}  # the decision's CreateTime (ms): when the worker sent it
    for arrived, created_ms, value in received:
        tick_id = json.loads(value)["tick_id"]
        if tick_id in stamps and tick_id not in arrivals:
            arrivals[tick_id] = arrived
            produced[tick_id] = created_ms
    # Split of the median and the tail: due -> the worker produced the decision (feed linger,
    # batching, the pipeline) and produced -> visible to a read_committed consumer (the
    # transaction commit and the fetch). CreateTime has millisecond resolution.
    to_produce = sorted(produced[t] - stamps[t] / 1e6 for t in produced)
    to_visible = sorted(arrivals[t] / 1e6 - produced[t] for t in produced)
    late = [(arrivals[t] - s) / 1e6 if t in arrivals else float("inf") for t, s in stamps.items()]
    # Only ticks that decide count (every tick once warm, or the first of each bucket under a
    # cadence), so a missing decision after the drain means "not yet": infinitely late.
    late.sort()
    lat = {f"p{q:g}_ms": round(percentile(late, q), 2) for q in (50, 99, 99.9)}
    # A queue grew when the last decision came more than a second after the last tick was
    # due: the latency figures are then the queue's, not the pipeline's.
    last_due = max(stamps.values(), default=0)
    backlog_s = (max(arrivals.values(), default=last_due) - last_due) / 1e9
    return {
        "rate": rate,
        "offered": offered,
        "deciding": len(stamps),
        "decided": len(arrivals),
        "backlog_s": round(backlog_s, 2),
        **{k: (v if v != float("inf") else None) for k, v in lat.items()},
        "max_ms": round(late[-1], 2) if late[-1] != float("inf") else None,
        **{
            f"p{q}_{name}_ms": round(percentile(part, q), 1) if part else None
            for q in (50, 99)
            for name, part in (("to_produce", to_produce), ("produce_to_visible", to_visible))
        },
        "saturated": len(arrivals) < len(stamps) or backlog_s > 1.0,
    }


def latency(
    bootstrap: str,
    rates: list[int],
    seconds: float,
    drain_timeout: float,
    warm: int,
    config: str | None = None,
    floors: tuple[str, ...] = FLOORS,
) -> list[dict[str, Any]]:
    """Each offered rate on a fresh topic with a fresh worker, warmed up first; then each of
    ``floors`` (``floor_latency``) at the same rate.

    A fresh worker per rate keeps a backlog left by a saturated rate out of the next one.
    """
    rows = []
    for rate in rates:
        prefix = new_prefix(f"lat{rate}")
        topics = Topics(prefix)
        create_topics(bootstrap, prefix, partitions=1)
        app_id = f"bench-lat-{uuid.uuid4().hex[:6]}"
        with tempfile.TemporaryDirectory(prefix="tickwise-bench-ckpt-") as ckpt:
            worker = spawn_worker(bootstrap, prefix, app_id, config, checkpoint_dir=ckpt)
            try:
                publish(synthetic(SEED, warm), bootstrap, topics.raw)
                if not wait_committed(bootstrap, app_id, topics.raw, 1, warm, 300):
                    raise RuntimeError("the worker did not finish its warm-up ticks in 300 s")
                deciding = deciding_ticks(config, warm, int(rate * seconds))
                row = latency_at(bootstrap, prefix, rate, warm, seconds, drain_timeout, deciding)
            finally:
                stop_process(worker)
        rows.append({"path": "tickwise worker", **row})
        print(json.dumps(rows[-1]), flush=True)
        for mode in floors:
            rows.append(floor_latency(bootstrap, mode, rate, seconds, drain_timeout, warm))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def floor_child(args: argparse.Namespace) -> int:
    """Relay ``--topic`` to ``--sink`` batch by batch (``settle_batch`` in ``--mode``) with the
    worker's client settings, until SIGTERM; then write what each batch cost to ``--stamps``."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    settings = {**CONSUMER_SETTINGS, "auto.offset.reset": "earliest"}
    c = Consumer(consumer_settings(args.bootstrap_servers, args.group, **settings))
    queue = {"queue.buffering.max.messages": 1_000_000}
    if args.mode == "exactly-once":
        txn_id = f"{args.group}.txn"
        p = transactional_producer(
            args.bootstrap_servers, txn_id, TRANSACTION_TIMEOUT_MS, 30, settings=queue
        )
    else:
        client = {**env_client_config(), "bootstrap.servers": args.bootstrap_servers}
        p = Producer({**client, **PRODUCER_SETTINGS, **queue})
    c.subscribe([args.topic])
    sizes: list[int] = []
    settling: list[float] = []  # ms from the batch in hand to its outputs committed
    try:
        while not stopping.is_set():
            batch = take_batch(c, BATCH_MAX, POLL_S)
            if batch:
                started = time.perf_counter()
                settle_batch(c, p, args.sink, batch, args.mode)
                settling.append((time.perf_counter() - started) * 1000)
                sizes.append(len(batch))
    finally:
        c.close()
    sizes.sort()
    settling.sort()
    stats: dict[str, Any] = {"batches": len(sizes)}
    for q in (50, 99):
        stats[f"p{q}_batch_size"] = percentile(sizes, q) if sizes else None
        stats[f"p{q}_settle_ms"] = round(percentile(settling, q), 1) if settling else None
    stats["max_settle_ms"] = round(settling[-1], 1) if settling else None
    Path(args.stamps).write_text(json.dumps(stats))
    return 0


def floor_latency(
    bootstrap: str, mode: str, rate: int, seconds: float, drain_timeout: float, warm: int
) -> dict[str, Any]:
    """The floor under the worker's latency: ``floor_child`` relays the same paced ticks from a
    ``ticks.raw`` to a ``decisions`` topic of their own, measured by ``latency_at`` as the
    worker is, every tick counted; with what its batches cost. ``NO_RELAY``: the reader reads
    the ``ticks.raw`` the feed writes."""
    prefix = new_prefix(f"floor{rate}")
    topics = Topics(prefix)
    create_topics(bootstrap, prefix, partitions=1, specs=(TICKS_RAW, DECISIONS))
    if mode == NO_RELAY:
        row = latency_at(bootstrap, prefix, rate, warm, seconds, drain_timeout, None, topics.raw)
        return {"path": "paced feed read straight from ticks.raw", **row}
    group = f"bench-floor-{uuid.uuid4().hex[:6]}"
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        stats_path = fh.name
    cmd = [sys.executable, "-m", "benchmarks.live", "--child-floor", "--mode", mode]
    cmd += ["--bootstrap-servers", bootstrap, "--topic", topics.raw, "--sink", topics.decisions]
    cmd += ["--group", group, "--stamps", stats_path]
    child = subprocess.Popen(cmd, cwd=REPO)
    try:
        publish(synthetic(SEED, warm), bootstrap, topics.raw)
        if not wait_committed(bootstrap, group, topics.raw, 1, warm, 300):
            raise RuntimeError(f"the {mode} floor did not relay its warm-up ticks in 300 s")
        row = latency_at(bootstrap, prefix, rate, warm, seconds, drain_timeout, None)
    finally:
        code = stop_process(child)
    if code != 0:
        raise RuntimeError(f"the {mode} floor failed with exit code {code}")
    stats = json.loads(Path(stats_path).read_text())
    os.unlink(stats_path)
    return {"path": f"bare pass-through, {mode}", **row, **stats}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=100_000, help="throughput: ticks preloaded")
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="offered ticks/s")
    parser.add_argument("--seconds", type=float, default=15.0, help="latency: seconds per rate")
    parser.add_argument("--warm", type=int, default=5000, help="latency: warm-up ticks")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--timeout", type=float, default=1200.0, help="throughput phase, s")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--no-peers", action="store_true", help="no Quix Streams run")
    parser.add_argument(
        "--floors",
        default=",".join(FLOORS),
        help="latency: bare pass-throughs measured beside the worker ('' for none)",
    )
    parser.add_argument("--out", default=str(RESULTS / "live.json"))
    add_bootstrap_argument(parser)
    add_config_argument(parser)
    # the paced feed child of the latency phase
    parser.add_argument("--child-feed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-quix", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=RELAYS, help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--skip", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stamps", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_feed:
        return feed_child(args)
    if args.child_quix:
        return quix_child(args)
    if args.child_floor:
        return floor_child(args)
    rates = [int(r) for r in args.rates.split(",") if r]
    results: dict[str, Any] = {}
    with broker_for(args.bootstrap_servers) as bootstrap:
        if not args.skip_throughput:
            tp = throughput(bootstrap, args.ticks, args.timeout, args.config)
            source = Topics(tp["prefix"]).raw
            ceiling = pass_through(bootstrap, source, args.ticks, args.timeout)
            ratio = tp["ticks_per_s"] / ceiling["ticks_per_s"]
            rows = [
                {"path": "tickwise worker", **tp},
                {"path": "bare pass-through", **ceiling},
            ]
            if args.no_peers or importlib.util.find_spec("quixstreams") is None:
                print("Quix Streams part skipped: --no-peers or not installed ('.[bench]')")
            else:
                quix = quix_peer(bootstrap, source, args.ticks, args.timeout)
                rows.append({"path": "Quix Streams, EWMA features, exactly-once", **quix})
                results["quix"] = quix
                print(f"worker / Quix Streams: {tp['ticks_per_s'] / quix['ticks_per_s']:.3f}")
            print(table(rows, ["path", "ticks", "seconds", "ticks_per_s", "startup_s"]))
            print(f"worker / ceiling: {ratio:.3f} (target: >= 50,000 ticks/s per worker)")
            results |= {
                "worker": tp,
                "ceiling": ceiling,
                "ratio_worker_over_ceiling": ratio,
            }
        if not args.skip_latency:
            floors = tuple(f for f in args.floors.split(",") if f)
            unknown = set(floors) - set(FLOORS)
            if unknown:
                raise SystemExit(f"--floors: unknown {sorted(unknown)}; known: {FLOORS}")
            lat = latency(
                bootstrap, rates, args.seconds, args.drain_timeout, args.warm, args.config, floors
            )
            cols = [
                "path",
                "rate",
                "offered",
                "deciding",
                "decided",
                "backlog_s",
                "p50_ms",
                "p99_ms",
                "p99.9_ms",
                "max_ms",
            ]
            print(table(lat, [*cols, "saturated"]))
            print("target: p99 <= 10 ms at 5,000 ticks/s offered")
            results["latency"] = [r for r in lat if r["path"] == "tickwise worker"]
            results["latency_floor"] = [r for r in lat if r["path"] != "tickwise worker"]
    write_results(args.out, command_line(), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

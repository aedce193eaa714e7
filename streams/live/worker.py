"""``tickwise worker``: one faust agent from ``ticks.raw`` to every output topic.

faust does what it is good at: group membership, partition assignment and delivering the raw
bytes (topics are declared ``raw`` so it never drops a message it cannot decode). Everything else
happens in a ``PartitionRunner`` per assigned partition, which calls ``Pipeline.process`` -- the
very call the backtest makes -- and commits each batch's outputs in one Kafka transaction, with
lineage and checkpoints for exactly-once recovery (see ``streams.live.partition``).

One agent rather than a chain of agents re-reading ``ticks.clean``: nothing is decoded twice,
tick-to-decision is one hop, and a ``ticks.raw`` backlog cannot starve a later stage (with
chained agents sharing faust's consumer, it did).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from schemas.decisions import ControlCommand
from schemas.quarantine import QuarantineRecord
from schemas.ticks import CleanTick
from schemas.topics import Topics
from streams.checkpoint import CheckpointKeyError, CheckpointStore, checkpoint_key
from streams.config import TickwiseConfig, load_config
from streams.live.bootstrap import resolve_bootstrap
from streams.live.control import follow_control
from streams.live.metrics import PipelineMetrics, serve_metrics
from streams.live.partition import PartitionFenced, PartitionRunner, default_checkpoint_dir
from streams.live.security import faust_credentials
from streams.operators.validation import QualityMonitor
from streams.pipeline import Output

log = logging.getLogger(__name__)

# Ticks taken from the stream at once: one transaction per partition per batch.
BATCH_MAX = 500
BATCH_WITHIN_S = 0.005


# After a crash, faust's orderly stop gets this long before the process exits regardless.
CRASH_GRACE_S = 15.0


def exit_after(seconds: float, code: int) -> None:
    """End the process with ``code`` in ``seconds`` unless it has ended by then.

    Why: a worker that must stop has to stop, and faust's orderly stop can wait forever on a
    thread that does not return. Nothing needs the orderly stop for correctness: an open
    transaction is aborted by the broker or fenced by the partition's next owner, as after a
    SIGKILL (``tests/integration/test_worker_recovery.py``).
    """
    timer = threading.Timer(seconds, os._exit, args=(code,))
    timer.daemon = True
    timer.start()


def faust_app(app_id: str, bootstrap: str) -> Any:
    """The faust app a tickwise agent runs in: the worker's, and the live benchmark's floor."""
    import faust  # imported here: operators, replay and the CLI never need it

    datadir = Path(tempfile.gettempdir()) / f"tickwise-faust-{getpass.getuser()}"
    datadir.mkdir(exist_ok=True)  # faust creates only the last level
    return faust.App(
        app_id,
        broker=[f"kafka://{server}" for server in bootstrap.split(",")],
        store="memory://",
        # faust makes a data directory even with in-memory tables; by default in the current
        # directory, which left one per app id in the repository (state lives in checkpoints)
        datadir=str(datadir / app_id),
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        table_standby_replicas=0,
        broker_credentials=faust_credentials(),
    )


def build_app(
    config: TickwiseConfig,
    bootstrap: str,
    metrics_port: int | None = None,
    metrics_addr: str = "127.0.0.1",
) -> Any:
    """Build the faust app and its agent; the pipeline state lives in the partition runners."""
    topics = Topics(config.topic_prefix)
    app = faust_app(config.app_id, bootstrap)
    raw = app.topic(
        topics.raw, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    store = CheckpointStore(
        config.live.checkpoint_dir or default_checkpoint_dir(config.app_id),
        checkpoint_key(config.live.checkpoint_key_file),
    )
    runners: dict[int, PartitionRunner] = {}
    commands: list[ControlCommand] = []  # every command seen, for runners that start later
    control_ready = asyncio.Event()
    quarantine = app.topic(
        topics.quarantine,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    monitor = QualityMonitor()
    counters = PipelineMetrics(lambda: [r.pipeline.monitor for r in list(runners.values())])
    if metrics_port:
        serve_metrics(monitor, metrics_port, metrics_addr, counters.registry)

    def observe(out: Output) -> None:
        if isinstance(out.message, CleanTick | QuarantineRecord):
            monitor.on_verdict(out.message)
        counters.on_output(out)

    def lag(tp: Any, offset: int) -> int | None:
        highwater = app.consumer.highwater(tp)  # faust's cached end of the partition
        return None if highwater is None else max(0, highwater - offset - 1)

    async def blocking(fn: Any, *args: Any) -> Any:
        # Transactions and recovery reads block: keep them off faust's event loop.
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def runner_for(partition: int, first_offset: int) -> PartitionRunner:
        runner = runners.get(partition)
        if runner is None:
            runner = PartitionRunner(
                config, bootstrap, partition, store, config.live.checkpoint_interval_s, observe
            )
            await blocking(runner.open, first_offset)
            for command in commands:
                runner.submit_control(command)
            runners[partition] = runner
        return runner

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        for tp in revoked:
            runner = runners.pop(tp.partition, None) if tp.topic == topics.raw else None
            if runner is not None:
                await blocking(runner.close)

    def on_command(command: ControlCommand) -> None:
        commands.append(command)
        for runner in runners.values():
            runner.submit_control(command)

    async def on_bad_command(record: QuarantineRecord) -> None:
        await quarantine.send(key=None, value=record.to_bytes())

    @app.task
    async def follow() -> None:
        """Every worker reads the whole control topic (its own group), then follows it."""
        await follow_control(bootstrap, topics.control, on_command, control_ready, on_bad_command)

    @app.agent(raw, name="process")
    async def process(stream: Any) -> None:
        await control_ready.wait()  # no decision before the kill switch state is known
        # A batch is acknowledged (and later committed by faust) only when the loop asks for
        # the next one, i.e. after its outputs were committed in a transaction.
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            batches: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
            produced: dict[int, list[float]] = defaultdict(list)  # Kafka timestamps (latency)
            tps: dict[int, Any] = {}
            for event in events:
                msg = event.message
                batches[msg.partition].append((msg.offset, event.value or b"", msg.headers))
                produced[msg.partition].append(msg.timestamp or 0.0)
                tps[msg.partition] = msg.tp
            for partition, batch in batches.items():
                try:
                    runner = await runner_for(partition, batch[0][0])
                except Exception as exc:
                    # A partition whose state cannot be rebuilt (an unreadable checkpoint, a
                    # refused transactional id) must not be skipped, nor retried forever by
                    # faust's supervisor behind a live-looking process: stop, loudly, non-zero.
                    log.critical("partition %s: cannot take it over: %r; stopping", partition, exc)
                    exit_after(CRASH_GRACE_S, 1)
                    await app.crash(exc)
                    return
                try:
                    await blocking(runner.process, batch)
                except PartitionFenced as exc:
                    log.warning("%s; dropping it, its new owner carries on", exc)
                    runners.pop(partition, None)
                    continue
                behind = lag(tps[partition], batch[-1][0])
                counters.on_batch(partition, produced[partition], time.time(), behind)

    app._tickwise_runners = runners  # for a clean shutdown in _run
    return app


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise worker``: run the faust worker until it stops."""
    from faust import Worker

    config = load_config(args.config, topic_prefix=args.topic_prefix, app_id=args.app_id)
    if args.checkpoint_dir:
        live = config.live.model_copy(update={"checkpoint_dir": str(Path(args.checkpoint_dir))})
        config = config.model_copy(update={"live": live})
    try:
        app = build_app(config, resolve_bootstrap(args), args.metrics_port, args.metrics_addr)
    except CheckpointKeyError as exc:  # a worker that cannot sign its checkpoints does not start
        print(f"error: {exc}", file=sys.stderr)
        return 2
    worker = Worker(app, loglevel=args.loglevel, quiet=True)
    # faust's terminal spinner lowers the root logger to DEBUG so that it can spin on every
    # record; every send then formats a debug line. A service has no terminal to spin on.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    finally:
        for runner in app._tickwise_runners.values():
            runner.close()
    return 0

"""``tickwise worker``: ``ticks.raw`` to every output topic, exactly once, through Kafka's own
transactions (``streams.live.transport``).

Each assigned raw partition gets a ``PartitionRunner`` (``streams.live.partition``) that feeds
the columnar engine a batch at a time -- the very engine the backtest runs -- and the
transport commits each batch's outputs with its input offsets in one transaction. faust is not
on this path; it runs the independent watchtower (``streams.watch``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import CleanTick
from tickwise.schemas.topics import Topics
from tickwise.streams.checkpoint import (
    CheckpointKeyError,
    CheckpointStore,
    DirCheckpointStore,
    checkpoint_key,
)
from tickwise.streams.config import TickwiseConfig, load_config
from tickwise.streams.live.bootstrap import resolve_bootstrap
from tickwise.streams.live.checkpoint_topic import TopicCheckpointStore
from tickwise.streams.live.metrics import PipelineMetrics, serve_metrics
from tickwise.streams.live.partition import PartitionRunner, default_checkpoint_dir
from tickwise.streams.live.state import Output
from tickwise.streams.live.transport import Transport, instance_slot, transactional_id
from tickwise.streams.operators.validation import QualityMonitor

log = logging.getLogger(__name__)


# After a crash, the orderly close gets this long before the process exits regardless.
CRASH_GRACE_S = 15.0


def exit_after(seconds: float, code: int) -> None:
    """End the process with ``code`` in ``seconds`` unless it has ended by then.

    Why: a worker that must stop has to stop, and closing a client can wait a long time on a
    broker that is away. Nothing needs the orderly close for correctness: an open
    transaction is aborted by the broker or fenced by the partition's next owner, as after a
    SIGKILL (``tests/integration/test_worker_recovery.py``).
    """
    timer = threading.Timer(seconds, os._exit, args=(code,))
    timer.daemon = True
    timer.start()


def build_transport(
    config: TickwiseConfig,
    bootstrap: str,
    metrics_port: int | None = None,
    metrics_addr: str = "127.0.0.1",
) -> Transport:
    """The worker's transport, its checkpoint store and, on request, its /metrics endpoint."""
    key = checkpoint_key(config.live.checkpoint_key_file)
    slot = instance_slot(config.app_id)
    store: CheckpointStore
    if config.live.checkpoint_store == "dir":
        store = DirCheckpointStore(
            config.live.checkpoint_dir or default_checkpoint_dir(config.app_id), key
        )
    else:
        topic_store = TopicCheckpointStore(
            bootstrap,
            Topics(config.topic_prefix).checkpoints,
            config.app_id,
            key,
            f"{transactional_id(config.app_id, slot[0])}.checkpoints",
        )
        topic_store.ensure_topic(config.topic_prefix)
        store = topic_store
    monitor = QualityMonitor()
    runners: dict[int, PartitionRunner] = {}
    counters = PipelineMetrics(lambda: [r.state.monitor for r in list(runners.values())])

    def observe(out: Output) -> None:
        message = out.message
        if message is None:  # a clean tick the engine encoded in bulk (counted by ``monitor``)
            return
        if isinstance(message, CleanTick | QuarantineRecord):
            monitor.on_verdict(message)
        counters.on_output(out)

    transport = Transport(config, bootstrap, store, observe, counters, slot, monitor)
    transport.runners = runners
    if metrics_port:
        serve_metrics(monitor, metrics_port, metrics_addr, counters.registry)
    return transport


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise worker``: run the transport until it is stopped or fails."""
    logging.basicConfig(
        level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_config(args.config, topic_prefix=args.topic_prefix, app_id=args.app_id)
    if args.checkpoint_dir:  # checkpoints in this directory, not in the topic
        update = {"checkpoint_store": "dir", "checkpoint_dir": str(Path(args.checkpoint_dir))}
        live = config.live.model_copy(update=update)
        config = config.model_copy(update={"live": live})
    try:
        transport = build_transport(
            config, resolve_bootstrap(args), args.metrics_port, args.metrics_addr
        )
    except CheckpointKeyError as exc:  # a worker that cannot sign its checkpoints does not start
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: transport.stop())
    try:
        transport.run()
    except Exception as exc:
        # A partition whose state cannot be rebuilt (a trimmed log, an untrusted checkpoint)
        # must not be skipped or started afresh behind a live-looking process: stop, loudly.
        log.critical("%s; stopping", exc)
        exit_after(CRASH_GRACE_S, 1)
        return 1
    return 0

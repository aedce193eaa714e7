"""``tickwise worker``: one faust agent from ``ticks.raw`` to every output topic.

The agent takes raw bytes (topics are declared ``raw`` so faust never drops a message it cannot
decode), calls ``Pipeline.process`` -- the very call the backtest makes -- and sends each output
to its topic. One pass, not a chain of agents re-reading each other's topics: nothing is decoded
twice, tick-to-decision is one hop, and a backlog on one stage cannot starve the next (with
chained agents in one faust consumer, a ``ticks.raw`` backlog kept ``ticks.clean`` unread).
faust flushes the producer before it commits offsets, so an output is acknowledged before its
input is marked done: at-least-once, with deterministic ids (``decision_id``, ``audit_id``) that
let consumers drop a redelivered duplicate.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from schemas.ticks import SourceRef
from schemas.topics import CATALOGUE, TICKS_RAW, Topics
from streams.cli import add_bootstrap_argument, resolve_bootstrap
from streams.config import TickwiseConfig, load_config
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)

# Ticks taken from the stream at once: outputs are flushed once per batch, not per message.
BATCH_MAX = 500
BATCH_WITHIN_S = 0.005


class OutputSink:
    """Outputs go through librdkafka, batched, idempotent, ``acks=all``.

    faust's own producer made every output a Python-level produce (about a millisecond per tick
    with five outputs); librdkafka batches in C. ``flush`` runs off the event loop and raises if
    any output failed, so a batch is acknowledged only once all its outputs are on the broker.
    """

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 1,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        self._failures: list[str] = []

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._failures.append(str(err))

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        """Queue one output; waits only when librdkafka's local queue is full."""
        encoded = key.encode() if key is not None else None
        while True:
            try:
                self._producer.produce(topic, value, encoded, on_delivery=self._on_delivery)
                return
            except BufferError:
                self._producer.poll(0.01)

    async def flush(self) -> None:
        """Wait until every queued output is acknowledged; raise if any was not."""
        import asyncio

        remaining = await asyncio.get_running_loop().run_in_executor(
            None, self._producer.flush, 60.0
        )
        if self._failures or remaining:
            failures, self._failures = self._failures, []
            raise RuntimeError(f"outputs not delivered ({remaining} pending): {failures[:3]}")


def build_app(config: TickwiseConfig, bootstrap: str) -> Any:
    """Build the faust app and its agent; the pipeline state lives in this app only."""
    import faust  # imported here: operators, replay and the CLI never need it

    topics = Topics(config.topic_prefix)
    app = faust.App(
        config.app_id,
        broker=[f"kafka://{server}" for server in bootstrap.split(",")],
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        producer_acks=-1,
        table_standby_replicas=0,
    )

    names = {spec.name: topics.name(spec) for spec in CATALOGUE}
    raw = app.topic(
        names[TICKS_RAW.name],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    pipeline = Pipeline(config)
    sink = OutputSink(bootstrap)

    @app.agent(raw, name="process")
    async def process(stream: Any) -> None:
        # Events of a batch are acknowledged (and later committed) only when the loop asks
        # for the next batch, i.e. after ``sink.flush`` confirmed every output was written.
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            for event in events:
                msg = event.message
                source = SourceRef(topic=msg.topic, partition=msg.partition, offset=msg.offset)
                for out in pipeline.process(event.value or b"", source):
                    sink.send(names[out.topic.name], out.key, out.message.to_bytes())
            await sink.flush()

    return app


def _run(args: argparse.Namespace) -> int:
    from faust import Worker

    config = load_config(args.config, topic_prefix=args.topic_prefix, app_id=args.app_id)
    app = build_app(config, resolve_bootstrap(args))
    worker = Worker(app, loglevel=args.loglevel, quiet=True)
    # faust's terminal spinner lowers the root logger to DEBUG so that it can spin on every
    # record; every send then formats a debug line. A service has no terminal to spin on.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``worker`` sub-command."""
    parser = subparsers.add_parser("worker", help="run the live pipeline (faust agents)")
    parser.add_argument("--config", default=None, help="TOML config (shared with backtest)")
    parser.add_argument("--topic-prefix", default=None, help="override the config's topic prefix")
    parser.add_argument("--app-id", default=None, help="override the config's app id (group id)")
    parser.add_argument("--loglevel", default="WARNING")
    add_bootstrap_argument(parser)
    parser.set_defaults(func=_run)

"""``tickwise worker``: faust agents that wire the shared pipeline topic to topic.

Each agent decodes bytes with our own contracts (topics are declared ``raw`` so faust never
drops a message it cannot decode), calls one ``Pipeline`` stage and sends what it returns.
faust flushes the producer before it commits offsets, so an output is acknowledged before its
input is marked done: at-least-once, with deterministic ids (``decision_id``, ``audit_id``) that
let consumers drop a redelivered duplicate. The validate stage goes further: it skips raw
messages whose output is already on its topics (``streams.live.recovery``), so a restart
neither loses nor duplicates a clean tick.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from schemas.quarantine import QuarantineRecord
from schemas.ticks import CleanTick, SourceRef
from schemas.topics import Topics
from streams.cli import add_bootstrap_argument, resolve_bootstrap
from streams.config import TickwiseConfig, load_config
from streams.live.metrics import serve_metrics
from streams.live.recovery import LineageGuard, is_reinjected
from streams.live.security import faust_credentials
from streams.operators.validation import QualityMonitor
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)


def build_app(config: TickwiseConfig, bootstrap: str, metrics_port: int | None = None) -> Any:
    """Build the faust app with its two agents; the pipeline state lives in this app only."""
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
        broker_credentials=faust_credentials(),
    )

    def topic(name: str) -> Any:
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    raw, clean, quarantine = topic(topics.raw), topic(topics.clean), topic(topics.quarantine)
    features, signals = topic(topics.features), topic(topics.signals)
    decisions, audit = topic(topics.decisions), topic(topics.audit)
    pipeline = Pipeline(config)

    monitor = QualityMonitor()
    if metrics_port:
        serve_metrics(monitor, metrics_port)
    guard = LineageGuard(bootstrap, topics.raw, topics.clean, topics.quarantine, pipeline.validator)

    @app.on_partitions_revoked.connect
    async def forget(sender: Any, revoked: Any, **kwargs: Any) -> None:
        guard.forget(tp.partition for tp in revoked if tp.topic == topics.raw)

    async def screen(value: bytes, topic: str, partition: int, offset: int, headers: Any) -> None:
        # Outputs of raw partition p go to partition p: the lineage restart recovery reads.
        source = SourceRef(topic=topic, partition=partition, offset=offset)
        for verdict in pipeline.screen(value, source, is_reinjected(headers)):
            monitor.on_verdict(verdict)
            if isinstance(verdict, CleanTick):
                key = verdict.tick.instrument.encode()
                await clean.send(key=key, value=verdict.to_bytes(), partition=partition)
            else:
                await quarantine.send(
                    key=_key(verdict), value=verdict.to_bytes(), partition=partition
                )

    @app.agent(raw, name="validate")
    async def validate(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            for offset, value, headers in await guard.prepare(msg.partition, msg.offset):
                await screen(value, msg.topic, msg.partition, offset, headers)
            if not guard.skip(msg.partition, msg.offset):
                await screen(event.value or b"", msg.topic, msg.partition, msg.offset, msg.headers)

    @app.agent(clean, name="decide")
    async def decide(stream: Any) -> None:
        async for value in stream:
            tick = CleanTick.model_validate_json(value)
            out = pipeline.decide(tick)
            key = tick.tick.instrument.encode()
            if out.error is not None:
                await quarantine.send(key=key, value=out.error.to_bytes())
            if out.features is not None:
                await features.send(key=key, value=out.features.to_bytes())
            if out.signal is not None:
                await signals.send(key=key, value=out.signal.to_bytes())
            if out.decision is not None and out.audit is not None:
                await decisions.send(key=key, value=out.decision.to_bytes())
                await audit.send(key=key, value=out.audit.to_bytes())

    return app


def _key(record: QuarantineRecord) -> bytes | None:
    return record.instrument.encode() if record.instrument else None


def _run(args: argparse.Namespace) -> int:
    from faust import Worker

    config = load_config(args.config, topic_prefix=args.topic_prefix, app_id=args.app_id)
    app = build_app(config, resolve_bootstrap(args), args.metrics_port)
    Worker(app, loglevel=args.loglevel, quiet=True).execute_from_commandline()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``worker`` sub-command."""
    parser = subparsers.add_parser("worker", help="run the live pipeline (faust agents)")
    parser.add_argument("--config", default=None, help="TOML config (shared with backtest)")
    parser.add_argument("--topic-prefix", default=None, help="override the config's topic prefix")
    parser.add_argument("--app-id", default=None, help="override the config's app id (group id)")
    parser.add_argument("--loglevel", default="WARNING")
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port"
    )
    add_bootstrap_argument(parser)
    parser.set_defaults(func=_run)

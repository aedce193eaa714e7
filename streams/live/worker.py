"""``tickwise worker``: faust agents that wire the shared pipeline topic to topic.

Each agent decodes bytes with our own contracts (topics are declared ``raw`` so faust never
drops a message it cannot decode), calls one ``Pipeline`` stage and sends what it returns.
faust flushes the producer before it commits offsets, so an output is acknowledged before its
input is marked done: at-least-once, with deterministic ids (``decision_id``, ``audit_id``) that
let consumers drop a redelivered duplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from schemas.quarantine import QuarantineRecord
from schemas.ticks import CleanTick, SourceRef
from schemas.topics import Topics
from streams.cli import add_bootstrap_argument, resolve_bootstrap
from streams.config import TickwiseConfig, load_config
from streams.live.control import follow_control
from streams.operators.control import control_key
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)


def build_app(config: TickwiseConfig, bootstrap: str) -> Any:
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
    )

    def topic(name: str) -> Any:
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    raw, clean, quarantine = topic(topics.raw), topic(topics.clean), topic(topics.quarantine)
    features, signals = topic(topics.features), topic(topics.signals)
    decisions, audit = topic(topics.decisions), topic(topics.audit)
    fills, alerts, control = topic(topics.fills), topic(topics.alerts), topic(topics.control)
    pipeline = Pipeline(config)
    control_ready = asyncio.Event()

    async def quarantined(record: QuarantineRecord) -> None:
        await quarantine.send(key=_key(record), value=record.to_bytes())

    @app.task
    async def follow() -> None:
        """Every worker reads the whole control topic (own group), then follows it."""
        await follow_control(
            bootstrap, topics.control, pipeline.on_control, control_ready, quarantined
        )

    @app.agent(raw, name="validate")
    async def validate(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            source = SourceRef(topic=msg.topic, partition=msg.partition, offset=msg.offset)
            verdict = pipeline.validate(event.value or b"", source)
            if isinstance(verdict, CleanTick):
                await clean.send(key=verdict.tick.instrument.encode(), value=verdict.to_bytes())
            else:
                await quarantine.send(key=_key(verdict), value=verdict.to_bytes())
            quality_alerts, commands = pipeline.observe_validation(verdict)
            for alert in quality_alerts:
                await alerts.send(key=(alert.instrument or "").encode(), value=alert.to_bytes())
            for cmd in commands:
                await control.send(key=control_key(cmd).encode(), value=cmd.to_bytes())

    @app.agent(clean, name="decide")
    async def decide(stream: Any) -> None:
        await control_ready.wait()  # no decision before the kill switch state is known
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
            for fill in out.fills:
                await fills.send(key=key, value=fill.to_bytes())
            for alert in out.alerts:
                await alerts.send(
                    key=(alert.instrument or alert.model_id or "").encode(), value=alert.to_bytes()
                )
            for cmd in out.commands:  # monitor policies: already applied here, durable for all
                await control.send(key=control_key(cmd).encode(), value=cmd.to_bytes())

    return app


def _key(record: QuarantineRecord) -> bytes | None:
    return record.instrument.encode() if record.instrument else None


def _run(args: argparse.Namespace) -> int:
    from faust import Worker

    config = load_config(args.config, topic_prefix=args.topic_prefix, app_id=args.app_id)
    app = build_app(config, resolve_bootstrap(args))
    Worker(app, loglevel=args.loglevel, quiet=True).execute_from_commandline()
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

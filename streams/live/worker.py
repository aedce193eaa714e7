"""``tickwise worker``: faust agents that wire the shared pipeline topic to topic.

Each agent decodes bytes with our own contracts (topics are declared ``raw`` so faust never
drops a message it cannot decode), calls one ``Pipeline`` stage and sends what it returns.
faust flushes the producer before it commits offsets, so an output is acknowledged before its
input is marked done: at-least-once, with deterministic ids (``decision_id``, ``audit_id``) that
let consumers drop a redelivered duplicate.
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
from streams.live.control import follow_control
from streams.live.recovery import build_recoveries
from streams.operators.models import applied_alert
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
    alerts = topic(topics.alerts)
    pipeline = Pipeline(config)
    follow_control(
        app,
        pipeline,
        bootstrap,
        topics.control,
        lambda value: quarantine.send(key=None, value=value),
    )

    # Checkpoints and recovery (learning issue); both None when config.checkpoint.dir is unset.
    rv_validate, rv_decide = build_recoveries(config, pipeline, bootstrap, topics)

    async def send(rv: Any, partition: int, out: Any, key: Any, value: bytes, out_id: str) -> None:
        if rv is None or not rv.already_published(partition, out_id):
            await out.send(key=key, value=value)

    async def done(rv: Any, partition: int, offset: int, instrument: str | None) -> None:
        if rv is not None and rv.processed(partition, offset, instrument):
            await app.producer.flush()  # every output so far acknowledged before the checkpoint
            rv.save(partition)

    @app.agent(raw, name="validate")
    async def validate(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            if rv_validate is not None and not rv_validate.admit(msg.partition, msg.offset):
                continue  # its effect is in the restored checkpoint and its output was sent
            source = SourceRef(topic=msg.topic, partition=msg.partition, offset=msg.offset)
            verdict = pipeline.validate(event.value or b"", source)
            out_id = f"src:{msg.topic}:{msg.partition}:{msg.offset}"
            if isinstance(verdict, CleanTick):
                key, target, instrument = (
                    verdict.tick.instrument.encode(),
                    clean,
                    verdict.tick.instrument,
                )
            else:
                key, target, instrument = _key(verdict), quarantine, None
            await send(rv_validate, msg.partition, target, key, verdict.to_bytes(), out_id)
            await done(rv_validate, msg.partition, msg.offset, instrument)

    @app.agent(clean, name="decide")
    async def decide(stream: Any) -> None:
        async for event in stream.events():
            msg, rv, p = event.message, rv_decide, event.message.partition
            if rv is not None and not rv.admit(p, msg.offset):
                continue
            tick = CleanTick.model_validate_json(event.value)
            out = pipeline.decide(tick)
            inst = tick.tick.instrument
            key = inst.encode()
            if out.error is not None:
                await quarantine.send(key=key, value=out.error.to_bytes())
            if out.features is not None:
                fv_id = f"fv:{inst}:{tick.tick.tick_id}"
                await send(rv, p, features, key, out.features.to_bytes(), fv_id)
            for signal in out.signals:  # shadow signals too; only out.signal went to risk
                await send(rv, p, signals, key, signal.to_bytes(), signal.signal_id)
            for applied in out.applied:
                alert = applied_alert(applied)
                await send(rv, p, alerts, key, alert.to_bytes(), alert.alert_id)
            if out.decision is not None and out.audit is not None:
                decision, record = out.decision, out.audit
                await send(rv, p, decisions, key, decision.to_bytes(), decision.decision_id)
                await send(rv, p, audit, key, record.to_bytes(), record.audit_id)
            await done(rv, p, msg.offset, inst)

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

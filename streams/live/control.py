"""The ``control`` topic at the edge: ``tickwise kill-switch`` and the worker's control follower.

Every worker must see every command, so the follower is not a member of the worker's consumer
group: it reads the whole compacted topic from the beginning with a group of its own (the
``tap`` consumer). The worker holds its decisions until the follower has caught up with the
topic's end, so a kill switch set before a restart is in force before the first decision.
All logic (what a command does, when it applies) lives in ``streams.operators.control``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from pydantic import ValidationError

from schemas.decisions import ControlCommand
from schemas.quarantine import QuarantineRecord, ReasonCode
from schemas.ticks import SourceRef
from schemas.topics import Topics
from streams.live.bootstrap import resolve_bootstrap
from streams.live.feed import publish
from streams.live.tap import consumer
from streams.operators.control import control_key
from streams.operators.validation import quarantine
from streams.sources import RawRecord

log = logging.getLogger(__name__)

POLL_S = 0.2


def send_commands(commands: list[ControlCommand], bootstrap: str, topic: str) -> int:
    """Publish commands keyed for compaction (``control_key``); return how many were acked."""
    records = [
        RawRecord(control_key(cmd), cmd.to_bytes(), "control", i) for i, cmd in enumerate(commands)
    ]
    return publish(records, bootstrap, topic)


def send_control(bootstrap: str, topic: str, command: ControlCommand) -> None:
    """Publish one command and wait for the ack (the model CLI's call)."""
    send_commands([command], bootstrap, topic)


def _caught_up(c: Consumer) -> bool:
    parts = c.assignment()
    if not parts:
        return False
    for tp in c.position(parts):
        _, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=5)
        if high > 0 and tp.offset < high:
            return False
    return True


def _decode(msg: Message) -> ControlCommand | QuarantineRecord:
    raw = msg.value() or b""
    try:
        return ControlCommand.model_validate_json(raw)
    except ValidationError as exc:
        source = SourceRef(topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
        reason = (
            ReasonCode.MALFORMED_JSON
            if any(e["type"] == "json_invalid" for e in exc.errors())
            else ReasonCode.SCHEMA_VIOLATION
        )
        return quarantine(raw, source, reason, f"control: {exc.errors()[0]['msg']}")


async def follow_control(
    bootstrap: str,
    topic: str,
    apply: Callable[[ControlCommand], object],
    ready: asyncio.Event,
    on_bad: Callable[[QuarantineRecord], Awaitable[None]],
) -> None:
    """Apply every command on ``topic``, from the beginning and then as it arrives; set
    ``ready`` once the topic's end has been reached. Runs until cancelled.

    One thread owns the consumer: a cancelled ``await`` does not stop a ``poll`` already
    running in its thread, and closing a librdkafka consumer from another thread while it
    polls can hang the worker's shutdown. On a single thread, ``close`` waits its turn.
    """
    loop = asyncio.get_running_loop()
    own = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tickwise-control")
    c = await loop.run_in_executor(own, consumer, bootstrap, [topic])
    try:
        while True:
            msg = await loop.run_in_executor(own, c.poll, POLL_S)
            if msg is None:
                if not ready.is_set() and await loop.run_in_executor(own, _caught_up, c):
                    ready.set()
                    log.info("control: caught up with %s", topic)
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.error("control consumer error: %s", msg.error())
                continue
            verdict = _decode(msg)
            if isinstance(verdict, QuarantineRecord):
                await on_bad(verdict)
            else:
                apply(verdict)
    finally:
        try:
            await asyncio.shield(loop.run_in_executor(own, c.close))
        finally:
            own.shutdown(wait=False)


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise kill-switch on|off`` and return the exit code."""
    now = time.time_ns()  # wall clock: when the operator issued it (not an event time)
    scope = args.scope
    cmd = ControlCommand(
        command_id=f"ks-{scope}-{args.state}-{now}",
        command="kill_switch_on" if args.state == "on" else "kill_switch_off",
        scope=scope,
        reason=args.reason,
        operator=args.operator or getpass.getuser(),
        ts_event_ns=now,
        effective_ts_event_ns=args.effective_ts_event_ns,
    )
    topic = Topics(args.topic_prefix).control
    send_commands([cmd], resolve_bootstrap(args), topic)
    print(f"kill switch {args.state} for {scope}: {cmd.command_id} sent to {topic}")
    return 0

"""The ``control`` topic at the edge: publishing commands, and every worker following them.

The topic has one partition, and a consumer group would hand it to one worker only, yet every
worker must see every command. So each worker reads it with its own never-committing consumer
from the earliest offset (the topic is small and compacted) and hands each command to its
pipeline; per-instrument state remembers applied command ids, so reading a command twice is
harmless. A message that is not a valid ``ControlCommand`` goes to ``ticks.quarantine``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from schemas.decisions import ControlCommand
from schemas.quarantine import ReasonCode
from schemas.ticks import SourceRef
from streams.live.feed import publish
from streams.live.tap import consumer
from streams.operators.validation import quarantine
from streams.pipeline import Pipeline
from streams.sources import RawRecord

POLL_INTERVAL_S = 0.5
MAX_PER_POLL = 100


def send_control(bootstrap: str, topic: str, command: ControlCommand) -> None:
    """Publish one command (keyed by its scope, as the catalogue says) and wait for the ack."""
    record = RawRecord(command.scope, command.to_bytes(), "control", 0)
    publish([record], bootstrap, topic)


def follow_control(
    app: Any,
    pipeline: Pipeline,
    bootstrap: str,
    topic: str,
    quarantine_send: Callable[[bytes], Awaitable[Any]] | None = None,
) -> None:
    """Add a faust timer that feeds every control command to ``pipeline`` within a second."""
    state: dict[str, Any] = {}

    @app.timer(interval=POLL_INTERVAL_S)
    async def poll_control() -> None:
        c = state.get("consumer")
        if c is None:
            c = state["consumer"] = consumer(bootstrap, [topic], f"ctl-{uuid.uuid4().hex[:12]}")
        for msg in c.consume(MAX_PER_POLL, timeout=0):
            if msg.error():
                continue  # partition EOF and transient errors: the client retries itself
            raw = msg.value() or b""
            try:
                pipeline.control(ControlCommand.model_validate_json(raw))
            except ValidationError as exc:
                source = SourceRef(
                    topic=msg.topic(), partition=msg.partition(), offset=msg.offset()
                )
                record = quarantine(raw, source, ReasonCode.SCHEMA_VIOLATION, f"control: {exc}")
                if quarantine_send is not None:
                    await quarantine_send(record.to_bytes())


def new_command_id(prefix: str = "cmd") -> str:
    """A unique command id (the wall clock is fine here: this is an operator's action)."""
    return f"{prefix}-{time.time_ns()}-{uuid.uuid4().hex[:6]}"

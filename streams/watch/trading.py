"""The watchtower's trading-anomaly agent: the audit topic into windows, findings out.

One agent of its own on ``audit`` (faust hands each message to every agent subscribed to its
topic), so the chain check and the windows stay apart. It decodes each entry, counts it in its
key's windows (``windows``), judges the windows it closed (``anomaly``), sends the alerts and
publishes the policies' commands on ``control``, keyed for compaction as ``tickwise
kill-switch`` keys them. The windows table is backed by a changelog like the others, and a
message re-delivered after a restart is recognised by its offset, so it is not counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from pydantic import ValidationError

from tickwise.schemas.decisions import AUDIT_ADAPTER, Alert
from tickwise.schemas.topics import Topics
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.operators.control import control_key
from tickwise.streams.watch.anomaly import Anomalies

log = logging.getLogger(__name__)


def add_trading(
    app: faust.App,
    config: TickwiseConfig,
    topics: Topics,
    partitions: int,
    send: Callable[[list[Alert]], Awaitable[None]],
) -> dict[str, Any]:
    """Declare the windows table and the agent that fills it; return the tables by name.

    ``partitions``: the audit topic's (the table is co-partitioned with it); ``send``: how the
    app publishes alerts. An entry that is no audit entry is the chain check's to report.
    """

    def table(name: str) -> Any:
        return app.Table(name, partitions=partitions, key_type=str, default=None)

    tables = {"windows": table("trading-windows"), "windowed": table("windowed-offsets")}
    anomalies = Anomalies(config, tables["windows"])
    audit_topic = app.topic(topics.audit, value_serializer="raw")
    control_topic = app.topic(topics.control, value_serializer="raw", key_serializer="raw")

    @app.agent(audit_topic)
    async def window_trading(stream: Any) -> None:
        counted = tables["windowed"]
        async for event in stream.events():
            msg = event.message
            mark = f"{msg.topic}:{msg.partition}"
            done = counted.get(mark)
            if done is not None and msg.offset <= done:
                continue  # counted before a restart
            try:
                entry = AUDIT_ADAPTER.validate_json(event.value or b"")
            except ValidationError:
                entry = None  # AUDIT_UNREADABLE comes from the chain check
            alerts, commands = anomalies.on_entry(entry) if entry is not None else ([], [])
            counted[mark] = msg.offset
            await send(alerts)
            for command in commands:
                log.warning("control %s %s: %s", command.command, command.scope, command.reason)
                await control_topic.send(
                    key=control_key(command).encode(), value=command.to_bytes()
                )

    return tables

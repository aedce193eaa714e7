"""The watchtower's trading anomalies: audit entries into windows, findings out.

The trail agent hands each audit entry it checked here, decoded once for both: it is counted
in its key's windows (``windows``), the windows it closed are judged (``anomaly``), and the
alerts go back to the agent, which sends them; the policies' commands are published on
``control``, keyed for compaction as ``tickwise kill-switch`` keys them. The windows table is
the agent's like its other tables (written a batch at a time, ``behind``), so a message
re-delivered after a restart is recognised by the agent's checked offsets and not counted
twice.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import faust

from tickwise.schemas.decisions import Alert, ControlCommand
from tickwise.schemas.topics import Topics
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.operators.audit import Entry
from tickwise.streams.operators.control import control_key
from tickwise.streams.watch.anomaly import Anomalies

log = logging.getLogger(__name__)


class Trading:
    """The windows over ``windows`` (each key's state; a table of the trail agent) and the
    control topic the policies' commands go to."""

    def __init__(
        self,
        app: faust.App,
        config: TickwiseConfig,
        topics: Topics,
        windows: MutableMapping[str, Any],
    ) -> None:
        self.anomalies = Anomalies(config, windows)
        self.control = app.topic(topics.control, value_serializer="raw", key_serializer="raw")

    def on_entry(self, entry: Entry) -> tuple[list[Alert], list[ControlCommand]]:
        """Count an audit entry; the alerts and commands of the windows it closed."""
        return self.anomalies.on_entry(entry)

    async def publish(self, commands: list[ControlCommand]) -> None:
        for command in commands:
            log.warning("control %s %s: %s", command.command, command.scope, command.reason)
            await self.control.send(key=control_key(command).encode(), value=command.to_bytes())

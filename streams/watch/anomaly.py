"""Trading anomalies: each closed window of a key against the key's own trailing windows.

The yardstick is a robust z-score, the distance from the trailing median in units of the
median absolute deviation (scaled to a normal's standard deviation): a past burst or a past
silence in the history moves it little, where a mean and a standard deviation would follow it.
Three detectors judge each closed tumbling window of an instrument and model version once it
has ``min_history`` windows behind it:

- ``ORDER_BURST``: order intents (approved or refused) far above the trailing median. Counts
  vary by about their square root even when a history happens to be flat, so the scale is
  never below that.
- ``SILENT_MODEL``: ticks were decided, yet no intent at all, where the trailing median
  traded.
- ``PNL_DROP``: the window's marked P&L change far below the trailing ones. A key whose P&L
  never moved has no yardstick and is not judged (the monitor's ``PNL_LOSS`` is the absolute
  limit).

Each is a condition with edges, like the wall-clock alarms: it raises its alert when it starts
and ``<CODE>_CLEARED`` when a later window is normal again, and only the start answers with
the configured policy's ``ControlCommand``. Alert and command carry the event time of the
window's end, and their ids name the key and the window, so a replay of the audit trail derives
the same alerts and commands. Nothing here reads the clock.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median
from typing import Any

from tickwise.schemas.decisions import Alert, AuditRecord, ControlCommand, HoldSummary
from tickwise.streams.config import AnomalyConfig, TickwiseConfig
from tickwise.streams.operators.monitor import policy_command
from tickwise.streams.operators.validation.rules import MAD_TO_STD
from tickwise.streams.watch.alerts import CLEARED, TRADING, watch_alert
from tickwise.streams.watch.windows import Closed, Counts, Windows


def robust_z(value: float, history: Sequence[float], min_scale: float = 0.0) -> float | None:
    """How many robust deviations ``value`` lies from the median of ``history``.

    The deviation is ``MAD_TO_STD`` x the median absolute deviation, at least ``min_scale``.
    None when there is no yardstick: an empty history, or a constant one (scale 0) that the
    value departs from.

    Examples
    --------
    >>> robust_z(10.0, [1.0, 2.0, 3.0])
    5.3959...
    >>> robust_z(2.0, [2.0, 2.0]), robust_z(3.0, [2.0, 2.0]), robust_z(3.0, [2.0, 2.0], 0.5)
    (0.0, None, 2.0)
    """
    if not history:
        return None
    mid = median(history)
    if value == mid:
        return 0.0
    scale = max(MAD_TO_STD * median(abs(h - mid) for h in history), min_scale)
    if scale == 0.0:
        return None
    return (value - mid) / scale


@dataclass(frozen=True)
class Finding:
    """One detector's verdict on one closed window."""

    code: str
    firing: bool
    detail: str


def _span(window: Counts) -> str:
    start = datetime.fromtimestamp(window["start_ns"] / 1e9, UTC)
    end = datetime.fromtimestamp(window["end_ns"] / 1e9, UTC)
    return f"[{start:%Y-%m-%dT%H:%M:%S}, {end:%H:%M:%S}) UTC"


def judge(window: Counts, history: Sequence[Counts], config: AnomalyConfig) -> list[Finding]:
    """The three detectors on one closed window; nothing before ``min_history`` windows."""
    if len(history) < config.min_history:
        return []
    span, n = _span(window), len(history)
    intents = window["intents"]
    past = [h["intents"] for h in history]
    mid = median(past)
    z = robust_z(intents, past, math.sqrt(max(mid, 1.0)))
    burst = z is not None and intents >= config.burst_min_orders and z >= config.burst_z
    found = [
        Finding(
            "ORDER_BURST",
            burst,
            f"{intents} order intents in {span}, trailing median {mid:g} over {n} windows "
            f"(robust z {z:.1f}, limit {config.burst_z:g})",
        )
    ]
    silent = (
        window["decided_ticks"] >= config.silent_min_ticks
        and intents == 0
        and mid >= config.silent_min_median
    )
    found.append(
        Finding(
            "SILENT_MODEL",
            silent,
            f"no order intent in {span} over {window['decided_ticks']} decided ticks, "
            f"trailing median {mid:g} over {n} windows",
        )
    )
    pnl = window["marked_pnl"]
    pnl_past = [h["marked_pnl"] for h in history]
    pz = robust_z(pnl, pnl_past)
    drop = pz is not None and pnl < 0.0 and pz <= -config.pnl_drop_z
    found.append(
        Finding(
            "PNL_DROP",
            drop,
            f"marked P&L {pnl:+.2f} in {span}, trailing median {median(pnl_past):+.2f} over "
            f"{n} windows (robust z {'n/a' if pz is None else f'{pz:.1f}'}, "
            f"limit -{config.pnl_drop_z:g})",
        )
    )
    return found


class Anomalies:
    """The windows of every key and the detectors' conditions, over a mapping of key states
    (a faust table live); turns each condition's edges into alerts and policy commands."""

    def __init__(self, config: TickwiseConfig, states: MutableMapping[str, Any]) -> None:
        self.config = config.watch.anomaly
        self.windows = Windows(self.config, config.label, states)
        self.states = states

    def on_entry(
        self, entry: AuditRecord | HoldSummary
    ) -> tuple[list[Alert], list[ControlCommand]]:
        """Count an audit entry; judge the windows it closed."""
        alerts: list[Alert] = []
        commands: list[ControlCommand] = []
        for closed in self.windows.on_entry(entry):
            for alert in self._edges(closed):
                alerts.append(alert)
                if alert.code in TRADING:
                    policy = self.config.policies.get(alert.code, "alert")
                    command = policy_command(alert, policy, "watch", "cmd-")
                    if command is not None:
                        commands.append(command)
        return alerts, commands

    def _edges(self, closed: Closed) -> list[Alert]:
        st = self.states[closed.key]
        firing = set(st["firing"])
        out: list[Alert] = []
        end_ns = closed.window["end_ns"]
        who = f"{closed.instrument} {closed.model_id} v{closed.model_version}"
        for finding in judge(closed.window, closed.history, self.config):
            if finding.firing == (finding.code in firing):
                continue
            code = finding.code if finding.firing else finding.code + CLEARED
            firing ^= {finding.code}
            subject = f"{closed.key}-{closed.window['start_ns']}"
            detail = f"{who}: {finding.detail}"
            alert = watch_alert(code, detail, subject, end_ns, closed.instrument)
            out.append(alert.model_copy(update={"model_id": closed.model_id}))
        if firing != set(st["firing"]):
            st["firing"] = sorted(firing)
            self.states[closed.key] = st
        return out

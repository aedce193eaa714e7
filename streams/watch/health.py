"""The wall-clock checks: feeds that went quiet in their session hours, decisions never audited,
workers down or behind, a broker that does not answer.

Each condition is an alarm with a code and a subject (an instrument, a group, a decision). An
alarm raises its alert once when the condition starts and a ``<CODE>_CLEARED`` alert (INFO) when
it ends, so the ``alerts`` topic says when a problem began and when it was over, not once a
second while it lasts. Nothing here reads the clock: the caller passes ``now``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tickwise.schemas.decisions import Alert
from tickwise.streams.config import WatchConfig
from tickwise.streams.watch.alerts import CLEARED, watch_alert
from tickwise.streams.watch.sessions import session_start


@dataclass(frozen=True)
class GroupHealth:
    """What the broker says of the workers' group on ``ticks.raw``."""

    group: str
    state: str
    members: int
    lag: int  # messages between the group's committed offsets and the partitions' ends
    lag_by_partition: Mapping[int, int] = field(default_factory=dict)


@dataclass
class Alarms:
    """Which conditions are on; turns a condition's edges into alerts."""

    on: set[tuple[str, str]] = field(default_factory=set)

    def update(
        self,
        code: str,
        subject: str,
        firing: bool,
        detail: str,
        now_ns: int,
        instrument: str | None = None,
    ) -> list[Alert]:
        """The alert of a condition that starts or ends now; nothing while it stays as it is."""
        key = (code, subject)
        if firing == (key in self.on):
            return []
        if firing:
            self.on.add(key)
            return [watch_alert(code, detail, f"{subject}-{now_ns}", now_ns, instrument)]
        self.on.discard(key)
        cleared = code + CLEARED
        return [watch_alert(cleared, detail, f"{subject}-{now_ns}", now_ns, instrument)]

    def firing(self) -> list[tuple[str, str]]:
        return sorted(self.on)


def in_session(last_seen: Mapping[str, float], now: float, config: WatchConfig) -> dict[str, bool]:
    """Whether each watched instrument's session is open: those seen, and those with hours of
    their own (``[watch.sessions]``), which are watched before their first tick."""
    watched = sorted(set(last_seen) | set(config.sessions))
    return {i: session_start(config.session_for(i), now) is not None for i in watched}


def feed_alerts(
    alarms: Alarms, last_seen: Mapping[str, float], now: float, config: WatchConfig
) -> list[Alert]:
    """FEED_STALE for each instrument silent for ``stale_after_s`` of its session.

    ``last_seen``: wall s of each instrument's last tick. Silence counts from the later of the
    last tick and the session's open, so a closed market is never stale and one that opens
    gets ``stale_after_s`` for its first tick; a stale feed whose session closes is cleared.
    """
    out: list[Alert] = []
    limit = config.stale_after_s
    for instrument in in_session(last_seen, now, config):
        seen = last_seen.get(instrument, -math.inf)
        opened = session_start(config.session_for(instrument), now)
        if opened is None:
            stale, detail = False, f"{instrument}: its session is closed"
        else:
            quiet = now - max(seen, opened)
            stale = quiet >= limit
            if not stale:
                detail = f"{instrument}: ticks again after a silence"
            elif opened > seen:
                detail = (
                    f"{instrument}: no tick on ticks.raw since its session opened {quiet:.1f} s "
                    f"ago (limit {limit} s)"
                )
            else:
                detail = f"{instrument}: no tick on ticks.raw for {quiet:.1f} s (limit {limit} s)"
        out += alarms.update("FEED_STALE", instrument, stale, detail, int(now * 1e9), instrument)
    return out


def missing_audits(
    pending: Iterable[tuple[str, Mapping[str, object]]],
    reported: set[str],
    now: float,
    config: WatchConfig,
) -> list[Alert]:
    """AUDIT_MISSING, once, for each decision seen ``audit_deadline_s`` ago and still unaudited.

    ``pending``: decision id -> {"seen": wall s, "at": where it was read, "instrument"}.
    """
    out: list[Alert] = []
    for decision_id, entry in pending:
        seen = float(entry["seen"])  # type: ignore[arg-type]
        if decision_id in reported or now - seen < config.audit_deadline_s:
            continue
        reported.add(decision_id)
        detail = (
            f"decision {decision_id} at {entry['at']}: no audit record after "
            f"{now - seen:.1f} s (limit {config.audit_deadline_s} s)"
        )
        out.append(
            watch_alert("AUDIT_MISSING", detail, decision_id, int(now * 1e9), entry["instrument"])  # type: ignore[arg-type]
        )
    return out


def group_alerts(
    alarms: Alarms, health: GroupHealth | Exception, now: float, config: WatchConfig
) -> list[Alert]:
    """BROKER_UNREACHABLE when the probe failed; else WORKER_DOWN and WORKER_LAG."""
    now_ns = int(now * 1e9)
    if isinstance(health, Exception):
        detail = f"the broker did not answer: {health}"
        return alarms.update("BROKER_UNREACHABLE", "broker", True, detail, now_ns)
    out = alarms.update("BROKER_UNREACHABLE", "broker", False, "the broker answers again", now_ns)
    down = health.members == 0
    detail = (
        f"consumer group {health.group} has no member (state {health.state}): "
        "no worker is consuming ticks.raw"
        if down
        else f"consumer group {health.group} has {health.members} member(s) again"
    )
    out += alarms.update("WORKER_DOWN", health.group, down, detail, now_ns)
    behind = health.lag > config.max_lag
    worst = sorted(health.lag_by_partition.items(), key=lambda kv: -kv[1])[:3]
    where = ", ".join(f"partition {p}: {n}" for p, n in worst)
    detail = (
        f"consumer group {health.group} is {health.lag} messages behind on ticks.raw "
        f"(limit {config.max_lag}; {where})"
        if behind
        else f"consumer group {health.group} is {health.lag} messages behind, within the limit"
    )
    out += alarms.update("WORKER_LAG", health.group, behind, detail, now_ns)
    return out

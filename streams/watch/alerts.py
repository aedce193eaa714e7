"""The watchtower's alert codes, one severity each, and how its alerts are made.

The codes are stable: dashboards, Prometheus rules and people's filters match on them. A
condition that lasts (a stale feed, a lagging group) raises its code once and, when it ends,
``<CODE>_CLEARED`` at INFO.
"""

from __future__ import annotations

from typing import Any

from tickwise.schemas.decisions import Alert, Severity

CLEARED = "_CLEARED"

CODES: dict[str, Severity] = {
    # the audit trail, as it arrives
    "AUDIT_BROKEN": Severity.CRITICAL,  # a record that fails its hash, or does not link
    "AUDIT_GAP": Severity.CRITICAL,  # sequence numbers skipped: records missing
    "AUDIT_REORDERED": Severity.CRITICAL,  # a skipped record arrived late
    "AUDIT_FORK": Severity.CRITICAL,  # a second, different record for a sequence number
    "AUDIT_DUPLICATE": Severity.WARNING,  # the head record again, byte for byte
    "AUDIT_UNREADABLE": Severity.CRITICAL,  # a message on the audit topic that is no record
    "AUDIT_MISSING": Severity.CRITICAL,  # a decision without its audit record in time
    "DECISION_UNREADABLE": Severity.CRITICAL,  # a message on the decisions topic that is none
    "CONTROL_UNREADABLE": Severity.WARNING,  # a message on the control topic that is none
    # the wall clock
    "FEED_STALE": Severity.WARNING,  # no tick of an instrument for stale_after_s
    "WORKER_LAG": Severity.WARNING,  # the workers' backlog on ticks.raw above max_lag
    "WORKER_DOWN": Severity.CRITICAL,  # no member in the workers' consumer group
    "BROKER_UNREACHABLE": Severity.CRITICAL,  # the broker did not answer the watchtower
    # trading anomalies: a closed event-time window against the key's trailing ones (anomaly)
    "ORDER_BURST": Severity.CRITICAL,  # order intents far above the trailing median
    "SILENT_MODEL": Severity.WARNING,  # ticks decided but no intent, where the model traded
    "PNL_DROP": Severity.WARNING,  # marked P&L change far below the trailing windows'
}
LASTING = ("FEED_STALE", "WORKER_LAG", "WORKER_DOWN", "BROKER_UNREACHABLE")
TRADING = ("ORDER_BURST", "SILENT_MODEL", "PNL_DROP")
CODES.update({code + CLEARED: Severity.INFO for code in LASTING + TRADING})


def watch_alert(
    code: str, detail: str, subject: Any, now_ns: int, instrument: str | None = None
) -> Alert:
    """An alert of the watchtower; its id (code and subject) is stable, so a re-raised alert
    can be recognised.

    Examples
    --------
    >>> watch_alert("FEED_STALE", "ES: quiet", "ES-1", 1).severity.value
    'WARNING'
    """
    return Alert(
        alert_id=f"watch-{code}-{subject}".replace(" ", "_"),
        ts_event_ns=now_ns,
        severity=CODES[code],
        code=code,
        detail=detail,
        instrument=instrument,
    )

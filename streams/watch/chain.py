"""The live audit check: each record against the head of its chain.

Two kinds of chain are checked the same way, with the same alerts: each instrument's audit
trail (``check_record``) and the model registry's log (``check_registry``).

The hash itself is checked by ``streams.operators.audit.record_hash``, the function the worker
seals records with and ``tickwise audit verify`` checks them with. What is added here is what a
reader of a live topic needs: the head carries where the last record was read (so an alert names
both offsets), and the sequence numbers a gap skipped, so a late record is told from a fork.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tickwise.schemas.decisions import AUDIT_ADAPTER, Alert, AuditRecord
from tickwise.schemas.registry import RegistryEntry
from tickwise.streams.operators.audit import GENESIS, Entry, Linked, chain_of, record_hash
from tickwise.streams.watch.alerts import watch_alert

# Sequence numbers a gap left open that a late record may still fill; beyond this many, the
# oldest are forgotten (a record filling one of those is then reported as a fork).
MAX_MISSING = 1000


@dataclass(frozen=True)
class Where:
    """Where a message was read: topic, partition, offset."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def genesis_head() -> dict[str, Any]:
    """The head of a chain nothing has been read of."""
    return {"seq": -1, "hash": GENESIS, "audit_id": None, "at": None, "missing": []}


def check_record(
    raw: bytes, where: Where, heads: MutableMapping[str, Any], now_ns: int
) -> tuple[list[Alert], Entry | None]:
    """Check one message of the audit topic against the head of its instrument's chain.

    ``heads``: instrument -> head (JSON-able; the watchtower's table), updated here. Returns
    the alerts and the record or hold summary (None when the message is neither).
    """
    try:
        record = AUDIT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        detail = f"{where}: not an audit record ({exc.error_count()} errors)"
        return [watch_alert("AUDIT_UNREADABLE", detail, where, now_ns)], None
    what = (
        f"decision {record.decision.decision_id}"
        if isinstance(record, AuditRecord)
        else f"{record.holds} holds"
    )
    this = f"{record.audit_id} ({what}) at {where}"
    return link_alerts(record, raw, this, where, heads, now_ns, record.instrument), record


def check_registry(
    raw: bytes, where: Where, heads: MutableMapping[str, Any], now_ns: int
) -> tuple[list[Alert], RegistryEntry | None]:
    """Check one message of the ``registry`` topic against the head of the registry's chain,
    as ``check_record`` checks the audit trail (same alerts, same head)."""
    try:
        entry = RegistryEntry.model_validate_json(raw)
    except ValidationError as exc:
        detail = f"{where}: not a registry entry ({exc.error_count()} errors)"
        return [watch_alert("AUDIT_UNREADABLE", detail, where, now_ns)], None
    this = f"{entry.audit_id} ({entry.event} {entry.model} to {entry.to_stage}) at {where}"
    return link_alerts(entry, raw, this, where, heads, now_ns), entry


def link_alerts(
    record: Linked,
    raw: bytes,
    this: str,
    where: Where,
    heads: MutableMapping[str, Any],
    now_ns: int,
    instrument: str | None = None,
) -> list[Alert]:
    """The alerts of one record (described as ``this``) against its chain's head; moves the
    head forward only: after a gap to the record past the gap; a late or forked record
    leaves it."""
    key = chain_of(record)
    known = heads.get(key)
    head = dict(known) if known is not None else genesis_head()
    last = f"{head['audit_id']} at {head['at']}" if head["audit_id"] else "the chain's start"
    alerts: list[tuple[str, str]] = []
    expected = head["seq"] + 1
    advance = True
    if record_hash(record, raw) != record.hash:
        alerts.append(("AUDIT_BROKEN", f"{this}: hash does not match its content"))
    if record.seq == expected:
        if record.prev_hash != head["hash"]:
            alerts.append(("AUDIT_BROKEN", f"{this}: does not link to {last}"))
    elif record.seq > expected:
        skipped = record.seq - expected
        late = range(max(expected, record.seq - MAX_MISSING), record.seq)
        head["missing"] = [*head["missing"], *late][-MAX_MISSING:]
        alerts.append(
            (
                "AUDIT_GAP",
                f"{this}: seq {record.seq} follows seq {head['seq']} ({last}); "
                f"{skipped} record(s) missing",
            )
        )
    else:
        advance = False
        if record.seq in head["missing"]:
            head["missing"] = [s for s in head["missing"] if s != record.seq]
            alerts.append(
                ("AUDIT_REORDERED", f"{this}: seq {record.seq} arrived after seq {head['seq']}")
            )
        elif record.seq == head["seq"] and record.hash == head["hash"]:
            alerts.append(("AUDIT_DUPLICATE", f"{this}: a copy of {last}"))
        else:
            alerts.append(
                ("AUDIT_FORK", f"{this}: a second record for seq {record.seq}, head {last}")
            )
    if advance:
        head.update(seq=record.seq, hash=record.hash, audit_id=record.audit_id, at=str(where))
    if head != known:
        heads[key] = head
    return [
        watch_alert(code, d, f"{where}-{i}" if i else where, now_ns, instrument)
        for i, (code, d) in enumerate(alerts)
    ]

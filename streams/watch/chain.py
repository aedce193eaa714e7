"""The live audit check: each record against the head of its instrument's chain.

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
from tickwise.streams.operators.audit import GENESIS, Entry, record_hash
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
    the alerts and the record or hold summary (None when the message is neither). A head moves
    forward only: after a gap it moves to the record past the gap; a late or forked record
    leaves it.
    """
    try:
        record = AUDIT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        detail = f"{where}: not an audit record ({exc.error_count()} errors)"
        return [watch_alert("AUDIT_UNREADABLE", detail, where, now_ns)], None
    known = heads.get(record.instrument)
    head = dict(known) if known is not None else genesis_head()
    last = f"{head['audit_id']} at {head['at']}" if head["audit_id"] else "the chain's start"
    what = (
        f"decision {record.decision.decision_id}"
        if isinstance(record, AuditRecord)
        else f"{record.holds} holds"
    )
    this = f"{record.audit_id} ({what}) at {where}"
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
        heads[record.instrument] = head
    out = [
        watch_alert(code, d, f"{where}-{i}" if i else where, now_ns, record.instrument)
        for i, (code, d) in enumerate(alerts)
    ]
    return out, record

"""The audit trail: one record per decision, hash-chained per instrument."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from schemas.decisions import AuditRecord, Decision, FeatureVector, RiskCheckResult, Signal
from streams.operators.state import InstrumentStateMixin

GENESIS = "0" * 64


def record_hash(record: AuditRecord) -> str:
    """SHA-256 of the record's canonical JSON without its own hash (``prev_hash`` included)."""
    body = record.model_dump_json(exclude={"hash"}).encode()
    return hashlib.sha256(body).hexdigest()


class AuditChain(InstrumentStateMixin):
    """Append-only audit records; each one commits to the one before it for the instrument.

    Examples
    --------
    >>> chain = AuditChain()
    >>> chain.head("ES") == GENESIS
    True
    """

    def __init__(self) -> None:
        self._state: dict[str, tuple[int, str]] = {}

    def head(self, instrument: str) -> str:
        return self._state.get(instrument, (-1, GENESIS))[1]

    def on_decision(
        self,
        features: FeatureVector,
        signal: Signal,
        checks: list[RiskCheckResult],
        decision: Decision,
    ) -> AuditRecord:
        """Append the record for ``decision`` and advance the instrument's chain."""
        last_seq, prev = self._state.get(decision.instrument, (-1, GENESIS))
        seq = last_seq + 1
        unsigned = AuditRecord(
            audit_id=f"aud-{decision.instrument}-{seq}",
            seq=seq,
            instrument=decision.instrument,
            ts_event_ns=decision.ts_event_ns,
            tick_ids=[decision.tick_id],
            features=features.values,
            signal=signal,
            checks=checks,
            decision=decision,
            prev_hash=prev,
            hash="",
        )
        record = unsigned.model_copy(update={"hash": record_hash(unsigned)})
        self._state[decision.instrument] = (seq, record.hash)
        return record


def verify_chain(records: Iterable[AuditRecord]) -> list[str]:
    """Return every problem found (tampered, missing or reordered records); empty means intact."""
    problems: list[str] = []
    heads: dict[str, tuple[int, str]] = {}
    for record in records:
        last_seq, prev = heads.get(record.instrument, (-1, GENESIS))
        if record.seq != last_seq + 1:
            problems.append(f"{record.audit_id}: seq {record.seq} follows {last_seq}")
        if record.prev_hash != prev:
            problems.append(f"{record.audit_id}: prev_hash does not match the previous record")
        if record_hash(record) != record.hash:
            problems.append(f"{record.audit_id}: hash does not match its content")
        heads[record.instrument] = (record.seq, record.hash)
    return problems

"""The audit trail: one record per decision, hash-chained per instrument."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from schemas.decisions import (
    AppliedControl,
    AuditRecord,
    Decision,
    FeatureVector,
    Fill,
    Order,
    RiskCheckResult,
    Signal,
    TradingState,
)
from streams.operators.state import InstrumentStateMixin

GENESIS = "0" * 64


# ``hash`` is the record's last field: its JSON ends with this while unsigned.
_UNSIGNED_TAIL = b',"hash":""}'


_SIGNED_TAIL = re.compile(rb',"hash":"[0-9a-f]{64}"\}\Z')


def record_hash(record: AuditRecord, stored: bytes | None = None) -> str:
    """SHA-256 of the record's canonical JSON without its own hash (``prev_hash`` included).

    Given the bytes the record was ``stored`` as, hash those (minus the signed tail ``seal``
    added) rather than re-encoding the parsed record: a record written before its contract
    gained an optional field would re-encode with that field and never verify again.
    """
    if stored is not None:
        tail = _SIGNED_TAIL.search(stored)
        if tail is not None:
            return hashlib.sha256(stored[: tail.start()] + b"}").hexdigest()
    body = record.model_dump_json(exclude={"hash"}).encode()
    return hashlib.sha256(body).hexdigest()


def seal(unsigned: AuditRecord) -> tuple[AuditRecord, bytes]:
    """The record with its hash, and its wire bytes, from a single encoding.

    Why: encoding the audit record was a tenth of the per-tick cost, and it was done twice
    (once to hash, once to send). ``hash`` being the last field, the body ``record_hash``
    covers is the unsigned JSON minus its tail, and the signed JSON is that body plus the
    hash; ``tests/unit/operators/test_audit.py`` holds the two ways equal.
    """
    unsigned_json = unsigned.to_bytes()
    if not unsigned_json.endswith(_UNSIGNED_TAIL):
        raise ValueError("an unsigned audit record must end with an empty hash")
    body = unsigned_json[: -len(_UNSIGNED_TAIL)] + b"}"
    digest = hashlib.sha256(body).hexdigest()
    wire = b'%s,"hash":"%s"}' % (body[:-1], digest.encode())
    return unsigned.model_copy(update={"hash": digest}), wire


@dataclass
class _Chain:
    seq: int = -1
    head: str = GENESIS
    unaudited_fills: list[Fill] = field(default_factory=list)


class AuditChain(InstrumentStateMixin):
    """Append-only audit records; each one commits to the one before it for the instrument.

    Examples
    --------
    >>> chain = AuditChain()
    >>> chain.head("ES") == GENESIS
    True
    """

    def __init__(self) -> None:
        self._state: dict[str, _Chain] = {}

    def head(self, instrument: str) -> str:
        chain = self._state.get(instrument)
        return chain.head if chain else GENESIS

    def hold_fills(self, instrument: str, fills: Sequence[Fill]) -> None:
        """Keep fills that happened on a tick without a decision for the next record."""
        if fills:
            chain = self._state.get(instrument)
            if chain is None:
                chain = self._state[instrument] = _Chain()
            chain.unaudited_fills.extend(fills)

    def on_decision(
        self,
        features: FeatureVector,
        signal: Signal,
        checks: list[RiskCheckResult],
        decision: Decision,
        *,
        order: Order | None = None,
        fills: Sequence[Fill] = (),
        trading_state: TradingState = TradingState.ACTIVE,
        controls: Sequence[AppliedControl] = (),
    ) -> tuple[AuditRecord, bytes]:
        """Append the record for ``decision``, advance the instrument's chain, and return the
        record with its wire bytes (encoded once, see ``seal``).

        ``fills`` are those of earlier orders executed on this tick; fills held back from ticks
        without a decision come first, so every fill is in exactly one record.
        """
        chain = self._state.get(decision.instrument)
        if chain is None:
            chain = self._state[decision.instrument] = _Chain()
        seq, prev = chain.seq + 1, chain.head
        all_fills = [*chain.unaudited_fills, *fills]
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
            order=order,
            fills=all_fills,
            trading_state=trading_state,
            controls_applied=list(controls),
        )
        record, wire = seal(unsigned)
        chain.seq, chain.head, chain.unaudited_fills = seq, record.hash, []
        return record, wire


def check_link(
    record: AuditRecord, heads: dict[str, tuple[int, str]], stored: bytes | None = None
) -> list[str]:
    """Problems of one record against its instrument's chain so far; advances ``heads``.

    ``stored``: the bytes the record was read from, when the caller has them (see
    ``record_hash``)."""
    problems: list[str] = []
    last_seq, prev = heads.get(record.instrument, (-1, GENESIS))
    if record.seq != last_seq + 1:
        problems.append(f"{record.audit_id}: seq {record.seq} follows {last_seq}")
    if record.prev_hash != prev:
        problems.append(f"{record.audit_id}: prev_hash does not match the previous record")
    if record_hash(record, stored) != record.hash:
        problems.append(f"{record.audit_id}: hash does not match its content")
    heads[record.instrument] = (record.seq, record.hash)
    return problems


def verify_chain(records: Iterable[AuditRecord]) -> list[str]:
    """Return every problem found (tampered, missing or reordered records); empty means intact."""
    heads: dict[str, tuple[int, str]] = {}
    return [problem for record in records for problem in check_link(record, heads)]

"""The audit trail: hash-chained per instrument, covering every decided tick.

Each decision that does something is a record of its own: an order intent, approved or refused,
a change of trading state, a control or model stage change taking effect, a fill. A HOLD that
does none of these is, under ``[audit] holds = "summary"``, counted into a run that becomes one
``HoldSummary`` link of the same chain when an event-time period ends or a record interrupts
it, so the chain still accounts for every decided tick (``account_for_holds`` checks it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from tickwise.schemas.decisions import (
    Action,
    AppliedControl,
    AuditRecord,
    Decision,
    FeatureVector,
    Fill,
    HoldSummary,
    Order,
    RiskCheckResult,
    Signal,
    TradingState,
)
from tickwise.schemas.registry import REGISTRY_CHAIN, RegistryEntry
from tickwise.schemas.wire import hold_summary_body
from tickwise.streams.config import AuditConfig
from tickwise.streams.operators.state import InstrumentStateMixin

GENESIS = "0" * 64


# ``hash`` is the record's last field: its JSON ends with this while unsigned.
_UNSIGNED_TAIL = b',"hash":""}'


_SIGNED_TAIL = re.compile(rb',"hash":"[0-9a-f]{64}"\}\Z')


Entry = AuditRecord | HoldSummary
# Every hash-chained message: the audit trail's entries and the model registry's log.
Linked = AuditRecord | HoldSummary | RegistryEntry
E = TypeVar("E", AuditRecord, HoldSummary, RegistryEntry)


def chain_of(record: Linked) -> str:
    """The chain a record links into: its instrument's, or the registry's one."""
    return REGISTRY_CHAIN if isinstance(record, RegistryEntry) else record.instrument


def record_hash(record: Linked, stored: bytes | None = None) -> str:
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


def seal(unsigned: E) -> tuple[E, bytes]:
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
    return unsigned.replaced(hash=digest), wire


_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def reason_key(reasons: Sequence[str]) -> str:
    """A HOLD's reasons with their numbers left out: what a summary counts HOLDs by.

    Examples
    --------
    >>> reason_key(["edge +0.80 bps, |edge| < cost 3.20 bps: stay flat"])
    'edge # bps, |edge| < cost # bps: stay flat'
    >>> reason_key([])
    ''
    """
    return "; ".join(_NUMBER.sub("#", r) for r in reasons)


@dataclass
class _HoldRun:
    """The HOLDs not yet summarised: one model, one event-time period, one position."""

    model_id: str
    model_version: int
    period: int
    from_ts_ns: int
    first_tick_id: str
    position: float
    trading_state: TradingState
    to_ts_ns: int = 0
    last_tick_id: str = ""
    holds: int = 0
    decided_ticks: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class _Chain:
    seq: int = -1
    head: str = GENESIS
    unaudited_fills: list[Fill] = field(default_factory=list)
    # model stage changes applied on ticks without a decision, for the next record
    unaudited_controls: tuple[AppliedControl, ...] = ()
    decided_ticks: int = 0
    trading_state: TradingState = TradingState.ACTIVE  # at the last decision
    run: _HoldRun | None = None


class AuditChain(InstrumentStateMixin):
    """Append-only audit entries; each one commits to the one before it for the instrument.

    Examples
    --------
    >>> chain = AuditChain()
    >>> chain.head("ES") == GENESIS
    True
    """

    def __init__(self, config: AuditConfig | None = None) -> None:
        self.config = config or AuditConfig()
        self.period_ns = round(self.config.hold_summary_s * 1e9)
        self.period_s = float(self.config.hold_summary_s)
        self._state: dict[str, _Chain] = {}

    def _chain(self, instrument: str) -> _Chain:
        chain = self._state.get(instrument)
        if chain is None:
            chain = self._state[instrument] = _Chain()
        return chain

    def head(self, instrument: str) -> str:
        chain = self._state.get(instrument)
        return chain.head if chain else GENESIS

    def hold_fills(self, instrument: str, fills: Sequence[Fill]) -> None:
        """Keep fills that happened on a tick without a decision for the next record."""
        if fills:
            self._chain(instrument).unaudited_fills.extend(fills)

    def hold_controls(self, instrument: str, controls: Sequence[AppliedControl]) -> None:
        """Keep controls applied on a tick without a decision (a model stage change before the
        model signals) for the next record."""
        if controls:
            chain = self._chain(instrument)
            chain.unaudited_controls = (*chain.unaudited_controls, *controls)

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
    ) -> list[tuple[Entry, bytes]]:
        """The entries one decided tick appends, each with its wire bytes (see ``seal``).

        Under ``holds = "summary"`` a plain HOLD (no order, fill, control or trading state
        change to record) joins the instrument's run and appends nothing, unless it starts a
        new period: then the run so far is summarised first. Anything else closes the run, then
        appends the decision's record. ``fills`` are those of earlier orders executed on this
        tick; fills held back from ticks without a decision come first, so every fill is in
        exactly one record.
        """
        chain = self._chain(decision.instrument)
        plain_hold = (
            decision.action is Action.HOLD
            and order is None
            and not fills
            and not chain.unaudited_fills
            and not controls
            and not chain.unaudited_controls
            and trading_state is chain.trading_state
        )
        if plain_hold and self.config.holds == "summary":
            ts, tick_id = decision.ts_event_ns, decision.tick_id
            return self.count_stretches(
                decision.instrument, trading_state, (decision.model_id,),
                (decision.model_version,), (ts,), (tick_id,), (ts,), (tick_id,),
                (decision.position_before,), ({reason_key(decision.reasons): 1},),
            )  # fmt: skip
        chain.decided_ticks += 1
        chain.trading_state = trading_state
        out: list[tuple[Entry, bytes]] = []
        if chain.run is not None:
            out.append(self._close(decision.instrument, chain))
        seq, prev = chain.seq + 1, chain.head
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
            fills=[*chain.unaudited_fills, *fills],
            trading_state=trading_state,
            controls_applied=[*chain.unaudited_controls, *controls],
        )
        record, wire = seal(unsigned)
        chain.seq, chain.head, chain.unaudited_fills = seq, record.hash, []
        chain.unaudited_controls = ()
        out.append((record, wire))
        return out

    def count_stretches(
        self,
        instrument: str,
        trading_state: TradingState,
        model_ids: Sequence[str],
        model_versions: Sequence[int],
        first_ts: Sequence[int],
        first_tick_ids: Sequence[str],
        last_ts: Sequence[int],
        last_tick_ids: Sequence[str],
        positions: Sequence[float],
        reasons: Sequence[Mapping[str, int]],
    ) -> list[tuple[Entry, bytes]]:
        """Count stretches of plain HOLDs into the instrument's runs under ``holds =
        "summary"``, in order: stretch ``i`` holds the HOLDs from ``first_ts[i]`` (and
        ``first_tick_ids[i]``) to ``last_ts[i]`` (``last_tick_ids[i]``), of one event-time
        period, model version and position, ``reasons[i]`` their number by ``reason_key``, and
        no other decision of the instrument comes between them or between two stretches.
        What it appends: the summary of each run a stretch ended.

        Why stretches, many at once: the columnar engine knows which HOLDs are plain from its
        columns and counts a stretch of them without building a decision or visiting each;
        within one, nothing a run is cut by can change. Stretches one after the other (what a
        batch mostly is) each end the run before, so the runs between them are sealed here from
        the stretches' values, never kept as runs. The HOLDs must be plain against this chain
        too (nothing held back for the next record, the same trading state).
        """
        if not first_ts:
            return []
        chain = self._chain(instrument)
        period_ns = self.period_ns
        if (
            chain.unaudited_fills
            or chain.unaudited_controls
            or trading_state is not chain.trading_state
        ):
            raise ValueError(f"a HOLD of {instrument} at {first_ts[0]} has something to record")
        for from_ts, to_ts in zip(first_ts, last_ts, strict=True):
            if from_ts // period_ns != to_ts // period_ns:
                raise ValueError(f"HOLDs of {instrument} from {from_ts} to {to_ts} span periods")
        out: list[tuple[Entry, bytes]] = []
        decided = chain.decided_ticks
        run = chain.run
        is_open = run is not None
        owned = True  # the open run's reasons are its own dict (else a caller's mapping)
        if run is not None:
            r_model, r_version, r_period, r_position = (
                run.model_id, run.model_version, run.period, run.position
            )  # fmt: skip
            r_from, r_first, r_to, r_last = (
                run.from_ts_ns, run.first_tick_id, run.to_ts_ns, run.last_tick_id
            )  # fmt: skip
            r_holds, r_decided, r_reasons, r_state = (
                run.holds, run.decided_ticks, run.reasons, run.trading_state
            )  # fmt: skip
        for i, from_ts in enumerate(first_ts):
            period = from_ts // period_ns
            model_id, version, position = model_ids[i], model_versions[i], positions[i]
            if is_open and (
                r_period != period
                or r_model != model_id
                or r_version != version
                or r_position != position
            ):
                out.append(
                    self._seal(
                        instrument, chain, r_model, r_version, r_from, r_first, r_to, r_last,
                        r_holds, r_decided, r_reasons, r_position, r_state,
                    )
                )  # fmt: skip
                is_open, run = False, None
            counts = reasons[i]
            holds = sum(counts.values())
            decided += holds
            if is_open:
                if not owned:
                    r_reasons, owned = dict(r_reasons), True
                # a dict, not a Counter: its update is a Python call per run
                for key, n in counts.items():
                    r_reasons[key] = r_reasons.get(key, 0) + n
                r_holds += holds
            else:
                r_model, r_version, r_period, r_position = model_id, version, period, position
                r_from, r_first, r_holds, r_reasons, r_state = (
                    from_ts, first_tick_ids[i], holds, counts, trading_state
                )  # fmt: skip
                is_open, owned = True, False
            r_to, r_last, r_decided = last_ts[i], last_tick_ids[i], decided
        if not is_open:
            chain.run = None
        elif run is not None:  # the run this call found open goes on
            run.to_ts_ns, run.last_tick_id, run.holds, run.decided_ticks = (
                r_to, r_last, r_holds, decided
            )  # fmt: skip
            run.reasons = r_reasons if owned else dict(r_reasons)
        else:
            chain.run = _HoldRun(
                r_model, r_version, r_period, r_from, r_first, r_position, trading_state,
                r_to, r_last, r_holds, decided, r_reasons if owned else dict(r_reasons),
            )  # fmt: skip
        chain.decided_ticks = decided
        return out

    def close_runs(self) -> list[tuple[Entry, bytes]]:
        """Summarise every open run (at the end of a finite input: replay), by instrument."""
        return [
            self._close(instrument, chain)
            for instrument, chain in sorted(self._state.items())
            if chain.run is not None
        ]

    def _close(self, instrument: str, chain: _Chain) -> tuple[Entry, bytes]:
        """The open run's summary, sealed."""
        run = chain.run
        assert run is not None
        chain.run = None
        return self._seal(
            instrument, chain, run.model_id, run.model_version, run.from_ts_ns,
            run.first_tick_id, run.to_ts_ns, run.last_tick_id, run.holds, run.decided_ticks,
            run.reasons, run.position, run.trading_state,
        )  # fmt: skip

    def _seal(
        self,
        instrument: str,
        chain: _Chain,
        model_id: str,
        model_version: int,
        from_ts: int,
        first_tick_id: str,
        to_ts: int,
        last_tick_id: str,
        holds: int,
        decided_ticks: int,
        reasons: Mapping[str, int],
        position: float,
        trading_state: TradingState,
    ) -> tuple[Entry, bytes]:
        """A run's summary as the chain's next link, sealed: its bytes written from the run's
        values (``schemas.wire.hold_summary_body``, what ``seal`` of the validated model
        gives), the model made of the same dict of values, not validated again."""
        seq = chain.seq + 1
        fields = {
            "schema_version": 1, "kind": "hold_summary", "audit_id": f"aud-{instrument}-{seq}",
            "seq": seq, "instrument": instrument, "ts_event_ns": to_ts, "model_id": model_id,
            "model_version": model_version, "period_s": self.period_s,
            "from_ts_event_ns": from_ts, "to_ts_event_ns": to_ts,
            "first_tick_id": first_tick_id, "last_tick_id": last_tick_id, "holds": holds,
            "decided_ticks": decided_ticks,
            "reasons": dict(sorted(reasons.items())) if len(reasons) > 1 else dict(reasons),
            "position": float(position), "trading_state": trading_state,
            "prev_hash": chain.head,
        }  # fmt: skip
        body = hold_summary_body(fields)
        digest = fields["hash"] = hashlib.sha256(body).hexdigest()
        summary = HoldSummary.trusted(fields)
        chain.seq, chain.head = seq, digest
        return summary, b'%s,"hash":"%s"}' % (body[:-1], digest.encode())


def check_link(
    record: Linked, heads: dict[str, tuple[int, str]], stored: bytes | None = None
) -> list[str]:
    """Problems of one record against its chain so far (``chain_of``); advances ``heads``.

    ``stored``: the bytes the record was read from, when the caller has them (see
    ``record_hash``)."""
    problems: list[str] = []
    key = chain_of(record)
    last_seq, prev = heads.get(key, (-1, GENESIS))
    if record.seq != last_seq + 1:
        problems.append(f"{record.audit_id}: seq {record.seq} follows {last_seq}")
    if record.prev_hash != prev:
        problems.append(f"{record.audit_id}: prev_hash does not match the previous record")
    if record_hash(record, stored) != record.hash:
        problems.append(f"{record.audit_id}: hash does not match its content")
    heads[key] = (record.seq, record.hash)
    return problems


def verify_chain(records: Iterable[Entry]) -> list[str]:
    """Return every problem found (tampered, missing or reordered records, holds unaccounted
    for); empty means intact."""
    heads: dict[str, tuple[int, str]] = {}
    tally = HoldTally()
    problems = []
    for record in records:
        problems += check_link(record, heads)
        problems += tally.add(record)
    return problems


@dataclass
class HoldTally:
    """Checks that the chain accounts for every decided tick, one entry at a time.

    A summary's ``decided_ticks`` must exceed the previous summary's (0 at the chain's start)
    by the decision records between them plus its own ``holds``; so a decided tick left out of
    a chain whose links are intact (a producer that dropped holds) shows, and so does a summary
    that overstates.
    """

    last: dict[str, tuple[int, int]] = field(default_factory=dict)  # decided_ticks, records

    def add(self, entry: Entry) -> list[str]:
        """Problems of ``entry`` against the tally so far; advances it."""
        decided, records = self.last.get(entry.instrument, (0, 0))
        if isinstance(entry, AuditRecord):
            self.last[entry.instrument] = (decided, records + 1)
            return []
        self.last[entry.instrument] = (entry.decided_ticks, 0)
        expected = decided + records + entry.holds
        if entry.decided_ticks != expected:
            return [
                f"{entry.audit_id}: {entry.decided_ticks} decided ticks, but the chain accounts "
                f"for {expected} ({decided} + {records} records + {entry.holds} holds)"
            ]
        return []

"""Validation: every raw message becomes exactly one clean tick or one quarantine record."""

from __future__ import annotations

import base64
from collections import OrderedDict
from dataclasses import dataclass, field

from pydantic import ValidationError

from schemas.quarantine import QuarantineRecord, ReasonCode
from schemas.ticks import TICK_ADAPTER, CleanTick, QuoteTick, SourceRef, TradeTick
from streams.config import ValidationConfig
from streams.operators.state import InstrumentStateMixin

PRICE_FIELDS = frozenset({"price", "bid", "ask"})
SIZE_FIELDS = frozenset({"size", "bid_size", "ask_size"})


def quarantine(
    raw: bytes,
    source: SourceRef,
    reason: ReasonCode,
    detail: str,
    instrument: str | None = None,
    tick_id: str | None = None,
) -> QuarantineRecord:
    """Build a quarantine record that keeps ``raw`` byte for byte (base64 when not UTF-8)."""
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return QuarantineRecord(
        reason=reason,
        detail=detail[:1000],
        raw=text,
        raw_encoding=encoding,
        source=source,
        instrument=instrument,
        tick_id=tick_id,
    )


def _schema_reason(exc: ValidationError) -> tuple[ReasonCode, str]:
    """Map pydantic's first error to our stable reason code and a readable detail."""
    first = exc.errors(include_url=False, include_input=False)[0]
    kind, loc = first["type"], first["loc"]
    where = ".".join(str(p) for p in loc) or "message"
    if kind == "json_invalid":
        return ReasonCode.MALFORMED_JSON, f"not valid JSON: {first['msg']}"
    if loc and loc[-1] in PRICE_FIELDS and kind in {"finite_number", "float_parsing", "float_type"}:
        return ReasonCode.INVALID_PRICE, f"{where}: {first['msg']}"
    if loc and loc[-1] in SIZE_FIELDS and kind in {"finite_number", "float_parsing", "float_type"}:
        return ReasonCode.INVALID_SIZE, f"{where}: {first['msg']}"
    return ReasonCode.SCHEMA_VIOLATION, f"{where}: {first['msg']} ({kind})"


@dataclass
class _InstrumentState:
    last_ts_ns: int = -1
    recent_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)


class Validator(InstrumentStateMixin):
    """Schema plus basic market-sanity rules, with per-instrument order and duplicate state.

    State is keyed by instrument, the partition key, so live (one worker per partition) and
    replay (one process) see the same per-instrument sequence and reach the same verdicts.

    Examples
    --------
    >>> from schemas.ticks import SourceRef
    >>> v = Validator(ValidationConfig())
    >>> src = SourceRef(topic="ticks.raw", partition=0, offset=0)
    >>> v.on_raw(b'{"kind":"trade","tick_id":"a","instrument":"ES",'
    ...          b'"ts_event_ns":1,"price":-1.0,"size":1.0}', src).reason
    <ReasonCode.INVALID_PRICE: 'INVALID_PRICE'>
    """

    def __init__(self, config: ValidationConfig) -> None:
        self.config = config
        self._allowed = frozenset(config.instruments) if config.instruments is not None else None
        self._tolerance_ns = int(config.out_of_order_tolerance_ms * 1_000_000)
        self._state: dict[str, _InstrumentState] = {}

    def on_raw(self, raw: bytes, source: SourceRef) -> CleanTick | QuarantineRecord:
        """Decode and check one raw message; never raises for bad input."""
        if len(raw) > self.config.max_message_bytes:
            return quarantine(
                raw,
                source,
                ReasonCode.OVERSIZED,
                f"{len(raw)} bytes exceeds the limit of {self.config.max_message_bytes}",
            )
        try:
            tick = TICK_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            reason, detail = _schema_reason(exc)
            return quarantine(raw, source, reason, detail)
        rejected = self._check(tick)
        if rejected is not None:
            reason, detail = rejected
            return quarantine(raw, source, reason, detail, tick.instrument, tick.tick_id)
        self._remember(tick)
        return CleanTick(tick=tick, source=source)

    def _check(self, tick: TradeTick | QuoteTick) -> tuple[ReasonCode, str] | None:
        if self._allowed is not None and tick.instrument not in self._allowed:
            return ReasonCode.UNKNOWN_INSTRUMENT, f"{tick.instrument!r} not configured"
        if isinstance(tick, TradeTick):
            if not tick.price > 0.0:
                return ReasonCode.INVALID_PRICE, f"price {tick.price} is not positive"
            if not tick.size > 0.0:
                return ReasonCode.INVALID_SIZE, f"size {tick.size} is not positive"
        else:
            if not (tick.bid > 0.0 and tick.ask > 0.0):
                return ReasonCode.INVALID_PRICE, f"bid {tick.bid} / ask {tick.ask} not positive"
            if not (tick.bid_size >= 0.0 and tick.ask_size >= 0.0):
                return ReasonCode.INVALID_SIZE, "negative quote size"
            if tick.ask < tick.bid:
                return ReasonCode.CROSSED_QUOTE, f"ask {tick.ask} < bid {tick.bid}"
        state = self._state.get(tick.instrument)
        if state is None:
            return None
        if tick.tick_id in state.recent_ids:
            return ReasonCode.DUPLICATE, f"tick_id {tick.tick_id!r} already seen"
        if tick.ts_event_ns < state.last_ts_ns - self._tolerance_ns:
            behind_ms = (state.last_ts_ns - tick.ts_event_ns) / 1e6
            return ReasonCode.OUT_OF_ORDER, f"{behind_ms:.3f} ms behind the instrument's last tick"
        return None

    def _remember(self, tick: TradeTick | QuoteTick) -> None:
        state = self._state.setdefault(tick.instrument, _InstrumentState())
        state.last_ts_ns = max(state.last_ts_ns, tick.ts_event_ns)
        state.recent_ids[tick.tick_id] = None
        if len(state.recent_ids) > self.config.dedup_window:
            state.recent_ids.popitem(last=False)

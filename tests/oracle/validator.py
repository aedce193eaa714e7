"""The per-message validator: applies the rules in order, remembers per-instrument state, may
reorder; the reference of the engine's validation kernel (``streams.engine.validate``)."""

from __future__ import annotations

import heapq
from collections import deque

from pydantic import ValidationError

from tests.oracle.rules import (
    InstrumentState,
    check_duplicate,
    check_outlier,
    check_time,
    check_values,
    is_time_jump,
    log_move,
)
from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import TICK_ADAPTER, CleanTick, QuoteTick, SourceRef, TradeTick
from tickwise.streams.config import ValidationConfig
from tickwise.streams.operators.state import InstrumentStateMixin
from tickwise.streams.operators.validation.records import quarantine, schema_reason

Output = CleanTick | QuarantineRecord
# Rejections that leave candidates in the state (a move or a time jump being confirmed).
RESTORED_REJECTIONS = frozenset(
    {ReasonCode.PRICE_OUTLIER, ReasonCode.FUTURE_TIMESTAMP, ReasonCode.STALE_TIMESTAMP}
)


class Validator(InstrumentStateMixin):
    """Schema, market-sanity and history rules, with per-instrument state.

    ``on_raw`` returns a list: one verdict per message, except that with
    ``out_of_order_policy = "reorder"`` a tick is held until the instrument's event time has
    moved ``reorder_window_ms`` past it, so a call may return none, one or several outputs.
    Live and replay call it the same way and send whatever it returns; ``flush`` releases what
    is still held at the end of a finite input.

    State is keyed by instrument, the partition key, so live (one worker per partition) and
    replay (one process) see the same per-instrument sequence and reach the same verdicts.

    Examples
    --------
    >>> from tickwise.schemas.ticks import SourceRef
    >>> v = Validator(ValidationConfig())
    >>> src = SourceRef(topic="ticks.raw", partition=0, offset=0)
    >>> [out.reason for out in v.on_raw(b'{"kind":"trade","tick_id":"a","instrument":"ES",'
    ...                                 b'"ts_event_ns":1,"price":-1.0,"size":1.0}', src)]
    [<ReasonCode.INVALID_PRICE: 'INVALID_PRICE'>]
    >>> v.on_raw(b"not json", src)[0].reason
    <ReasonCode.MALFORMED_JSON: 'MALFORMED_JSON'>
    """

    def __init__(self, config: ValidationConfig) -> None:
        self.config = config
        self._allowed = frozenset(config.instruments) if config.instruments is not None else None
        self._rules: dict[str, ValidationConfig] = {}
        self._state: dict[str, InstrumentState] = {}

    def instruments(self) -> list[str]:
        """Instruments the validator holds state for (what a checkpoint must carry)."""
        return sorted(self._state)

    def rules(self, instrument: str) -> ValidationConfig:
        """The (cached) rules of one instrument, overrides applied."""
        rules = self._rules.get(instrument)
        if rules is None:
            rules = self._rules[instrument] = self.config.rules_for(instrument)
        return rules

    def on_raw(self, raw: bytes, source: SourceRef, reinjected: bool = False) -> list[Output]:
        """Decode and check one raw message; never raises for bad input.

        ``reinjected`` marks a message put back from quarantine by an operator: it passes the
        stateless rules and the duplicate check again, but not the rules that compare it with
        the instrument's recent history (order, staleness, outliers), which has moved on.
        """
        if len(raw) > self.config.max_message_bytes:
            detail = f"{len(raw)} bytes exceeds the limit of {self.config.max_message_bytes}"
            return [quarantine(raw, source, ReasonCode.OVERSIZED, detail)]
        try:
            tick = TICK_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            return [quarantine(raw, source, *schema_reason(exc))]

        def reject(reason: ReasonCode, detail: str) -> list[Output]:
            return [quarantine(raw, source, reason, detail, tick.instrument, tick.tick_id)]

        if self._allowed is not None and tick.instrument not in self._allowed:
            return reject(ReasonCode.UNKNOWN_INSTRUMENT, f"{tick.instrument!r} not configured")
        rules = self.rules(tick.instrument)
        verdict = check_values(tick, rules)
        if verdict is not None:
            return reject(*verdict)
        state = self._state_of(tick.instrument, rules)
        verdict = check_duplicate(tick, state)
        if verdict is not None:
            return reject(*verdict)
        if reinjected:
            self._remember_id(state, tick, rules)
            return [CleanTick(tick=tick, source=source)]
        verdict = check_time(tick, state, rules)
        if verdict is not None:
            if is_time_jump(tick, state, rules):
                self._pend_time(state, tick.ts_event_ns, rules)
            return reject(*verdict)
        out: list[Output] = []
        if is_time_jump(tick, state, rules):  # a confirmed jump: re-anchor event time
            out += self._release(state, rules, force=True)
            state.watermark_ns, state.released_ns = tick.ts_event_ns, -1
        else:
            state.watermark_ns = max(state.watermark_ns, tick.ts_event_ns)
        state.pending_times.clear()
        if rules.out_of_order_policy == "quarantine":
            return out + self._judge_price(state, rules, tick, raw, source, remember=True)
        return out + self._buffer(state, rules, tick, raw, source)

    def _state_of(self, instrument: str, rules: ValidationConfig) -> InstrumentState:
        state = self._state.get(instrument)
        if state is None:
            state = self._state[instrument] = InstrumentState(
                moves=deque(maxlen=rules.outlier_window)
            )
        return state

    def flush(self) -> list[Output]:
        """Release every tick the reorder buffers still hold (end of a finite input)."""
        out: list[Output] = []
        for instrument in sorted(self._state):
            out += self._release(self._state[instrument], self.rules(instrument), force=True)
        return out

    # --- state updates ----------------------------------------------------------------------

    def _remember_id(
        self, state: InstrumentState, tick: TradeTick | QuoteTick, rules: ValidationConfig
    ) -> None:
        state.recent_ids[tick.tick_id] = None
        if len(state.recent_ids) > rules.dedup_window:
            state.recent_ids.popitem(last=False)
        if tick.seq is not None:
            state.recent_seqs[tick.seq] = None
            if len(state.recent_seqs) > rules.dedup_window:
                state.recent_seqs.popitem(last=False)

    def _forget_id(self, state: InstrumentState, tick: TradeTick | QuoteTick) -> None:
        state.recent_ids.pop(tick.tick_id, None)
        if tick.seq is not None:
            state.recent_seqs.pop(tick.seq, None)

    def _pend_time(self, state: InstrumentState, ts: int, rules: ValidationConfig) -> None:
        pending = state.pending_times
        tol = int(rules.out_of_order_tolerance_ms * 1e6)
        if not (pending and pending[-1] - tol <= ts <= pending[-1] + int(rules.max_future_s * 1e9)):
            pending.clear()
        pending.append(ts)

    def _judge_price(
        self,
        state: InstrumentState,
        rules: ValidationConfig,
        tick: TradeTick | QuoteTick,
        raw: bytes,
        source: SourceRef,
        remember: bool,
        force: bool = False,
    ) -> list[Output]:
        """The outlier rule, then accept: the last step before a tick goes downstream."""
        price = tick.reference_price
        verdict, move, agreeing = check_outlier(price, state, rules)
        if force and state.last_price is not None:
            verdict, move = None, log_move(state.last_price, price)
        if verdict is not None:
            if not agreeing:
                state.pending_prices.clear()
            state.pending_prices.append(price)
            if not remember:
                self._forget_id(state, tick)
            return [quarantine(raw, source, *verdict, tick.instrument, tick.tick_id)]
        if state.last_price is not None:
            state.moves.append(move)
        state.last_price = price
        state.pending_prices.clear()
        if remember:
            self._remember_id(state, tick, rules)
        return [CleanTick(tick=tick, source=source)]

    def _buffer(
        self,
        state: InstrumentState,
        rules: ValidationConfig,
        tick: TradeTick | QuoteTick,
        raw: bytes,
        source: SourceRef,
    ) -> list[Output]:
        tol = int(rules.out_of_order_tolerance_ms * 1e6)
        if state.released_ns >= 0 and tick.ts_event_ns < state.released_ns - tol:
            behind_ms = (state.released_ns - tick.ts_event_ns) / 1e6
            return [
                quarantine(
                    raw,
                    source,
                    ReasonCode.OUT_OF_ORDER,
                    f"{behind_ms:.3f} ms behind a tick already released; later than the "
                    f"reorder window of {rules.reorder_window_ms} ms",
                    tick.instrument,
                    tick.tick_id,
                )
            ]
        self._remember_id(state, tick, rules)
        state.arrivals += 1
        heapq.heappush(state.buffer, (tick.ts_event_ns, state.arrivals, raw, source, tick))
        return self._release(state, rules, force=False)

    def _release(
        self, state: InstrumentState, rules: ValidationConfig, force: bool
    ) -> list[Output]:
        """Pop held ticks in event-time order once the window has passed them (or all)."""
        out: list[Output] = []
        horizon = state.watermark_ns - int(rules.reorder_window_ms * 1e6)
        buf = state.buffer
        while buf and (force or buf[0][0] <= horizon or len(buf) > rules.reorder_max_ticks):
            ts, _, raw, source, tick = heapq.heappop(buf)
            state.released_ns = max(state.released_ns, ts)
            out += self._judge_price(state, rules, tick, raw, source, remember=False)
        return out

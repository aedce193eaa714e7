"""The validation rules one tick at a time, as pure functions: a tick (and the instrument's
state) in, a verdict out; the reference of the engine's validation kernel.

Each rule returns ``None`` (pass) or a ``(ReasonCode, detail)`` pair: the code is stable so
people and dashboards can count on it, the detail says what was wrong in words. Rules that need
history read an ``InstrumentState`` but never change it; the validator decides what to remember.
"""

from __future__ import annotations

import math
import statistics
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from tickwise.schemas.quarantine import ReasonCode
from tickwise.schemas.ticks import QuoteTick, SourceRef, TradeTick
from tickwise.streams.config import ValidationConfig
from tickwise.streams.operators.units import BPS_PER_UNIT, UNIT_PER_BPS
from tickwise.streams.operators.validation.rules import MAD_TO_STD

Verdict = tuple[ReasonCode, str] | None


@dataclass
class InstrumentState:
    """Everything the validator remembers about one instrument (picklable, movable)."""

    watermark_ns: int = -1  # highest event time accepted so far
    released_ns: int = -1  # reorder mode: event time of the last tick released downstream
    recent_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)
    recent_seqs: OrderedDict[int, None] = field(default_factory=OrderedDict)
    last_price: float | None = None
    moves: deque[float] = field(default_factory=deque)
    pending_prices: list[float] = field(default_factory=list)
    pending_times: list[int] = field(default_factory=list)
    arrivals: int = 0
    # reorder mode: (ts_event_ns, arrival number, raw bytes, source, tick), a heap
    buffer: list[tuple[int, int, bytes, SourceRef, TradeTick | QuoteTick]] = field(
        default_factory=list
    )


def check_values(tick: TradeTick | QuoteTick, rules: ValidationConfig) -> Verdict:
    """Prices and sizes must be positive; quotes must not be crossed (nor locked, if so set).

    A quote may come without sizes (FX and indicative quotes), but not with one side's only:
    half a book is a feed error, not a form of quote.

    Examples
    --------
    >>> from tickwise.schemas.ticks import QuoteTick
    >>> q = QuoteTick(tick_id="q", instrument="ES", ts_event_ns=1, bid=10.0, ask=9.5,
    ...               bid_size=1.0, ask_size=1.0)
    >>> check_values(q, ValidationConfig())
    (<ReasonCode.CROSSED_QUOTE: 'CROSSED_QUOTE'>, 'ask 9.5 < bid 10.0')
    >>> check_values(q.model_copy(update={"ask": 10.5}), ValidationConfig()) is None
    True
    >>> fx = QuoteTick(tick_id="f", instrument="EURUSD", ts_event_ns=1, bid=1.1, ask=1.1002)
    >>> check_values(fx, ValidationConfig()) is None
    True
    >>> check_values(fx.model_copy(update={"bid_size": 5.0}), ValidationConfig())[0]
    <ReasonCode.INVALID_SIZE: 'INVALID_SIZE'>
    """
    if isinstance(tick, TradeTick):
        if not tick.price > 0.0:
            return ReasonCode.INVALID_PRICE, f"price {tick.price} is not positive"
        if not tick.size > 0.0:
            return ReasonCode.INVALID_SIZE, f"size {tick.size} is not positive"
        return None
    if not (tick.bid > 0.0 and tick.ask > 0.0):
        return ReasonCode.INVALID_PRICE, f"bid {tick.bid} / ask {tick.ask} not positive"
    bid_size, ask_size = tick.bid_size, tick.ask_size
    if bid_size is not None or ask_size is not None:  # sizes are optional, but come in pairs
        if bid_size is None or ask_size is None:
            return ReasonCode.INVALID_SIZE, f"quote sizes {bid_size} / {ask_size}: one side only"
        if not (bid_size >= 0.0 and ask_size >= 0.0):
            return ReasonCode.INVALID_SIZE, f"quote sizes {bid_size} / {ask_size} negative"
    if tick.ask < tick.bid:
        return ReasonCode.CROSSED_QUOTE, f"ask {tick.ask} < bid {tick.bid}"
    if rules.reject_locked_quotes and tick.ask == tick.bid:
        return ReasonCode.LOCKED_QUOTE, f"bid = ask = {tick.bid} (locked market)"
    return None


def check_duplicate(tick: TradeTick | QuoteTick, state: InstrumentState) -> Verdict:
    """The same ``tick_id`` (or ``seq``, when the feed sends one) seen recently is a duplicate."""
    if tick.tick_id in state.recent_ids:
        return ReasonCode.DUPLICATE, f"tick_id {tick.tick_id!r} already seen"
    if tick.seq is not None and tick.seq in state.recent_seqs:
        return ReasonCode.DUPLICATE, f"sequence number {tick.seq} already seen"
    return None


def _confirmed(pending: list[int], ts: int, rules: ValidationConfig) -> bool:
    """True when ``ts`` is the ``time_confirm_ticks``-th consecutive tick at a new time."""
    tol = int(rules.out_of_order_tolerance_ms * 1e6)
    if pending and pending[-1] - tol <= ts <= pending[-1] + int(rules.max_future_s * 1e9):
        return len(pending) + 1 >= rules.time_confirm_ticks
    return rules.time_confirm_ticks <= 1


def check_time(
    tick: TradeTick | QuoteTick, state: InstrumentState, rules: ValidationConfig
) -> Verdict:
    """Event time must stay near the instrument's watermark (never compared to a wall clock).

    Far ahead is ``FUTURE_TIMESTAMP``, far behind ``STALE_TIMESTAMP``; both are accepted once
    ``time_confirm_ticks`` consecutive ticks agree on the new time (a feed re-anchored, a
    session gap longer than the limit), so one bad first tick cannot poison an instrument.
    Behind by more than the tolerance but less than ``max_past_s`` is ``OUT_OF_ORDER`` (only in
    quarantine mode; the reorder buffer applies its own bound).
    """
    wm = state.watermark_ns
    if wm < 0:
        return None
    ts = tick.ts_event_ns
    ahead_s, behind_s = (ts - wm) / 1e9, (wm - ts) / 1e9
    if ahead_s > rules.max_future_s and not _confirmed(state.pending_times, ts, rules):
        return (
            ReasonCode.FUTURE_TIMESTAMP,
            f"{ahead_s:.3f} s ahead of the instrument's event time (limit {rules.max_future_s} s)",
        )
    if behind_s > rules.max_past_s and not _confirmed(state.pending_times, ts, rules):
        return (
            ReasonCode.STALE_TIMESTAMP,
            f"{behind_s:.3f} s behind the instrument's event time (limit {rules.max_past_s} s)",
        )
    if (
        rules.out_of_order_policy == "quarantine"
        and behind_s <= rules.max_past_s
        and behind_s * 1e3 > rules.out_of_order_tolerance_ms
    ):
        return (
            ReasonCode.OUT_OF_ORDER,
            f"{behind_s * 1e3:.3f} ms behind the instrument's last tick "
            f"(tolerance {rules.out_of_order_tolerance_ms} ms)",
        )
    return None


def is_time_jump(
    tick: TradeTick | QuoteTick, state: InstrumentState, rules: ValidationConfig
) -> bool:
    """Whether ``tick`` is far from the watermark (a candidate the time rule is confirming)."""
    if state.watermark_ns < 0:
        return False
    delta_s = (tick.ts_event_ns - state.watermark_ns) / 1e9
    return delta_s > rules.max_future_s or -delta_s > rules.max_past_s


def log_move(before: float, after: float) -> float:
    """Log return from ``before`` to ``after``; a difference of logs, so subnormal prices
    cannot underflow the ratio to zero."""
    return math.log(after) - math.log(before)


def jump_limit(state: InstrumentState, rules: ValidationConfig) -> float:
    """Largest accepted log move: k robust std devs of recent moves, never below the floor.

    The robust std dev is 1.4826 times the median absolute deviation of the recent log moves,
    so the outliers being judged cannot inflate it the way they would a plain std dev.
    """
    floor = rules.outlier_min_jump_bps * UNIT_PER_BPS
    if len(state.moves) < 2:
        return floor
    centre = statistics.median(state.moves)
    mad = statistics.median(abs(m - centre) for m in state.moves)
    return max(rules.outlier_k * MAD_TO_STD * mad, floor)


def check_outlier(
    price: float, state: InstrumentState, rules: ValidationConfig
) -> tuple[Verdict, float, bool]:
    """A price jump beyond ``jump_limit`` from the last accepted price, unless confirmed.

    Returns the verdict, the log move and whether the price agrees with the pending candidates.
    A candidate is confirmed (accepted) when it is the ``outlier_confirm_ticks``-th consecutive
    outlier within the limit of the first candidate: the market has moved, not a fat finger.
    """
    if rules.outlier_k <= 0.0 or state.last_price is None:
        return None, 0.0, False
    move = log_move(state.last_price, price)
    if abs(move) <= rules.outlier_min_jump_bps * UNIT_PER_BPS:
        return None, move, False  # cheap path: nothing below the floor is ever an outlier
    limit = jump_limit(state, rules)
    if abs(move) <= limit:
        return None, move, False
    pending = state.pending_prices
    agreeing = bool(pending) and abs(log_move(pending[0], price)) <= limit
    count = len(pending) + 1 if agreeing else 1
    if count >= rules.outlier_confirm_ticks:
        return None, move, agreeing
    return (
        (
            ReasonCode.PRICE_OUTLIER,
            f"jump of {move * BPS_PER_UNIT:+.1f} bps from {state.last_price} to {price} exceeds "
            f"{limit * BPS_PER_UNIT:.1f} bps (k={rules.outlier_k} robust std devs); "
            f"unconfirmed {count}/{rules.outlier_confirm_ticks}",
        ),
        move,
        agreeing,
    )

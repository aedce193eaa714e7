"""Pre-trade risk: every signal becomes a decision, approved or rejected with reason codes.

Limits apply per instrument (``RiskConfig`` with ``risk.instruments`` overrides). There are no
limits summed across instruments on the decision path on purpose: instruments are spread over
partitions and workers, so a cross-instrument sum would depend on how their ticks interleave,
and live would stop deciding like replay. Portfolio-wide protection instead goes through the kill
switch (by hand or from a monitor policy), whose event time per instrument is audited.

Trading states: ACTIVE; REDUCING (only orders that bring the position towards zero), reached by
the drawdown or daily-loss stop; HALTED, by the kill switch (or a stop with ``loss_action =
"HALTED"``). A rejection is data: each check yields a ``RiskCheckResult`` with its reason code.

This module holds what the engine's risk kernel (``streams.engine.risk``) shares with the
per-tick reference the tests hold it to: the reason codes, the check results and the decision a
verdict records.

Before the limits, the decision rule (``streams.operators.decision``) says where the signal wants
the position: under the default ``edge`` rule only where the expected edge beats the round trip's
cost, and the decision carries its reason.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from tickwise.schemas.decisions import Action, Decision, RiskCheckResult, Signal


class Reason(StrEnum):
    """Stable rejection reason codes (values never change meaning; new ones are appended)."""

    INSTRUMENT_NOT_ALLOWED = "INSTRUMENT_NOT_ALLOWED"
    MODEL_SHADOW = "MODEL_SHADOW"
    KILL_SWITCH = "KILL_SWITCH"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    DAILY_LOSS = "DAILY_LOSS"
    MAX_ORDER_SIZE = "MAX_ORDER_SIZE"
    MAX_POSITION = "MAX_POSITION"
    MAX_NOTIONAL = "MAX_NOTIONAL"
    PRICE_COLLAR = "PRICE_COLLAR"
    ORDER_RATE = "ORDER_RATE"


@lru_cache(maxsize=4096)
def _shared_check(name: str, ok: bool, reason: str | None, detail: str) -> RiskCheckResult:
    return RiskCheckResult(check=name, passed=ok, reason=reason, detail=detail)


def decision_of(
    signal: Signal,
    delta: float,
    approved: bool,
    price: float,
    held: float,
    checks: list[RiskCheckResult],
    reasons: list[str],
) -> Decision:
    """The decision a risk verdict records, built one way for the per-tick engine and the
    columnar one: ``delta`` is the order risk sized (0: a HOLD), ``held`` the position filled
    plus in flight before it."""
    action = Action.BUY if delta > 0 else Action.SELL if delta < 0 else Action.HOLD
    return Decision(
        decision_id=f"dec-{signal.tick_id}-{signal.model_id}-v{signal.model_version}",
        signal_id=signal.signal_id,
        instrument=signal.instrument,
        tick_id=signal.tick_id,
        ts_event_ns=signal.ts_event_ns,
        model_id=signal.model_id,
        model_version=signal.model_version,
        score=signal.score,
        side=signal.side,
        action=action,
        quantity=abs(delta),
        price=price,
        approved=approved,
        reject_reasons=[c.reason for c in checks if c.reason is not None],
        position_before=held,
        position_after=held + delta if approved else held,
        reasons=reasons,
    )

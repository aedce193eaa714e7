"""What the pipeline concludes from a clean tick: features, signals, decisions and their audit."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, TypeAdapter, model_validator

from tickwise.schemas.base import Contract
from tickwise.schemas.ticks import Instrument, TickId, TimestampNs


class FeatureVector(Contract):
    """Causal features of one instrument at one tick, computed from data at or before it."""

    schema_version: Literal[1] = 1
    instrument: Instrument
    tick_id: TickId
    ts_event_ns: TimestampNs
    price: float
    values: dict[str, float]


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    FLAT = "FLAT"


class Stage(StrEnum):
    """Where a model version is in its rollout, in rollout order."""

    SHADOW = "shadow"
    CANARY = "canary"
    PRODUCTION = "production"
    RETIRED = "retired"


class Contribution(Contract):
    """How much one feature pushed the score, in the model's own units (log-odds for logistic)."""

    feature: str
    value: float
    weight: float
    contribution: float
    detail: str = Field(default="", description="Readable reason, e.g. a tree split on the path.")


class Signal(Contract):
    """A model's view of one tick, with the reasons a trader can read."""

    schema_version: Literal[1] = 1
    signal_id: str
    instrument: Instrument
    tick_id: TickId
    ts_event_ns: TimestampNs
    model_id: str
    model_version: int = Field(ge=1)
    score: float = Field(description="Probability that the forward return over the horizon is up.")
    side: Side
    confidence: float = Field(ge=0.0, le=1.0)
    n_trained: int = Field(ge=0, description="Labels the model had learned when it scored.")
    explanation: list[Contribution]
    task: Literal["classification", "regression"] = Field(
        default="classification",
        description="classification: score is P(up); regression: score is the forecast in bps.",
    )
    stage: Literal[Stage.PRODUCTION, Stage.CANARY, Stage.SHADOW] = Field(
        default=Stage.PRODUCTION, description="Shadow signals are published but never reach risk."
    )
    capital_fraction: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Share of the target size risk may use (canary)."
    )


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


class RiskCheckResult(Contract):
    """One pre-trade check and its verdict; a rejection is data, not an exception."""

    check: str
    passed: bool
    reason: str | None = None
    detail: str = ""


class Decision(Contract):
    """What tickwise decided to do on one signal, after risk. Identical in live and replay."""

    schema_version: Literal[1] = 1
    decision_id: str
    signal_id: str
    instrument: Instrument
    tick_id: TickId
    ts_event_ns: TimestampNs
    model_id: str
    model_version: int = Field(ge=1)
    score: float
    side: Side
    action: Action
    quantity: float = Field(ge=0.0)
    price: float
    approved: bool
    reject_reasons: list[str]
    position_before: float
    position_after: float
    reasons: list[str] = Field(
        default_factory=list,
        description="Why the decision rule wanted this action, readable, e.g. "
        "'edge +0.80 bps, |edge| < cost 3.20 bps: stay flat'; empty under the threshold rule.",
    )


class TradingState(StrEnum):
    """What an instrument may do: trade, only reduce exposure, or nothing."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class Order(Contract):
    """An approved decision's order to the (paper) broker; it fills at a later tick."""

    schema_version: Literal[1] = 1
    order_id: str
    decision_id: str
    instrument: Instrument
    ts_event_ns: TimestampNs = Field(description="Event time the decision was taken.")
    due_ts_event_ns: TimestampNs = Field(description="Earliest event time it may fill.")
    side: Action
    quantity: float = Field(gt=0.0)
    model_id: str
    model_version: int = Field(ge=1)


class Fill(Contract):
    """An order executed by the paper broker at a later tick, with the account after it."""

    schema_version: Literal[1] = 1
    fill_id: str
    order_id: str
    decision_id: str
    instrument: Instrument
    tick_id: TickId = Field(description="The tick the order filled on.")
    ts_event_ns: TimestampNs = Field(description="Event time of the fill (the tick's).")
    order_ts_event_ns: TimestampNs
    side: Action
    quantity: float = Field(gt=0.0)
    price: float = Field(description="Execution price: spread crossed, slippage included.")
    reference_price: float = Field(description="Mid (quotes) or last trade at the fill tick.")
    fee: float = Field(ge=0.0)
    position_after: float
    cash_after: float
    realized_pnl_after: float
    model_id: str
    model_version: int = Field(ge=1)


class AppliedControl(Contract):
    """A control command as it took effect on one instrument, at one event time."""

    command_id: str
    command: str
    scope: str
    reason: str
    applied_ts_event_ns: TimestampNs
    model_id: str | None = None
    # Added with the console: who asked, as the command named them (the authenticated user for
    # commands sent from the console). Optional so older audit records stay valid.
    operator: str | None = None
    # Added when model stage changes joined the chain: what the model stage changed here, e.g.
    # "logreg:v2 -> canary" (set on the model stage's entries only). Optional so older audit
    # records stay valid.
    detail: str | None = None
    # Added so a rollout replays from the audit trail: on the model stage's entry of a promote
    # or rollback, the rest of the command as given (``ControlCommand``'s fields of the same
    # names). Optional so older audit records stay valid; those cannot replay a rollout.
    model_version: int | None = None
    stage: Stage | None = None
    model_spec: dict[str, Any] | None = None
    instruments: list[Instrument] | None = None
    capital_fraction: float | None = Field(default=None, gt=0.0, le=1.0)


class AuditRecord(Contract):
    """Everything behind one decision, hash-chained per instrument so tampering is detectable.

    ``hash`` is SHA-256 over ``prev_hash`` and the canonical JSON of the other fields; the chain
    is per instrument because instruments are the partition key, so live and replay build the
    same chain whatever the partition count.
    """

    schema_version: Literal[1] = 1
    audit_id: str
    seq: int = Field(ge=0)
    instrument: Instrument
    ts_event_ns: TimestampNs
    tick_ids: list[str]
    features: dict[str, float]
    signal: Signal
    checks: list[RiskCheckResult]
    decision: Decision
    prev_hash: str
    # Added with paper execution and controls (defaults keep older producers valid).
    order: Order | None = None
    fills: list[Fill] = Field(
        default_factory=list,
        description="Fills of earlier orders that executed since the previous record.",
    )
    trading_state: TradingState = TradingState.ACTIVE
    controls_applied: list[AppliedControl] = Field(default_factory=list)
    # Last, so the record's bytes are its hashed body plus this one field (one encoding).
    hash: str


class HoldSummary(Contract):
    """A run of HOLD decisions of one instrument and model, in place of one record each.

    A HOLD sends nothing, so it is not audited one by one (``[audit] holds = "summary"``);
    the run it belongs to is, as a link of the same hash chain as the ``AuditRecord`` s: the
    chain then covers every decided tick. A run ends at an event-time period boundary and
    whenever a decision that is not a plain HOLD (an order intent, approved or refused, a change
    of trading state or control, a fill to record) interrupts it. ``decided_ticks`` counts
    every decided tick of the instrument so far, this run included: between two summaries it
    grows by the decision records between them plus this run's ``holds``, so a gap shows.
    """

    schema_version: Literal[1] = 1
    kind: Literal["hold_summary"] = "hold_summary"
    audit_id: str
    seq: int = Field(ge=0)
    instrument: Instrument
    ts_event_ns: TimestampNs = Field(description="Event time of the run's last HOLD.")
    model_id: str
    model_version: int = Field(ge=1)
    period_s: float = Field(gt=0.0, description="The event-time period runs are cut at.")
    from_ts_event_ns: TimestampNs = Field(description="Event time of the run's first HOLD.")
    to_ts_event_ns: TimestampNs = Field(description="Event time of the run's last HOLD.")
    first_tick_id: TickId
    last_tick_id: TickId
    holds: int = Field(ge=1, description="HOLD decisions in the run.")
    decided_ticks: int = Field(
        ge=1, description="Decided ticks of the instrument up to this run's end, this run in."
    )
    reasons: dict[str, int] = Field(
        description="HOLDs by the decision rule's reason, numbers left out ('#'); "
        "'' for a HOLD without a reason (threshold rule)."
    )
    position: float = Field(description="Position (filled and in flight) through the run.")
    trading_state: TradingState
    prev_hash: str
    # Last, like AuditRecord's, so it is sealed the same way.
    hash: str


def _audit_kind(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return "hold_summary" if kind == "hold_summary" else "record"


# A message on the audit topic: a decision's record, or a summary of a run of holds.
AuditEntry = Annotated[
    Annotated[AuditRecord, Tag("record")] | Annotated[HoldSummary, Tag("hold_summary")],
    Discriminator(_audit_kind),
]
AUDIT_ADAPTER: TypeAdapter[AuditRecord | HoldSummary] = TypeAdapter(AuditEntry)


class Severity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class Alert(Contract):
    """A condition the monitor wants a person (or a policy) to act on."""

    schema_version: Literal[1] = 1
    alert_id: str
    ts_event_ns: TimestampNs
    severity: Severity
    code: str
    detail: str
    instrument: Instrument | None = None
    model_id: str | None = None


class ControlCommand(Contract):
    """An operator's instruction to every worker (kill switch, model stage changes).

    Version 2 named the time the command was given ``ts_event_ns``, as every contract names it;
    version 1 called it ``ts_ns``. A version 1 message (the compacted ``control`` topic keeps old
    ones forever) still reads, as the version 2 command it means.
    """

    schema_version: Literal[2] = 2
    command_id: str
    command: Literal["kill_switch_on", "kill_switch_off", "promote", "rollback", "demote"]
    scope: str = Field(description="'global' or an instrument")
    reason: str = Field(min_length=1)
    operator: str = Field(min_length=1)
    ts_event_ns: TimestampNs = Field(description="When the command was given.")
    model_id: str | None = None
    model_version: int | None = None
    stage: Stage | None = Field(
        default=None, description="promote: the stage the version moves to (default production)."
    )
    model_spec: dict[str, Any] | None = Field(
        default=None, description="promote: the version's model config, for a version new here."
    )
    instruments: list[Instrument] | None = Field(
        default=None, description="canary: the instruments it may trade."
    )
    capital_fraction: float | None = Field(default=None, gt=0.0, le=1.0)
    effective_ts_event_ns: TimestampNs | None = Field(
        default=None,
        description="Apply at each instrument's first tick at or after this event time; "
        "unset: at its next tick. Backtests replay commands by this field.",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_version_1(cls, data: Any) -> Any:
        """Rename a version 1 command's ``ts_ns``; nothing else changed between the versions."""
        if not isinstance(data, dict) or data.get("schema_version") != 1:
            return data
        if "ts_event_ns" in data:
            raise ValueError("a schema_version 1 command names its time ts_ns, not ts_event_ns")
        upgraded = {k: v for k, v in data.items() if k != "ts_ns"}
        upgraded["schema_version"] = 2
        if "ts_ns" in data:
            upgraded["ts_event_ns"] = data["ts_ns"]
        return upgraded

"""Configuration: one frozen model read by both ``tickwise worker`` and ``tickwise backtest``.

Live and replay must decide identically, so they must be configured identically: there is one
config type and one loader, and neither path has options the other lacks.
"""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InstrumentRules(Frozen):
    """Per-instrument overrides of ``ValidationConfig``; unset fields keep the global value."""

    reject_locked_quotes: bool | None = None
    max_future_s: float | None = Field(default=None, gt=0.0)
    max_past_s: float | None = Field(default=None, gt=0.0)
    time_confirm_ticks: int | None = Field(default=None, ge=1)
    out_of_order_tolerance_ms: float | None = Field(default=None, ge=0.0)
    out_of_order_policy: Literal["quarantine", "reorder"] | None = None
    reorder_window_ms: float | None = Field(default=None, ge=0.0)
    reorder_max_ticks: int | None = Field(default=None, gt=0)
    dedup_window: int | None = Field(default=None, gt=0)
    outlier_k: float | None = Field(default=None, ge=0.0)
    outlier_min_jump_bps: float | None = Field(default=None, ge=0.0)
    outlier_window: int | None = Field(default=None, ge=2)
    outlier_confirm_ticks: int | None = Field(default=None, ge=1)


class ValidationConfig(Frozen):
    """Rules the validator applies to every raw message."""

    max_message_bytes: int = Field(default=16_384, gt=0)
    instruments: tuple[str, ...] | None = Field(
        default=None, description="Allowed instruments; None accepts any well-formed symbol."
    )
    out_of_order_tolerance_ms: float = Field(default=0.0, ge=0.0)
    dedup_window: int = Field(
        default=10_000, gt=0, description="Recent tick ids kept per instrument."
    )
    # --- rules added by the data-governance issue; every one can be overridden per instrument
    reject_locked_quotes: bool = Field(
        default=False, description="Quarantine quotes with bid == ask (LOCKED_QUOTE)."
    )
    max_future_s: float = Field(
        default=4 * 86_400.0,
        gt=0.0,
        description="A tick this far ahead of the instrument's event-time watermark is suspect.",
    )
    max_past_s: float = Field(
        default=3_600.0,
        gt=0.0,
        description="A tick this far behind the watermark is STALE_TIMESTAMP, not out of order.",
    )
    time_confirm_ticks: int = Field(
        default=3, ge=1, description="Consecutive agreeing ticks that confirm a time jump."
    )
    out_of_order_policy: Literal["quarantine", "reorder"] = "quarantine"
    reorder_window_ms: float = Field(
        default=50.0, ge=0.0, description="Event time a tick is held to let late ticks in."
    )
    reorder_max_ticks: int = Field(
        default=1_000, gt=0, description="Per-instrument bound of the reorder buffer."
    )
    outlier_k: float = Field(
        default=10.0, ge=0.0, description="Jump limit in robust std devs of recent moves; 0=off."
    )
    outlier_min_jump_bps: float = Field(
        default=100.0, ge=0.0, description="Moves up to this size are never outliers."
    )
    outlier_window: int = Field(default=200, ge=2, description="Recent moves in the MAD.")
    outlier_confirm_ticks: int = Field(
        default=3, ge=1, description="Consecutive ticks at a new level that confirm a move."
    )
    per_instrument: dict[str, InstrumentRules] = Field(
        default_factory=dict, description="Overrides of the rules above, by instrument."
    )

    def rules_for(self, instrument: str) -> ValidationConfig:
        """The rules that apply to ``instrument``: these, with its overrides applied.

        Examples
        --------
        >>> cfg = ValidationConfig(per_instrument={"CL": InstrumentRules(outlier_k=20.0)})
        >>> cfg.rules_for("CL").outlier_k, cfg.rules_for("ES").outlier_k
        (20.0, 10.0)
        """
        override = self.per_instrument.get(instrument)
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))


# The default feature set; configs that do not name one keep it.
DEFAULT_FEATURES = (
    "ret_bps",
    "mom_fast_bps",
    "mom_slow_bps",
    "vol_bps",
    "z_ret",
    "spread_bps",
    "imbalance",
    "log_gap_s",
)


class FeatureConfig(Frozen):
    """Event-time constants (seconds) of the causal features."""

    fast_tau_s: float = Field(default=2.0, gt=0.0)
    slow_tau_s: float = Field(default=30.0, gt=0.0)
    vol_tau_s: float = Field(default=30.0, gt=0.0)
    feature_set: tuple[str, ...] = Field(
        default=DEFAULT_FEATURES,
        min_length=1,
        description="Feature names, in order (see docs/FEATURES.md); 'ret_<H>s_bps' for any H.",
    )
    rsi_tau_s: float = Field(default=14.0, gt=0.0)
    intensity_tau_s: float = Field(default=10.0, gt=0.0)
    sample_ms: float = Field(
        default=0.0,
        ge=0.0,
        description="Decision cadence: emit a feature vector (and so decide) on the first tick "
        "of each event-time bucket of this many ms, per instrument; 0: on every tick.",
    )


class LabelConfig(Frozen):
    """The delayed label: direction of the forward return over ``horizon_s`` of event time."""

    horizon_s: float = Field(default=5.0, gt=0.0)
    dead_zone_bps: float = Field(default=0.0, ge=0.0)
    task: Literal["classification", "regression"] = Field(
        default="classification",
        description="classification: direction of the forward return (dead zone skipped); "
        "regression: the forward return in bps.",
    )


ModelKind = Literal["logistic", "linear", "svm", "pa", "hoeffding_tree", "arf", "mlp"]


class ModelConfig(Frozen):
    """The online model; by default a compiled logistic regression that equals river's."""

    kind: ModelKind = "logistic"
    engine: Literal["compiled", "river"] = Field(
        default="compiled",
        description="logistic and linear: the compiled learner (equal to river's within "
        "rounding, several times cheaper) or river's own classes; other kinds are river's.",
    )
    model_id: str = Field(default="logreg", min_length=1)
    model_version: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=0.01, gt=0.0)
    l2: float = Field(default=0.0, ge=0.0)
    warmup_labels: int = Field(default=50, ge=0, description="Labels learned before it may signal.")
    threshold: float = Field(default=0.02, ge=0.0, lt=0.5, description="Distance from 0.5 to act.")
    top_k_explain: int = Field(default=3, ge=1)
    # --- model zoo hyper-parameters (each kind reads the ones it needs; see docs/MODELS.md) ---
    threshold_bps: float = Field(
        default=0.5, ge=0.0, description="Regressors: forecast (bps) beyond which to act."
    )
    seed: int = Field(default=7, description="Seeds randomised models (forest, MLP).")
    grace_period: int = Field(default=200, ge=1, description="Trees: samples between splits.")
    max_depth: int | None = Field(default=8, ge=1)
    n_models: int = Field(default=10, ge=1, description="Forest size.")
    pa_c: float = Field(default=0.01, gt=0.0, description="Passive-aggressive aggressiveness.")
    hidden: int = Field(default=16, ge=1, description="MLP hidden units.")


class DecisionConfig(Frozen):
    """How a signal becomes a position: the rule risk applies before its limits.

    ``edge`` (the default) trades only when the model's expected edge over the label horizon,
    in bps, beats the round-trip cost of the trade (see ``streams.operators.decision``), keeps
    a position at least ``min_hold_s`` and leaves it only when its edge falls below the exit
    level: a band between entry and exit, so a score hovering near a threshold does not churn.
    ``threshold`` is the plain rule: every BUY or SELL signal aims for a long or short target
    and FLAT holds, whatever it costs; kept as the reference other engines are checked against.
    """

    rule: Literal["edge", "threshold"] = "edge"
    entry_cost_multiple: float = Field(
        default=1.0, ge=0.0, description="Enter when the expected edge > this x round-trip cost."
    )
    exit_cost_multiple: float = Field(
        default=0.0,
        description="Leave a position when its expected edge < this x round-trip cost "
        "(at most entry_cost_multiple; below it, the band between the two holds).",
    )
    min_hold_s: float | None = Field(
        default=None,
        ge=0.0,
        description="Event time a position is kept before it may be left or reversed; "
        "None: the label horizon, the span the edge was estimated over.",
    )
    move_tau_s: float = Field(
        default=600.0,
        gt=0.0,
        description="Event-time constant of the EWMA of |forward return| over the horizon, "
        "learned from matured labels; turns a classifier's probability into bps.",
    )

    @model_validator(mode="after")
    def _check_band(self) -> DecisionConfig:
        if self.exit_cost_multiple > self.entry_cost_multiple:
            raise ValueError(
                f"decision.exit_cost_multiple ({self.exit_cost_multiple}) must not exceed "
                f"entry_cost_multiple ({self.entry_cost_multiple}): a position would be left "
                "on the tick it was entered"
            )
        return self


class RiskConfig(Frozen):
    """Pre-trade limits, per instrument."""

    target_size: float = Field(default=1.0, gt=0.0, description="Position a BUY/SELL aims for.")
    max_position: float = Field(default=5.0, gt=0.0)
    max_order_size: float = Field(default=10.0, gt=0.0)
    # --- limits; every one applies per instrument ---
    max_notional: float | None = Field(
        default=None, gt=0.0, description="Cap on |position| x price x multiplier after the order."
    )
    collar_bps: float | None = Field(
        default=100.0,
        gt=0.0,
        description="Max distance of the expected fill price from the last trade or mid.",
    )
    max_orders: int = Field(default=20, ge=0, description="Orders per throttle window; 0: off.")
    throttle_window_s: float = Field(default=1.0, gt=0.0, description="Event-time window.")
    max_drawdown: float | None = Field(
        default=None, gt=0.0, description="Equity below its peak by more than this: loss_action."
    )
    max_daily_loss: float | None = Field(
        default=None, gt=0.0, description="Loss since the trading day began: loss_action."
    )
    loss_action: Literal["REDUCING", "HALTED"] = "REDUCING"
    sizing: Literal["fixed", "fixed_fraction", "vol_target"] = "fixed"
    fraction: float = Field(
        default=0.02, gt=0.0, le=1.0, description="fixed_fraction: equity share at confidence 1."
    )
    vol_target: float = Field(
        default=1000.0, gt=0.0, description="vol_target: money at risk per vol_horizon_s."
    )
    vol_horizon_s: float = Field(default=60.0, gt=0.0)
    vol_tau_s: float = Field(default=60.0, gt=0.0, description="Event-time EWMA of the variance.")
    lot_size: float = Field(default=0.0, ge=0.0, description="Round sized targets down; 0: off.")
    min_order_size: float = Field(default=0.0, ge=0.0, description="Smaller orders become HOLD.")
    allowed_instruments: tuple[str, ...] | None = Field(
        default=None, description="Instruments that may trade; None: any."
    )
    instruments: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-instrument overrides of the limits above, e.g. {ES = {max_position = 2}}.",
    )

    @model_validator(mode="after")
    def _check_overrides(self) -> RiskConfig:
        for instrument, override in self.instruments.items():
            bad = set(override) - PER_INSTRUMENT_RISK_KEYS
            if bad:
                raise ValueError(f"risk.instruments.{instrument}: unknown keys {sorted(bad)}")
            self.model_validate({**self.model_dump(exclude={"instruments"}), **override})
        return self

    def for_instrument(self, instrument: str) -> RiskConfig:
        """The limits that apply to ``instrument``: the global ones with its overrides."""
        override = self.instruments.get(instrument)
        if not override:
            return self
        return self.model_validate({**self.model_dump(exclude={"instruments"}), **override})


PER_INSTRUMENT_RISK_KEYS = frozenset(RiskConfig.model_fields) - {
    "instruments",
    "allowed_instruments",
}


class ExecutionConfig(Frozen):
    """The paper broker: event-time latency, spread crossing, slippage, fees, accounting."""

    latency_ms: float = Field(default=50.0, ge=0.0, description="Event time before a fill.")
    half_spread_bps: float = Field(
        default=1.0, ge=0.0, description="Assumed half spread when the fill tick is a trade."
    )
    slippage_bps: float = Field(default=0.5, ge=0.0, description="Paid on every fill.")
    fee_bps: float = Field(default=0.1, ge=0.0, description="Of the fill notional.")
    fee_per_unit: float = Field(default=0.0, ge=0.0)
    multiplier: float = Field(default=1.0, gt=0.0, description="Money per price point per unit.")
    initial_cash: float = Field(default=1_000_000.0, description="Per instrument account.")
    day_start_utc_hour: int = Field(
        default=0, ge=0, le=23, description="Trading day boundary for the daily-loss stop."
    )


# What may answer an alert: nothing more, a model moved to shadow, one instrument or all halted.
Policy = Literal["alert", "demote", "halt_instrument", "global_kill"]


class MonitorConfig(Frozen):
    """What the monitor watches and which policy answers each alert code."""

    accuracy_window: int = Field(default=500, ge=10)
    min_accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    drift_delta: float = Field(default=1e-3, gt=0.0, lt=1.0, description="ADWIN confidence.")
    drift_grace: int = Field(default=30, ge=0, description="Blocks before drift may alarm.")
    drift_block_s: float | None = Field(
        default=None, gt=0.0, description="Event time per ADWIN input; None: the label horizon."
    )
    drift_min_increase: float = Field(default=0.05, ge=0.0, le=1.0)
    max_losing_streak: int = Field(default=10, ge=1)
    max_loss: float | None = Field(default=None, gt=0.0, description="Net P&L below -max_loss.")
    quarantine_window: int = Field(default=1000, ge=10)
    max_quarantine_rate: float = Field(default=0.05, gt=0.0, le=1.0)
    policies: dict[str, Policy] = Field(
        default_factory=lambda: {
            "MODEL_DRIFT": "demote",
            "LOW_ACCURACY": "alert",
            "LOSING_STREAK": "alert",
            "PNL_LOSS": "halt_instrument",
            "DATA_QUALITY": "alert",
        }
    )


class AuditConfig(Frozen):
    """What the audit chain records one by one and what it summarises.

    Every order intent (approved or refused), change of trading state, control or model stage,
    and fill is a record of its own. A HOLD sends nothing: under ``summary`` (the default) a run
    of them becomes one ``HoldSummary`` in the chain, cut at each ``hold_summary_s`` of event
    time and wherever a record interrupts it, and HOLD decisions are not published; ``each``
    publishes and records every HOLD as its own decision (a message and a record per decided
    tick; see docs/BENCHMARKS.md for its cost).
    """

    holds: Literal["summary", "each"] = "summary"
    hold_summary_s: float = Field(
        default=60.0, gt=0.0, description="Event-time period a run of holds is summarised over."
    )


def parse_every(every: str) -> float | None:
    """Seconds of a ``"<N> s"`` signal period; None for ``"decision"`` and ``"order"``.

    Examples
    --------
    >>> parse_every("60 s"), parse_every("0.5s"), parse_every("order")
    (60.0, 0.5, None)
    """
    if every in ("decision", "order"):
        return None
    text = every.strip()
    number = text[:-1].strip() if text.endswith("s") else ""
    try:
        seconds = float(number)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0.0 or seconds == float("inf"):
        raise ValueError(f"signals.every must be 'decision', 'order' or '<N> s', not {every!r}")
    return seconds


class SignalsConfig(Frozen):
    """Which signals (and the feature vectors they were scored on) are published.

    ``decision``: every signal of every decided tick, shadow ones included. ``order``: only the
    signals whose decision is an order intent (approved or refused). ``"<N> s"`` (the default,
    ``"60 s"``): those, plus the first signal of each model in every N s of event time per
    instrument, a sample that keeps the console's view of every model (shadows included) and
    its accuracy alive without a message per tick. Decisions themselves are not sampled: they
    are in the audit chain either way.
    """

    every: str = "60 s"

    @model_validator(mode="after")
    def _check_every(self) -> SignalsConfig:
        parse_every(self.every)
        return self


class LiveConfig(Frozen):
    """How a live worker keeps its state; replay ignores this section."""

    checkpoint_store: Literal["topic", "dir"] = Field(
        default="topic",
        description="Where checkpoints live: 'topic' (the compacted <prefix>checkpoints topic, "
        "which every worker of the cluster reaches) or 'dir' (files in checkpoint_dir).",
    )
    checkpoint_dir: str | None = Field(
        default=None,
        description="With checkpoint_store = 'dir': a directory shared by all workers so a moved "
        "partition resumes from its checkpoint; default ~/.cache/tickwise/checkpoints/<app_id>.",
    )
    checkpoint_key_file: str | None = Field(
        default=None,
        description="File holding the key checkpoints are signed with (HMAC-SHA256); every "
        "worker sharing the checkpoints needs the same. Unset: $TICKWISE_CHECKPOINT_KEY or "
        "$TICKWISE_CHECKPOINT_KEY_FILE, else a key made once for this user in "
        "~/.config/tickwise/checkpoint.key.",
    )
    checkpoint_interval_s: float = Field(default=10.0, gt=0.0)

    @model_validator(mode="after")
    def _dir_only_for_the_dir_store(self) -> LiveConfig:
        # a directory named for the topic store would be silently unused
        if self.checkpoint_dir is not None and self.checkpoint_store != "dir":
            raise ValueError("live.checkpoint_dir is used only with checkpoint_store = 'dir'")
        return self


class EvaluationConfig(Frozen):
    """Prequential validation: rolling windows in event time."""

    window_s: float = Field(default=300.0, gt=0.0, description="Rolling window, event seconds.")


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class SessionHours(Frozen):
    """A market's weekly sessions in its exchange's time zone; the defaults are CME Globex's
    equity index hours (Sunday to Thursday 17:00 to 16:00 the next day, Chicago time).

    A session opens on each of ``days`` at ``open`` and closes at ``close``: the same day when
    ``close`` is after ``open``, else the next day.
    """

    timezone: str = Field(default="America/Chicago", description="IANA name of the zone")
    days: tuple[Weekday, ...] = Field(
        default=("sun", "mon", "tue", "wed", "thu"),
        min_length=1,
        description="The days a session opens on.",
    )
    open: time = time(17, 0)
    close: time = time(16, 0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
        return name

    @field_validator("open", "close")
    @classmethod
    def _naive(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give the time without a zone; the zone is `timezone`")
        return value


class AnomalyConfig(Frozen):
    """The watchtower's trading anomalies: windows of event time per instrument and model version,
    each closed window compared with the key's trailing ones by a robust z-score.

    The defaults suit a desk's futures book: minute windows, half an hour of history before
    anything is judged, and a burst only when it is six robust deviations out and at least
    ``burst_min_orders`` order intents. A burst halts its instrument; silence and a P&L drop
    alert a person (the monitor's ``PNL_LOSS`` is the absolute loss limit).
    """

    window_s: float = Field(
        default=60.0, gt=0.0, description="Tumbling window the detectors judge, event time."
    )
    hop_size_s: float = Field(default=300.0, gt=0.0, description="Hopping window: its length.")
    hop_step_s: float = Field(default=60.0, gt=0.0, description="Hopping window: how often.")
    history: int = Field(default=60, ge=3, description="Closed windows kept per key and spec.")
    min_history: int = Field(
        default=30, ge=3, description="Closed tumbling windows a key needs before it is judged."
    )
    burst_z: float = Field(default=6.0, gt=0.0, description="ORDER_BURST: robust z of intents.")
    burst_min_orders: int = Field(
        default=20, ge=1, description="ORDER_BURST: never for fewer order intents than this."
    )
    silent_min_median: float = Field(
        default=5.0,
        gt=0.0,
        description="SILENT_MODEL: the trailing median of intents a silent window breaks with.",
    )
    silent_min_ticks: int = Field(
        default=100, ge=1, description="SILENT_MODEL: decided ticks the silent window must have."
    )
    pnl_drop_z: float = Field(
        default=6.0, gt=0.0, description="PNL_DROP: robust z of the window's marked P&L change."
    )
    policies: dict[str, Policy] = Field(
        default_factory=lambda: {
            "ORDER_BURST": "halt_instrument",
            "SILENT_MODEL": "alert",
            "PNL_DROP": "alert",
        }
    )

    @model_validator(mode="after")
    def _check_windows(self) -> AnomalyConfig:
        if self.hop_step_s > self.hop_size_s:
            raise ValueError(
                f"watch.anomaly.hop_step_s ({self.hop_step_s}) must not exceed hop_size_s "
                f"({self.hop_size_s}): events between windows would count nowhere"
            )
        if self.min_history > self.history:
            raise ValueError(
                f"watch.anomaly.min_history ({self.min_history}) exceeds history "
                f"({self.history}): no key would ever be judged"
            )
        return self


class WatchConfig(Frozen):
    """``tickwise watch``: the wall-clock checks the event-time pipeline cannot make itself,
    and the trading anomalies it finds in event-time windows (``anomaly``)."""

    stale_after_s: float = Field(
        default=30.0, gt=0.0, description="FEED_STALE: no tick on ticks.raw for this long."
    )
    audit_deadline_s: float = Field(
        default=10.0, gt=0.0, description="AUDIT_MISSING: a decision unaudited for this long."
    )
    max_lag: int = Field(
        default=10_000, ge=1, description="WORKER_LAG: the workers' backlog on ticks.raw."
    )
    check_interval_s: float = Field(default=1.0, gt=0.0, description="How often it looks.")
    worker_group: str | None = Field(
        default=None, description="The workers' consumer group; unset: the config's app_id."
    )
    group_id: str = Field(default="tickwise-watch", min_length=1, description="Its own group.")
    session: SessionHours | None = Field(
        default=None,
        description="FEED_STALE only while this session is open; unset: at any hour.",
    )
    sessions: dict[str, SessionHours] = Field(
        default_factory=dict,
        description="Per instrument, in place of ``session``; an instrument named here is "
        "watched from its session's open even before its first tick.",
    )

    def session_for(self, instrument: str) -> SessionHours | None:
        """The hours the instrument's feed is expected to tick in (None: always)."""
        return self.sessions.get(instrument, self.session)

    anomaly: AnomalyConfig = AnomalyConfig()


class TickwiseConfig(Frozen):
    """Everything a worker or a backtest needs; defaults make a working demo."""

    app_id: str = "tickwise"
    topic_prefix: str = ""
    validation: ValidationConfig = ValidationConfig()
    features: FeatureConfig = FeatureConfig()
    label: LabelConfig = LabelConfig()
    model: ModelConfig = ModelConfig()
    decision: DecisionConfig = DecisionConfig()
    risk: RiskConfig = RiskConfig()
    live: LiveConfig = LiveConfig()
    execution: ExecutionConfig = ExecutionConfig()
    monitor: MonitorConfig = MonitorConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    watch: WatchConfig = WatchConfig()
    audit: AuditConfig = AuditConfig()
    signals: SignalsConfig = SignalsConfig()


class ConfigError(ValueError):
    """A config file that cannot be read or is not a valid config, in words naming the file
    and each setting at fault (every command prints it and exits 2, not a traceback)."""


def load_config(path: str | Path | None = None, **overrides: object) -> TickwiseConfig:
    """Read a TOML config (or the defaults) and apply top-level overrides; ``ConfigError`` for
    a file that is missing, not TOML, or not a valid config.

    Examples
    --------
    >>> load_config(topic_prefix="test.").topic_prefix
    'test.'
    """
    from pydantic import ValidationError

    data: dict[str, object] = {}
    where = "the config" if path is None else f"config {path}"
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not TOML: {exc}") from exc
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TickwiseConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from exc

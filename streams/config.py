"""Configuration: one frozen model read by both ``tickwise worker`` and ``tickwise backtest``.

Live and replay must decide identically, so they must be configured identically: there is one
config type and one loader, and neither path has options the other lacks.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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


class FeatureConfig(Frozen):
    """Event-time constants (seconds) of the causal features."""

    fast_tau_s: float = Field(default=2.0, gt=0.0)
    slow_tau_s: float = Field(default=30.0, gt=0.0)
    vol_tau_s: float = Field(default=30.0, gt=0.0)


class LabelConfig(Frozen):
    """The delayed label: direction of the forward return over ``horizon_s`` of event time."""

    horizon_s: float = Field(default=5.0, gt=0.0)
    dead_zone_bps: float = Field(default=0.0, ge=0.0)


class ModelConfig(Frozen):
    """The online model; the skeleton ships river's logistic regression."""

    kind: Literal["logistic"] = "logistic"
    model_id: str = Field(default="logreg", min_length=1)
    model_version: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=0.01, gt=0.0)
    l2: float = Field(default=0.0, ge=0.0)
    warmup_labels: int = Field(default=50, ge=0, description="Labels learned before it may signal.")
    threshold: float = Field(default=0.02, ge=0.0, lt=0.5, description="Distance from 0.5 to act.")
    top_k_explain: int = Field(default=3, ge=1)


class RiskConfig(Frozen):
    """Pre-trade limits, per instrument."""

    target_size: float = Field(default=1.0, gt=0.0, description="Position a BUY/SELL aims for.")
    max_position: float = Field(default=5.0, gt=0.0)
    max_order_size: float = Field(default=10.0, gt=0.0)


class LiveConfig(Frozen):
    """How a live worker keeps its state; replay ignores this section."""

    checkpoint_dir: str | None = Field(
        default=None,
        description="Shared by all workers so a moved partition resumes from its checkpoint; "
        "default ~/.cache/tickwise/checkpoints/<app_id>.",
    )
    checkpoint_interval_s: float = Field(default=10.0, gt=0.0)


class TickwiseConfig(Frozen):
    """Everything a worker or a backtest needs; defaults make a working demo."""

    app_id: str = "tickwise"
    topic_prefix: str = ""
    validation: ValidationConfig = ValidationConfig()
    features: FeatureConfig = FeatureConfig()
    label: LabelConfig = LabelConfig()
    model: ModelConfig = ModelConfig()
    risk: RiskConfig = RiskConfig()
    live: LiveConfig = LiveConfig()


def load_config(path: str | Path | None = None, **overrides: object) -> TickwiseConfig:
    """Read a TOML config (or the defaults) and apply top-level overrides.

    Examples
    --------
    >>> load_config(topic_prefix="test.").topic_prefix
    'test.'
    """
    data: dict[str, object] = {}
    if path is not None:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return TickwiseConfig.model_validate(data)

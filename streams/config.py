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


# The skeleton's feature set; configs that do not name one keep it.
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
    """The online model; the skeleton ships river's logistic regression."""

    kind: ModelKind = "logistic"
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


class RiskConfig(Frozen):
    """Pre-trade limits, per instrument."""

    target_size: float = Field(default=1.0, gt=0.0, description="Position a BUY/SELL aims for.")
    max_position: float = Field(default=5.0, gt=0.0)
    max_order_size: float = Field(default=10.0, gt=0.0)


class EvaluationConfig(Frozen):
    """Prequential validation: rolling windows in event time."""

    window_s: float = Field(default=300.0, gt=0.0, description="Rolling window, event seconds.")


class CheckpointConfig(Frozen):
    """Durable per-partition operator state for the live worker (off when ``dir`` is unset)."""

    dir: str | None = Field(default=None, description="Checkpoint directory; None disables.")
    every: int = Field(default=1000, ge=1, description="Checkpoint after this many inputs.")


class TickwiseConfig(Frozen):
    """Everything a worker or a backtest needs; defaults make a working demo."""

    app_id: str = "tickwise"
    topic_prefix: str = ""
    validation: ValidationConfig = ValidationConfig()
    features: FeatureConfig = FeatureConfig()
    label: LabelConfig = LabelConfig()
    model: ModelConfig = ModelConfig()
    risk: RiskConfig = RiskConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()


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

"""Causal per-instrument features chosen by configuration (see ``CATALOGUE``)."""

from tickwise.streams.operators.features.engine import (
    CATALOGUE,
    FEATURE_NAMES,
    FeatureEngine,
    check_feature_set,
)
from tickwise.streams.operators.features.ewm import DecayedSum, EwmStats

__all__ = [
    "CATALOGUE",
    "FEATURE_NAMES",
    "DecayedSum",
    "EwmStats",
    "FeatureEngine",
    "check_feature_set",
]

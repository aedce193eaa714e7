"""The model zoo, delayed-label learning, stages (shadow, canary, production) and validation."""

from tickwise.streams.operators.models.evaluation import Prequential
from tickwise.streams.operators.models.stage import (
    Applied,
    Deployed,
    ModelOutput,
    ModelStage,
    applied_alert,
    version_key,
)
from tickwise.streams.operators.models.zoo import build_estimator

__all__ = [
    "Applied",
    "Deployed",
    "ModelOutput",
    "ModelStage",
    "Prequential",
    "applied_alert",
    "build_estimator",
    "version_key",
]

"""The model zoo, delayed-label learning, stages (shadow, canary, production) and validation.

The names below are imported on first use, not with the package: the compiled learner's modules
(``linear_kernel``) live here too, and the engine that uses them must not load river's zoo and
metrics (with scipy, about a second) to import them.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from tickwise.streams.operators.lazy import lazy_exports

if TYPE_CHECKING:
    from tickwise.streams.operators.models.evaluation import Prequential
    from tickwise.streams.operators.models.shared import (
        Applied,
        Deployed,
        applied_alert,
        version_key,
    )
    from tickwise.streams.operators.models.stage import ModelOutput, ModelStage
    from tickwise.streams.operators.models.zoo import build_estimator

# Each exported name and the module that defines it.
_SOURCES = MappingProxyType(
    {
        "Applied": "tickwise.streams.operators.models.shared",
        "Deployed": "tickwise.streams.operators.models.shared",
        "ModelOutput": "tickwise.streams.operators.models.stage",
        "ModelStage": "tickwise.streams.operators.models.stage",
        "Prequential": "tickwise.streams.operators.models.evaluation",
        "applied_alert": "tickwise.streams.operators.models.shared",
        "build_estimator": "tickwise.streams.operators.models.zoo",
        "version_key": "tickwise.streams.operators.models.shared",
    }
)

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

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)

"""Pure operators: synchronous, no Kafka, no faust, no wall clock.

Live agents and the replay runner call exactly these classes; that is what makes a backtest
decide the way live does.

The names below are imported on first use, not with the package: ``streams.operators.control``
alone must not load river and numpy for the models, which would cost a command that only sends
a control message a second.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.operators.audit import AuditChain, verify_chain
    from streams.operators.control import ControlBook
    from streams.operators.execution import AccountView, PaperBroker
    from streams.operators.features import FeatureEngine
    from streams.operators.models import ModelStage
    from streams.operators.monitor import Monitor
    from streams.operators.risk import RiskEngine
    from streams.operators.validation import Validator

# Each exported name and the module that defines it.
_SOURCES = MappingProxyType(
    {
        "AccountView": "streams.operators.execution",
        "AuditChain": "streams.operators.audit",
        "ControlBook": "streams.operators.control",
        "FeatureEngine": "streams.operators.features",
        "ModelStage": "streams.operators.models",
        "Monitor": "streams.operators.monitor",
        "PaperBroker": "streams.operators.execution",
        "RiskEngine": "streams.operators.risk",
        "Validator": "streams.operators.validation",
        "verify_chain": "streams.operators.audit",
    }
)

__all__ = [
    "AccountView",
    "AuditChain",
    "ControlBook",
    "FeatureEngine",
    "ModelStage",
    "Monitor",
    "PaperBroker",
    "RiskEngine",
    "Validator",
    "verify_chain",
]


def __getattr__(name: str) -> object:
    """Import an exported name from its module when it is asked for."""
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_SOURCES[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

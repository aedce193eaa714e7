"""Pure operators: synchronous, no Kafka, no faust, no wall clock.

The columnar engine (``streams.engine``) builds on them, live and in replay alike; the
per-message classes it is held to (``Validator``, ``RiskEngine``, ``ControlBook``, ``Pipeline``)
live in the tests (``tests/oracle``).

The names below are imported on first use, not with the package: ``streams.operators.control``
alone must not load river and numpy for the models, which would cost a command that only sends
a control message a second.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from tickwise.streams.operators.lazy import lazy_exports

if TYPE_CHECKING:
    from tickwise.streams.operators.audit import AuditChain, verify_chain
    from tickwise.streams.operators.execution import AccountView, PaperBroker
    from tickwise.streams.operators.features import FeatureEngine
    from tickwise.streams.operators.models import ModelStage
    from tickwise.streams.operators.monitor import Monitor

# Each exported name and the module that defines it.
_SOURCES = MappingProxyType(
    {
        "AccountView": "tickwise.streams.operators.execution",
        "AuditChain": "tickwise.streams.operators.audit",
        "FeatureEngine": "tickwise.streams.operators.features",
        "ModelStage": "tickwise.streams.operators.models",
        "Monitor": "tickwise.streams.operators.monitor",
        "PaperBroker": "tickwise.streams.operators.execution",
        "verify_chain": "tickwise.streams.operators.audit",
    }
)

__all__ = [
    "AccountView",
    "AuditChain",
    "FeatureEngine",
    "ModelStage",
    "Monitor",
    "PaperBroker",
    "verify_chain",
]

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)

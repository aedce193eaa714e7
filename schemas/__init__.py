"""Wire contracts: every message on a tickwise topic is one of these versioned models."""

from tickwise.schemas.base import Contract
from tickwise.schemas.decisions import (
    Action,
    Alert,
    AuditRecord,
    Contribution,
    ControlCommand,
    Decision,
    FeatureVector,
    RiskCheckResult,
    Severity,
    Side,
    Signal,
)
from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import TICK_ADAPTER, CleanTick, QuoteTick, SourceRef, Tick, TradeTick
from tickwise.schemas.topics import CATALOGUE, Topics, TopicSpec

__all__ = [
    "CATALOGUE",
    "TICK_ADAPTER",
    "Action",
    "Alert",
    "AuditRecord",
    "CleanTick",
    "Contract",
    "Contribution",
    "ControlCommand",
    "Decision",
    "FeatureVector",
    "QuarantineRecord",
    "QuoteTick",
    "ReasonCode",
    "RiskCheckResult",
    "Severity",
    "Side",
    "Signal",
    "SourceRef",
    "Tick",
    "TopicSpec",
    "Topics",
    "TradeTick",
]

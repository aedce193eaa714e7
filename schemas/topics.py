"""The topic catalogue: the one place topic names, keys and retention are written down.

Downstream consumers rely on these names. Deployments that share a cluster may add a prefix
(``Topics(prefix="desk1.")``); the suffix is always the catalogue name.
"""

from __future__ import annotations

from dataclasses import dataclass

from tickwise.schemas.base import Contract
from tickwise.schemas.decisions import (
    Alert,
    AuditRecord,
    ControlCommand,
    Decision,
    FeatureVector,
    Fill,
    HoldSummary,
    Signal,
)
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.registry import RegistryEntry
from tickwise.schemas.ticks import CleanTick, QuoteTick, TradeTick

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """A topic's name and how the cluster must keep it."""

    name: str
    key: str
    value_models: tuple[type[Contract], ...]
    partitions: int
    retention_ms: int
    cleanup_policy: str
    description: str

    extra_configs: tuple[tuple[str, str], ...] = ()

    def configs(self) -> dict[str, str]:
        """Topic-level configs passed to the broker at creation."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            **dict(self.extra_configs),
        }


TICKS_RAW = TopicSpec(
    "ticks.raw",
    "instrument",
    (TradeTick, QuoteTick),
    3,
    7 * DAY_MS,
    "delete",
    "Ticks as feeds publish them; anything may arrive here, valid or not.",
)
TICKS_CLEAN = TopicSpec(
    "ticks.clean",
    "instrument",
    (CleanTick,),
    3,
    7 * DAY_MS,
    "delete",
    "Ticks that passed validation, with their source offset.",
)
TICKS_QUARANTINE = TopicSpec(
    "ticks.quarantine",
    "instrument (or empty when unknown)",
    (QuarantineRecord,),
    3,
    30 * DAY_MS,
    "delete",
    "Rejected messages, raw bytes kept, with a reason code.",
)
FEATURES = TopicSpec(
    "features",
    "instrument",
    (FeatureVector,),
    3,
    1 * DAY_MS,
    "delete",
    "Causal feature vectors, one per clean tick.",
)
SIGNALS = TopicSpec(
    "signals",
    "instrument",
    (Signal,),
    3,
    7 * DAY_MS,
    "delete",
    "Model scores with explanations.",
)
DECISIONS = TopicSpec(
    "decisions",
    "instrument",
    (Decision,),
    3,
    30 * DAY_MS,
    "delete",
    "Risk-checked decisions; the same JSON replay writes to decisions.jsonl.",
)
AUDIT = TopicSpec(
    "audit",
    "instrument",
    (AuditRecord, HoldSummary),
    3,
    -1,
    "delete",
    "Hash-chained per instrument: a record per decision that acts or changes a state, and "
    "summaries of the runs of holds between them (or a record per hold); kept forever.",
)
ALERTS = TopicSpec(
    "alerts",
    "instrument or model",
    (Alert,),
    1,
    30 * DAY_MS,
    "delete",
    "Monitor alerts with a severity.",
)
CONTROL = TopicSpec(
    "control",
    "scope",
    (ControlCommand,),
    1,
    -1,
    "compact",
    "Operator commands (kill switch, model stages); compacted so state survives restarts.",
)

# Not on ``control``: that topic is compacted by scope (older links of a chain would go) and
# every worker reads it, while registering a version tells the workers nothing.
REGISTRY = TopicSpec(
    "registry",
    "the chain's name (one chain)",
    (RegistryEntry,),
    1,
    -1,
    "delete",
    "The model registry's log: every registration and stage change, hash-chained; kept forever.",
)

FILLS = TopicSpec(
    "fills",
    "instrument",
    (Fill,),
    3,
    30 * DAY_MS,
    "delete",
    "Paper-broker fills of approved orders, with the account after each fill.",
)

# The workers' own state, not a contract: signed checkpoint parts and manifests (bytes and JSON
# written by streams.live.checkpoint_topic), keyed by app id, raw topic, partition and part.
# Segments roll hourly so compaction can drop superseded checkpoints from a busy topic.
CHECKPOINTS = TopicSpec(
    "checkpoints",
    "app id, raw topic, raw partition, manifest or part number",
    (),
    3,
    -1,
    "compact",
    "Each raw partition's latest pipeline checkpoint, chunked and signed; compacted.",
    (("segment.ms", str(3600 * 1000)), ("min.cleanable.dirty.ratio", "0.1")),
)

CATALOGUE: tuple[TopicSpec, ...] = (
    TICKS_RAW,
    TICKS_CLEAN,
    TICKS_QUARANTINE,
    FEATURES,
    SIGNALS,
    DECISIONS,
    AUDIT,
    ALERTS,
    CONTROL,
    FILLS,
    REGISTRY,
)

# Every topic a deployment needs: the catalogue's contracts and the workers' internal ones.
INTERNAL: tuple[TopicSpec, ...] = (CHECKPOINTS,)
ALL_TOPICS: tuple[TopicSpec, ...] = CATALOGUE + INTERNAL


@dataclass(frozen=True)
class Topics:
    """Resolved topic names for one deployment (catalogue names behind an optional prefix)."""

    prefix: str = ""

    def name(self, spec: TopicSpec) -> str:
        return f"{self.prefix}{spec.name}"

    @property
    def raw(self) -> str:
        return self.name(TICKS_RAW)

    @property
    def clean(self) -> str:
        return self.name(TICKS_CLEAN)

    @property
    def quarantine(self) -> str:
        return self.name(TICKS_QUARANTINE)

    @property
    def features(self) -> str:
        return self.name(FEATURES)

    @property
    def signals(self) -> str:
        return self.name(SIGNALS)

    @property
    def decisions(self) -> str:
        return self.name(DECISIONS)

    @property
    def audit(self) -> str:
        return self.name(AUDIT)

    @property
    def alerts(self) -> str:
        return self.name(ALERTS)

    @property
    def control(self) -> str:
        return self.name(CONTROL)

    @property
    def fills(self) -> str:
        return self.name(FILLS)

    @property
    def registry(self) -> str:
        return self.name(REGISTRY)

    @property
    def checkpoints(self) -> str:
        return self.name(CHECKPOINTS)

"""The model registry's log on the wire: each change of the registry, hash-chained."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tickwise.schemas.base import Contract
from tickwise.schemas.ticks import TimestampNs

# The registry keeps one chain; its entries are keyed by this name on the ``registry`` topic.
REGISTRY_CHAIN = "registry"


class RegistryEntry(Contract):
    """One change of the model registry: a version registered, or moved to another stage.

    Chained like the audit trail (``streams.operators.audit.record_hash``): ``hash`` is
    SHA-256 of the entry's JSON without it, ``prev_hash`` included, so an altered, dropped,
    reordered or forked entry shows. A promotion that retires the version in production is two
    entries with the same ``command_id``.
    """

    schema_version: Literal[1] = 1
    audit_id: str = Field(description="reg-<seq>")
    seq: int = Field(ge=0)
    ts_event_ns: TimestampNs = Field(description="When the operator asked (wall clock).")
    event: Literal["register", "stage"]
    model_id: str = Field(min_length=1)
    model_version: int = Field(ge=1)
    from_stage: str | None = Field(
        default=None, description="stage: the stage the version left ('registered' at first)."
    )
    to_stage: str = Field(description="register: 'registered'; stage: the stage it moved to.")
    operator: str = Field(min_length=1)
    reason: str
    parent: str | None = Field(default=None, description="register: MODEL_ID:vN it derives from.")
    command_id: str | None = Field(
        default=None, description="stage: the control command that told the workers."
    )
    prev_hash: str
    # Last, so it is sealed as an audit record is (one encoding).
    hash: str

    @property
    def model(self) -> str:
        """``MODEL_ID:vN``."""
        return f"{self.model_id}:v{self.model_version}"

"""Market ticks as feeds publish them (``ticks.raw``) and as the validator passes them on."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter, model_validator

from tickwise.schemas.base import Contract

Instrument = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/\-]+$")]
TickId = Annotated[str, Field(min_length=1, max_length=128)]
# Event time: integer nanoseconds since the Unix epoch, UTC.
TimestampNs = Annotated[int, Field(ge=0, lt=2**63)]


class TradeTick(Contract):
    """One trade print: the price and size at which the market traded."""

    schema_version: Literal[1] = 1
    kind: Literal["trade"] = "trade"
    tick_id: TickId
    instrument: Instrument
    ts_event_ns: TimestampNs
    price: float
    size: float
    seq: int | None = None
    ts_recv_ns: TimestampNs | None = None

    @property
    def reference_price(self) -> float:
        """Price that features and labels use: the traded price."""
        return self.price


class QuoteTick(Contract):
    """Top of book: best bid and ask, with their sizes when the feed has them.

    FX and indicative quotes usually carry no sizes, so both sizes are optional: absent or null
    when the feed has none. Version 2 made them optional; a version 1 message (as recorded
    before) still reads, and carries both sizes as version 1 required.
    """

    # Says in the JSON Schema what the validator below enforces, for consumers that read only it.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"schema_version": {"const": 1}}, "required": ["schema_version"]},
            "then": {
                "required": ["bid_size", "ask_size"],
                "properties": {"bid_size": {"type": "number"}, "ask_size": {"type": "number"}},
            },
        }
    )

    schema_version: Literal[1, 2] = 2
    kind: Literal["quote"] = "quote"
    tick_id: TickId
    instrument: Instrument
    ts_event_ns: TimestampNs
    bid: float
    ask: float
    bid_size: float | None = None
    ask_size: float | None = None
    seq: int | None = None
    ts_recv_ns: TimestampNs | None = None

    @model_validator(mode="after")
    def _version_1_has_sizes(self) -> QuoteTick:
        if self.schema_version == 1 and (self.bid_size is None or self.ask_size is None):
            raise ValueError("a schema_version 1 quote carries bid_size and ask_size")
        return self

    @property
    def reference_price(self) -> float:
        """Price that features and labels use: the mid (each half taken first where the sum of
        two prices near the largest float would overflow)."""
        mid = 0.5 * (self.bid + self.ask)
        return mid if mid != math.inf else 0.5 * self.bid + 0.5 * self.ask


Tick = Annotated[TradeTick | QuoteTick, Field(discriminator="kind")]
TICK_ADAPTER: TypeAdapter[TradeTick | QuoteTick] = TypeAdapter(Tick)


class SourceRef(Contract):
    """Where a message came from: topic (or file), partition and offset (or row)."""

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class CleanTick(Contract):
    """A tick that passed validation, with its lineage back to ``ticks.raw``."""

    schema_version: Literal[1] = 1
    tick: Tick
    source: SourceRef

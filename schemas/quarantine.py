"""Quarantine records: bad input kept whole, with a reason a person can act on."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from tickwise.schemas.base import Contract
from tickwise.schemas.ticks import SourceRef


class ReasonCode(StrEnum):
    """Stable reason codes. Values never change meaning; new ones are appended."""

    MALFORMED_JSON = "MALFORMED_JSON"
    SCHEMA_VIOLATION = "SCHEMA_VIOLATION"
    OVERSIZED = "OVERSIZED"
    INVALID_PRICE = "INVALID_PRICE"
    INVALID_SIZE = "INVALID_SIZE"
    CROSSED_QUOTE = "CROSSED_QUOTE"
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    DUPLICATE = "DUPLICATE"
    OUT_OF_ORDER = "OUT_OF_ORDER"
    OPERATOR_ERROR = "OPERATOR_ERROR"
    LOCKED_QUOTE = "LOCKED_QUOTE"
    FUTURE_TIMESTAMP = "FUTURE_TIMESTAMP"
    STALE_TIMESTAMP = "STALE_TIMESTAMP"
    PRICE_OUTLIER = "PRICE_OUTLIER"


# Kafka header set on a message that `tickwise quarantine replay` put back on ticks.raw; its value
# is the JSON of the original QuarantineRecord's source (topic, partition, offset).
REINJECTED_HEADER = "tickwise-reinjected"


class QuarantineRecord(Contract):
    """A message that did not pass validation; ``raw`` is what arrived, byte for byte."""

    schema_version: Literal[1] = 1
    reason: ReasonCode
    detail: str
    raw: str
    raw_encoding: Literal["utf-8", "base64"]
    source: SourceRef
    instrument: str | None = None
    tick_id: str | None = None

"""Quarantine records: what arrived, byte for byte, with a reason and a readable detail."""

from __future__ import annotations

import base64

from pydantic import ValidationError

from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import SourceRef

PRICE_FIELDS = frozenset({"price", "bid", "ask"})
SIZE_FIELDS = frozenset({"size", "bid_size", "ask_size"})
NUMBER_ERRORS = frozenset({"finite_number", "float_parsing", "float_type"})


def quarantine(
    raw: bytes,
    source: SourceRef,
    reason: ReasonCode,
    detail: str,
    instrument: str | None = None,
    tick_id: str | None = None,
) -> QuarantineRecord:
    """Build a quarantine record that keeps ``raw`` byte for byte (base64 when not UTF-8).

    Examples
    --------
    >>> src = SourceRef(topic="ticks.raw", partition=0, offset=7)
    >>> quarantine(b"\\xff", src, ReasonCode.MALFORMED_JSON, "junk").raw_encoding
    'base64'
    """
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return QuarantineRecord(
        reason=reason,
        detail=detail[:1000],
        raw=text,
        raw_encoding=encoding,
        source=source,
        instrument=instrument,
        tick_id=tick_id,
    )


def raw_bytes(record: QuarantineRecord) -> bytes:
    """The exact bytes a quarantine record kept (inverse of ``quarantine``)."""
    if record.raw_encoding == "base64":
        return base64.b64decode(record.raw)
    return record.raw.encode("utf-8")


def schema_reason(exc: ValidationError) -> tuple[ReasonCode, str]:
    """Map pydantic's first error to our stable reason code and a readable detail."""
    first = exc.errors(include_url=False, include_input=False)[0]
    kind, loc = first["type"], first["loc"]
    where = ".".join(str(p) for p in loc) or "message"
    if kind in {"json_invalid", "json_type"}:
        return ReasonCode.MALFORMED_JSON, f"not valid JSON: {first['msg']}"
    if loc and loc[-1] in PRICE_FIELDS and kind in NUMBER_ERRORS:
        return ReasonCode.INVALID_PRICE, f"{where}: {first['msg']}"
    if loc and loc[-1] in SIZE_FIELDS and kind in NUMBER_ERRORS:
        return ReasonCode.INVALID_SIZE, f"{where}: {first['msg']}"
    return ReasonCode.SCHEMA_VIOLATION, f"{where}: {first['msg']} ({kind})"

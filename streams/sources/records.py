"""What every file source shares: the record a feed publishes, column mapping and time parsing.

A row whose fields cannot be parsed is still made into a record carrying the text it had, so that
the validator quarantines it with a reason instead of the feed dropping it. Each format turns its
rows into a header and text cells and goes through ``table_layout`` and ``row_record`` here, so a
column, a time format or a zone means the same thing in every format.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from pydantic_core import to_json

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_UNITS = {"epoch_s": 10**9, "epoch_ms": 10**6, "epoch_us": 10**3, "epoch_ns": 1}
ALIASES = {
    "time": ("time", "timestamp", "datetime", "date_time", "ts", "ts_event"),
    "price": ("price", "last", "trade_price"),
    "size": ("size", "volume", "qty", "quantity"),
    "bid": ("bid", "bid_price", "bid_px"),
    "ask": ("ask", "ask_price", "ask_px", "offer"),
    "bid_size": ("bid_size", "bid_qty", "bid_sz"),
    "ask_size": ("ask_size", "ask_qty", "ask_sz"),
    "symbol": ("symbol", "instrument", "ticker"),
}

# Optional in a quote: no column, or an empty cell, means the quote has no size on that side.
QUOTE_SIZES = frozenset({"bid_size", "ask_size"})


class SourceError(ValueError):
    """The source cannot be read as configured (a user error, reported before publishing)."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One message for ``ticks.raw``: its key (instrument, may be empty) and payload bytes."""

    key: str
    payload: bytes
    origin: str
    index: int
    ts_event_ns: int | None = None
    injected: str | None = None  # the reason code an injected bad tick must be quarantined with
    headers: tuple[tuple[str, bytes], ...] | None = None  # Kafka headers, e.g. re-injection


@dataclass(frozen=True)
class ColumnMap:
    """How a file's columns map to tick fields; unset names are found by common aliases."""

    time_col: str | None = None
    price_col: str | None = None
    size_col: str | None = None
    bid_col: str | None = None
    ask_col: str | None = None
    bid_size_col: str | None = None
    ask_size_col: str | None = None
    symbol_col: str | None = None
    symbol: str | None = None
    time_format: str = "auto"
    tz: str | None = None


DEFAULT_COLUMNS = ColumnMap()  # every column found by its common aliases


def _number(text: str) -> float | str:
    """Parse a number; keep the original text when it is not a finite number."""
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


class TimeParser:
    """Parse one file's timestamps to integer UTC nanoseconds.

    Naive timestamps need an explicit zone: guessing one silently shifts every label horizon.

    Examples
    --------
    >>> TimeParser("auto", "America/Chicago")("2013-09-01 17:00:00.083")
    1378072800083000000
    >>> TimeParser("epoch_ms", None)("1500")
    1500000000
    """

    def __init__(self, time_format: str, tz: str | None) -> None:
        self.time_format = time_format
        self.zone = ZoneInfo(tz) if tz else None
        self._last: tuple[str | None, int] = (None, 0)

    def __call__(self, text: str) -> int:
        if text == self._last[0]:
            return self._last[1]
        unit = EPOCH_UNITS.get(self.time_format)
        if unit is not None:
            try:  # Decimal, not float: a fractional epoch must keep every nanosecond
                ns = int(Decimal(text.strip()) * unit)
            except InvalidOperation as exc:
                raise ValueError(f"not an epoch number: {text!r}") from exc
        else:
            if self.time_format == "auto":
                parsed = datetime.fromisoformat(text.strip().replace("/", "-"))
            else:
                parsed = datetime.strptime(text.strip(), self.time_format)
            if parsed.tzinfo is None:
                if self.zone is None:
                    raise SourceError(
                        f"timestamp {text!r} has no zone: pass --tz (e.g. --tz UTC or "
                        "--tz America/Chicago)"
                    )
                parsed = parsed.replace(tzinfo=self.zone)
            delta = parsed - EPOCH
            ns = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000
        self._last = (text, ns)
        return ns


def _resolve(header: list[str], wanted: str | None, field: str) -> str | None:
    if wanted is not None:
        if wanted not in header:
            raise SourceError(f"column {wanted!r} not in the file's header {header}")
        return wanted
    lowered = {h.lower(): h for h in header}
    return next((lowered[a] for a in ALIASES[field] if a in lowered), None)


def table_layout(
    header: list[str], columns: ColumnMap
) -> tuple[dict[str, int], tuple[str, ...], bool]:
    """Where each tick field is in a row of ``header``, which value fields, and quotes or not."""
    col = {
        f: _resolve(header, getattr(columns, f"{f}_col"), f)
        for f in ("time", "price", "size", "bid", "ask", "bid_size", "ask_size", "symbol")
    }
    if col["time"] is None:
        raise SourceError(f"no time column in {header}: pass --time-col")
    is_quote = col["bid"] is not None and col["ask"] is not None
    if not is_quote and col["price"] is None:
        raise SourceError(f"no price (or bid and ask) column in {header}: pass --price-col")
    if col["symbol"] is None and columns.symbol is None:
        raise SourceError(f"no symbol column in {header}: pass --symbol or --symbol-col")
    if is_quote and (col["bid_size"] is None) != (col["ask_size"] is None):
        raise SourceError(
            f"a size column for one side of the quote only in {header}: pass both "
            "--bid-size-col and --ask-size-col, or neither for quotes without sizes"
        )
    idx = {f: header.index(c) for f, c in col.items() if c is not None}
    value_fields = ("bid", "ask", "bid_size", "ask_size") if is_quote else ("price", "size")
    return idx, value_fields, is_quote


def row_record(
    row: list[str],
    idx: dict[str, int],
    value_fields: tuple[str, ...],
    is_quote: bool,
    fixed_symbol: str | None,
    parse_time: TimeParser,
    origin: str,
    row_no: int,
) -> RawRecord:
    """One row of text cells as the message a feed publishes; unparsable cells keep their text."""

    def cell(f: str) -> str | None:
        i = idx.get(f)
        return row[i] if i is not None and i < len(row) else None

    symbol = fixed_symbol if fixed_symbol is not None else (cell("symbol") or "")
    time_text = cell("time")
    ts: int | str | None
    try:
        ts = parse_time(time_text) if time_text is not None else None
    except ValueError as exc:
        if isinstance(exc, SourceError):
            raise
        ts = time_text
    msg: dict[str, object] = {
        "kind": "quote" if is_quote else "trade",
        "tick_id": f"{origin}:{row_no}",
        "instrument": symbol,
        "ts_event_ns": ts,
    }
    for f in value_fields:
        text = cell(f)
        if f in QUOTE_SIZES and not (text or "").strip():
            continue  # quotes without sizes (FX, indicative): the fields are left out
        msg[f] = _number(text) if text is not None else (1.0 if f == "size" else None)
    return RawRecord(symbol, to_json(msg), origin, row_no, ts if isinstance(ts, int) else None)


def cell_text(value: Any) -> str:
    """One cell as the text a CSV would hold (None as empty, datetimes in ISO 8601)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float | int | str):
        return str(value)
    return json.dumps(value, default=str)

"""Feed adapters that need no broker: recorded files and the synthetic generator.

Both produce ``RawRecord``s: the exact bytes a feed puts on ``ticks.raw``, keyed by instrument.
``tickwise feed`` publishes them; ``tickwise backtest`` validates them in-process. Because the
backtest starts from the same bytes, a row the validator would quarantine live is quarantined
in replay too. A row whose fields cannot be parsed is still emitted, carrying the text it had,
so that the validator quarantines it with a reason instead of the feed dropping it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path
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


def _open_text(path: Path) -> Iterable[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="")
    return open(path, newline="")


def _resolve(header: list[str], wanted: str | None, field: str) -> str | None:
    if wanted is not None:
        if wanted not in header:
            raise SourceError(f"column {wanted!r} not in the file's header {header}")
        return wanted
    lowered = {h.lower(): h for h in header}
    return next((lowered[a] for a in ALIASES[field] if a in lowered), None)


def read_csv(path: str | Path, columns: ColumnMap = ColumnMap()) -> Iterator[RawRecord]:
    """Stream a CSV or CSV.gz of trades (price, size) or quotes (bid, ask, optional sizes)."""
    path = Path(path)
    parse_time = TimeParser(columns.time_format, columns.tz)
    with _open_text(path) as fh:  # type: ignore[attr-defined]
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise SourceError(f"{path} is empty or has no header row")
        idx, value_fields, is_quote = table_layout(header, columns)
        origin = path.name
        for row_no, row in enumerate(reader):
            yield _row_record(
                row, idx, value_fields, is_quote, columns.symbol, parse_time, origin, row_no
            )


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


def _row_record(
    row: list[str],
    idx: dict[str, int],
    value_fields: tuple[str, ...],
    is_quote: bool,
    fixed_symbol: str | None,
    parse_time: TimeParser,
    origin: str,
    row_no: int,
) -> RawRecord:
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


# --- the synthetic feed ----------------------------------------------------------------------

SYNTHETIC_START_NS = 1_704_205_800 * 10**9  # 2024-01-02T14:30:00Z, fixed so seeds reproduce
SYNTHETIC_INSTRUMENTS = {"ES": (4700.0, 0.25), "NQ": (16800.0, 0.25), "CL": (72.0, 0.01)}


BAD_KINDS = (
    "DUPLICATE",
    "MALFORMED_JSON",
    "INVALID_PRICE",
    "CROSSED_QUOTE",
    "SCHEMA_VIOLATION",
    "INVALID_SIZE",
    "OVERSIZED",
    "OUT_OF_ORDER",
    "STALE_TIMESTAMP",
    "FUTURE_TIMESTAMP",
    "PRICE_OUTLIER",
    "LOCKED_QUOTE",
    "UNKNOWN_INSTRUMENT",
)
# What `bad_rate` injects unless told otherwise: the kinds every default config quarantines.
# (LOCKED_QUOTE needs `reject_locked_quotes`, UNKNOWN_INSTRUMENT an `instruments` list.)
DEFAULT_BAD_KINDS = BAD_KINDS[:5]
# Kinds the validator accepts once enough agree; never injected twice in a row per instrument.
_CONFIRMABLE = frozenset({"STALE_TIMESTAMP", "FUTURE_TIMESTAMP", "PRICE_OUTLIER"})
UNKNOWN_SYMBOL = "ZZ-UNKNOWN"
REGIMES = {  # (noise multiplier, trend in ticks per step, chance of an event-time gap)
    "calm": (1.0, 0.0, 0.0),
    "trending": (1.0, 0.4, 0.0),
    "volatile": (4.0, 0.0, 0.0),
    "gaps": (1.0, 0.0, 0.002),
}


def synthetic(
    seed: int,
    count: int,
    instruments: Iterable[str] | None = None,
    bad_rate: float = 0.0,
    regime: str = "calm",
    bad_kinds: Iterable[str] | None = None,
) -> Iterator[RawRecord]:
    """A reproducible multi-instrument stream of quotes and trades in event-time order.

    Returns follow a weakly autocorrelated process, so a model has something real (and small) to
    find; arrivals are Poisson with a mean gap of 20 ms per instrument. ``regime`` shapes the
    path: ``calm``, ``trending`` (a steady drift), ``volatile`` (four times the noise) or
    ``gaps`` (now and then 5 to 30 minutes of event time without ticks). With ``bad_rate`` > 0
    a share of the records are bad ticks of ``bad_kinds`` (default ``DEFAULT_BAD_KINDS``), each
    marked in ``RawRecord.injected`` with the reason it must be quarantined for.

    Examples
    --------
    >>> [r.key for r in synthetic(seed=1, count=4)] == [r.key for r in synthetic(seed=1, count=4)]
    True
    >>> sorted({r.injected for r in synthetic(seed=1, count=2000, bad_rate=0.1)} - {None})
    ['CROSSED_QUOTE', 'DUPLICATE', 'INVALID_PRICE', 'MALFORMED_JSON', 'SCHEMA_VIOLATION']
    """
    if regime not in REGIMES:
        raise SourceError(f"unknown regime {regime!r}; choose one of {sorted(REGIMES)}")
    kinds = tuple(bad_kinds) if bad_kinds is not None else DEFAULT_BAD_KINDS
    unknown = set(kinds) - set(BAD_KINDS)
    if unknown or not kinds:
        raise SourceError(f"bad kinds {sorted(unknown)} unknown; choose from {list(BAD_KINDS)}")
    noise, trend, gap_chance = REGIMES[regime]
    rng = random.Random(seed)
    names = list(instruments or SYNTHETIC_INSTRUMENTS)
    state = {}
    for name in names:
        base, tick = SYNTHETIC_INSTRUMENTS.get(name, (100.0, 0.01))
        state[name] = {"mid": base, "tick": tick, "drift": 0.0, "t": SYNTHETIC_START_NS, "k": 0}
    last_good: dict[str, tuple[bytes, int, float]] = {}
    last_bad: dict[str, bool] = {}
    for i in range(count):
        name = min(names, key=lambda n: (state[n]["t"], n))
        s = state[name]
        if bad_rate > 0.0 and name in last_good and rng.random() < bad_rate:
            kind = kinds[rng.randrange(len(kinds))]
            if kind in _CONFIRMABLE and last_bad.get(name):
                kind = "MALFORMED_JSON"
            payload = _bad_tick(rng, kind, name, s["t"], seed, i, last_good[name])
            last_bad[name] = True
            yield RawRecord(name, payload, "synthetic", i, s["t"], kind)
            continue
        last_bad[name] = False
        tick = s["tick"]
        s["drift"] = 0.97 * s["drift"] + rng.gauss(0.0, 0.15)
        step = s["drift"] + rng.gauss(0.0, 1.0) * noise + trend
        s["mid"] = max(tick * 10, s["mid"] + step * tick * 0.5)
        bid = math.floor(s["mid"] / tick) * tick
        ask = bid + tick
        k = s["k"]
        msg: dict[str, object] = {
            "tick_id": f"syn{seed}-{name}-{k}",
            "instrument": name,
            "ts_event_ns": s["t"],
        }
        if k % 3 == 2:
            price = round(ask if s["drift"] > 0 else bid, 6)
            msg |= {"kind": "trade", "price": price, "size": float(rng.randint(1, 20))}
        else:
            msg |= {
                "kind": "quote",
                "bid": round(bid, 6),
                "ask": round(ask, 6),
                "bid_size": float(rng.randint(1, 50)),
                "ask_size": float(rng.randint(1, 50)),
            }
            price = 0.5 * (msg["bid"] + msg["ask"])  # type: ignore[operator]
        payload = to_json(msg)
        last_good[name] = (payload, s["t"], price)
        yield RawRecord(name, payload, "synthetic", i, s["t"])
        s["k"] = k + 1
        s["t"] += max(1, int(rng.expovariate(1.0 / 20e6)))
        if gap_chance and rng.random() < gap_chance:
            s["t"] += rng.randrange(300, 1800) * 10**9


def _bad_tick(
    rng: random.Random,
    kind: str,
    name: str,
    ts: int,
    seed: int,
    i: int,
    last: tuple[bytes, int, float],
) -> bytes:
    """One bad tick of the given kind (a ``BAD_KINDS`` reason code)."""
    previous, last_ts, last_price = last
    tick_id = f"syn{seed}-{name}-bad{i}"
    if kind == "DUPLICATE":
        return previous
    if kind == "MALFORMED_JSON":
        return previous[: rng.randrange(1, len(previous))]
    trade: dict[str, object] = {
        "kind": "trade",
        "tick_id": tick_id,
        "instrument": name,
        "ts_event_ns": ts,
        "price": round(last_price, 6),
        "size": 1.0,
    }
    quote: dict[str, object] = {
        "kind": "quote",
        "tick_id": tick_id,
        "instrument": name,
        "ts_event_ns": ts,
        "bid": 101.0,
        "ask": 100.0,
        "bid_size": 1.0,
        "ask_size": 1.0,
    }
    if kind == "INVALID_PRICE":
        return to_json(trade | {"price": -1.0})
    if kind == "CROSSED_QUOTE":
        return to_json(quote)
    if kind == "SCHEMA_VIOLATION":
        return to_json({k: v for k, v in trade.items() if k != "ts_event_ns"} | {"price": 1.0})
    if kind == "INVALID_SIZE":
        return to_json(trade | {"size": -float(rng.randint(0, 5))})
    if kind == "OVERSIZED":
        return to_json(trade | {"note": "x" * 20_000})
    if kind == "OUT_OF_ORDER":
        return to_json(trade | {"ts_event_ns": last_ts - rng.randrange(10**6, 10**9)})
    if kind == "STALE_TIMESTAMP":
        return to_json(
            trade | {"ts_event_ns": last_ts - rng.randrange(2 * 3600, 30 * 86400) * 10**9}
        )
    if kind == "FUTURE_TIMESTAMP":
        return to_json(trade | {"ts_event_ns": ts + rng.randrange(5 * 86400, 50 * 86400) * 10**9})
    if kind == "PRICE_OUTLIER":
        factor = 1.0 + rng.choice((-1.0, 1.0)) * rng.uniform(0.2, 0.5)
        return to_json(trade | {"price": round(last_price * factor, 6)})
    if kind == "LOCKED_QUOTE":
        return to_json(quote | {"bid": round(last_price, 6), "ask": round(last_price, 6)})
    return to_json(trade | {"instrument": UNKNOWN_SYMBOL})  # UNKNOWN_INSTRUMENT


# --- command-line options shared by `tickwise feed` and `tickwise backtest` -------------------


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the column-mapping and synthetic options; feed and backtest read files the same way."""
    add = parser.add_argument
    for name in ("time", "price", "size", "bid", "ask", "bid-size", "ask-size", "symbol"):
        add(f"--{name}-col", default=None, help=f"column holding the {name.replace('-', ' ')}")
    add("--symbol", default=None, help="fixed instrument for files without a symbol column")
    add(
        "--time-format",
        default="auto",
        help="auto (ISO 8601), epoch_s|epoch_ms|epoch_us|epoch_ns, or a strptime pattern",
    )
    add("--tz", default=None, help="zone of naive timestamps, e.g. UTC or America/Chicago")
    add("--sort", action="store_true", help="sort the files' records by event time first")
    add("--synthetic", action="store_true", help="generate a synthetic stream instead of a file")
    add("--seed", type=int, default=1, help="seed of the synthetic stream")
    add("--count", type=int, default=None, help="stop after this many records")
    add("--regime", default="calm", help="synthetic regime: calm, trending, volatile or gaps")
    add(
        "--bad-kinds",
        default=None,
        help="comma-separated reason codes to inject (default: the five every config catches)",
    )
    add(
        "--bad-rate",
        type=float,
        default=0.0,
        help="share of synthetic records replaced by bad ticks (to watch quarantine work)",
    )


def open_sources(args: argparse.Namespace, paths: Iterable[str]) -> Iterator[RawRecord]:
    """The records the options describe: the synthetic stream or the files, in order."""
    if args.synthetic:
        count = args.count if args.count is not None else 20_000
        kinds = args.bad_kinds.split(",") if args.bad_kinds else None
        return synthetic(
            args.seed, count, bad_rate=args.bad_rate, regime=args.regime, bad_kinds=kinds
        )
    columns = ColumnMap(
        time_col=args.time_col,
        price_col=args.price_col,
        size_col=args.size_col,
        bid_col=args.bid_col,
        ask_col=args.ask_col,
        bid_size_col=args.bid_size_col,
        ask_size_col=args.ask_size_col,
        symbol_col=args.symbol_col,
        symbol=args.symbol,
        time_format=args.time_format,
        tz=args.tz,
    )
    from streams.formats import read_file, sorted_by_event_time

    records: Iterator[RawRecord] = (rec for path in paths for rec in read_file(path, columns))
    if getattr(args, "sort", False):
        records = iter(sorted_by_event_time(records))
    return islice(records, args.count) if args.count is not None else records

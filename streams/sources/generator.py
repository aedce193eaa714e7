"""The synthetic feed: a reproducible stream of trades and quotes, with bad ticks on request.

The same seed gives the same bytes, so a test, a demo and a benchmark can each start from a
stream nobody recorded and still compare runs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator

from pydantic_core import to_json

from tickwise.streams.sources.records import RawRecord, SourceError

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

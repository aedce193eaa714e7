"""A batch of ticks as columns, and the bulk decoder from wire bytes into one.

``decode`` turns the raw messages of one partition (what one consume call returned, or rows a
file reader rendered) into a ``TickBatch``. Messages in the common shape take a fast path
(orjson plus exact shape checks); anything else goes through the tick contract's own pydantic
validation, so every message is accepted or refused exactly as the per-message validator
would, with the same reason code and detail.

Tick ids and sequence numbers enter the duplicate check as 64-bit FNV-1a hashes of their text:
two different ids of one instrument collide with probability about 2**-64 per pair.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from numba import njit
from pydantic import ValidationError

from tickwise.schemas.quarantine import ReasonCode
from tickwise.schemas.ticks import TICK_ADAPTER, SourceRef

KIND_TRADE, KIND_QUOTE = 0, 1
# Row verdicts: 0 is clean, otherwise 1 + the reason code's position in ``ReasonCode``.
REASONS: tuple[ReasonCode, ...] = tuple(ReasonCode)
CLEAN = 0


def reason_index(reason: ReasonCode) -> int:
    """The verdict number a kernel writes for ``reason``."""
    return REASONS.index(reason) + 1


R_OVERSIZED = reason_index(ReasonCode.OVERSIZED)
R_UNKNOWN = reason_index(ReasonCode.UNKNOWN_INSTRUMENT)
R_MALFORMED = reason_index(ReasonCode.MALFORMED_JSON)

# the contract's instrument pattern, matched whole (``fullmatch``: ``$`` would let "ES\n" by)
INSTRUMENT_RE = re.compile(r"[A-Za-z0-9._:/\-]+")
_TRADE_KEYS = frozenset(
    {"schema_version", "kind", "tick_id", "instrument", "ts_event_ns", "price", "size"}
    | {"seq", "ts_recv_ns"}
)
_QUOTE_KEYS = frozenset(
    {"schema_version", "kind", "tick_id", "instrument", "ts_event_ns", "bid", "ask"}
    | {"bid_size", "ask_size", "seq", "ts_recv_ns"}
)
_TS_LIMIT = 2**63
# the per-row numpy columns of a batch
ARRAYS = (
    "instrument",
    "kind",
    "ts",
    "price",
    "size",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "id_key",
    "seq_key",
    "has_seq",
    "reinjected",
    "verdict",
    "offsets",
)
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


class SymbolTable:
    """Instrument names to the row index the kernels use; indexes only grow."""

    def __init__(self, names: Sequence[str] = ()) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}
        for name in names:
            self.index(name)

    def index(self, name: str) -> int:
        """The index of ``name``, added at the end when new."""
        i = self._index.get(name)
        if i is None:
            i = self._index[name] = len(self.names)
            self.names.append(name)
        return i

    def __len__(self) -> int:
        return len(self.names)


@njit(cache=True)
def _fnv1a(buffer: np.ndarray, ends: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty(ends.size, dtype=np.uint64)
    start = 0
    for i in range(ends.size):
        h = FNV_OFFSET
        for j in range(start, ends[i]):
            h = (h ^ np.uint64(buffer[j])) * FNV_PRIME
        out[i] = h
        start = ends[i]
    return out


def fnv1a(texts: Sequence[str]) -> np.ndarray:
    """64-bit FNV-1a of each text's UTF-8 bytes (the duplicate check's keys).

    >>> int(fnv1a(["a"])[0]) == 0xAF63DC4C8601EC8C
    True
    """
    encoded = [t.encode("utf-8") for t in texts]
    ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
    buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return _fnv1a(buffer, ends)


@dataclass(slots=True)
class TickBatch:
    """Ticks of one partition, in arrival order, as columns.

    ``verdict`` holds what decoding already decided (``OVERSIZED``, ``MALFORMED_JSON``,
    schema and number errors; ``detail`` has their texts); the validation kernel fills in the
    rest. Absent values are NaN (sizes of quotes without sizes, bid/ask of trades).
    """

    instrument: np.ndarray  # int32, -1 when the message named none that could be read
    kind: np.ndarray  # uint8
    ts: np.ndarray  # int64 event time, ns
    price: np.ndarray  # float64 reference price: the trade price, or the mid of a quote
    size: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    id_key: np.ndarray  # uint64 FNV-1a of the tick id
    seq_key: np.ndarray  # uint64 FNV-1a of the sequence number's decimal text
    has_seq: np.ndarray  # bool
    reinjected: np.ndarray  # bool: put back from quarantine by an operator
    verdict: np.ndarray  # uint8, see ``REASONS``
    payloads: list[bytes]
    tick_ids: list[str | None]
    topic: str
    partition: int
    offsets: np.ndarray  # int64
    detail: dict[int, str] = field(default_factory=dict)
    # each row's message as decoded (None where refused), kept on request: the live worker
    # renders the clean ticks it publishes from them
    messages: list[dict | None] | None = None
    # each row's sequence number as the contract reads it ("" when none): refusals quote it
    seq_texts: list[str] = field(default_factory=list)
    # each row's (topic, partition) where they are not all ``topic`` and ``partition``: ticks
    # a reordering validator held from a batch of another origin (replay merges files)
    lineage: list[tuple[str, int]] | None = None

    def __len__(self) -> int:
        return len(self.payloads)

    def source(self, row: int) -> SourceRef:
        """Where row ``row`` came from (the lineage every output carries)."""
        topic, partition = self.lineage[row] if self.lineage else (self.topic, self.partition)
        return SourceRef(topic=topic, partition=partition, offset=int(self.offsets[row]))

    def take(self, rows: np.ndarray, own: bool = False) -> TickBatch:
        """The batch of ``rows`` (indexes, in the order given): what a reordering validator
        sends on, or (``own``: its per-row texts copied out, so it holds no other batch
        alive) keeps back. Otherwise bytes and ids are looked up when asked, so rows a file
        reader renders on demand stay unrendered."""
        rows = np.asarray(rows, np.int64)

        def pick(seq: Sequence[Any]) -> Sequence[Any]:
            view = Picked(seq, rows)
            return list(view) if own else view

        position = {row: j for j, row in enumerate(rows.tolist())} if self.detail else {}
        messages, lineage = self.messages, self.lineage
        return TickBatch(
            *(getattr(self, name)[rows] for name in ARRAYS[:-1]),
            payloads=pick(self.payloads),  # type: ignore[arg-type]
            tick_ids=pick(self.tick_ids),  # type: ignore[arg-type]
            topic=self.topic,
            partition=self.partition,
            offsets=self.offsets[rows],
            detail={position[i]: d for i, d in self.detail.items() if i in position},
            messages=None if messages is None else pick(messages),  # type: ignore[arg-type]
            seq_texts=pick(self.seq_texts) if len(self.seq_texts) == len(self) else [],  # type: ignore[arg-type]
            lineage=None if lineage is None else [lineage[i] for i in rows.tolist()],
        )


class Picked(Sequence[Any]):
    """Rows ``rows`` of ``base``, looked up when asked."""

    def __init__(self, base: Sequence[Any], rows: np.ndarray) -> None:
        self.base, self.rows = base, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        return self.base[int(self.rows[i])]


class Joined(Sequence[Any]):
    """``first``'s rows, then ``then``'s, looked up when asked."""

    def __init__(self, first: Sequence[Any], then: Sequence[Any]) -> None:
        self.first, self.then = first, then

    def __len__(self) -> int:
        return len(self.first) + len(self.then)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        if not 0 <= i < len(self):
            raise IndexError(i)
        n = len(self.first)
        return self.first[i] if i < n else self.then[i - n]


def _lineage(batch: TickBatch) -> list[tuple[str, int]]:
    if batch.lineage is not None:
        return batch.lineage
    return [(batch.topic, batch.partition)] * len(batch)


def _texts(batch: TickBatch) -> Sequence[str]:
    """Each row's sequence number text (a file reader's batch, never asked, has none)."""
    return batch.seq_texts if len(batch.seq_texts) == len(batch) else [""] * len(batch)


def concat(first: TickBatch, then: TickBatch) -> TickBatch:
    """``first``'s rows, then ``then``'s, under ``then``'s topic and partition (each row keeps
    its own lineage)."""
    if len(first) == 0:
        return then
    lineage = None
    mixed = (first.topic, first.partition) != (then.topic, then.partition)
    if mixed or first.lineage is not None or then.lineage is not None:
        lineage = _lineage(first) + _lineage(then)
    n = len(first)
    both = first.messages is not None and then.messages is not None
    return TickBatch(
        *(np.concatenate([getattr(first, a), getattr(then, a)]) for a in ARRAYS[:-1]),
        payloads=Joined(first.payloads, then.payloads),  # type: ignore[arg-type]
        tick_ids=Joined(first.tick_ids, then.tick_ids),  # type: ignore[arg-type]
        topic=then.topic,
        partition=then.partition,
        offsets=np.concatenate([first.offsets, then.offsets]),
        detail={**first.detail, **{n + i: d for i, d in then.detail.items()}},
        messages=Joined(first.messages, then.messages) if both else None,  # type: ignore[arg-type]
        seq_texts=Joined(_texts(first), _texts(then)),  # type: ignore[arg-type]
        lineage=lineage,
    )


def _number(value: object) -> bool:
    return type(value) is float or (type(value) is int and -_TS_LIMIT <= value < _TS_LIMIT)


def _fast(msg: object) -> bool:
    """Whether the tick contract would accept ``msg`` exactly as it stands, checked cheaply;
    anything unusual returns False and goes to the contract's own validation."""
    if type(msg) is not dict:
        return False
    kind = msg.get("kind")
    version = msg.get("schema_version", 1 if kind == "trade" else 2)
    if type(version) is not int:
        return False
    if kind == "trade":
        if version != 1 or not _TRADE_KEYS.issuperset(msg):
            return False
        if not (_number(msg.get("price")) and _number(msg.get("size"))):
            return False
    elif kind == "quote":
        if version not in (1, 2) or not _QUOTE_KEYS.issuperset(msg):
            return False
        if not (_number(msg.get("bid")) and _number(msg.get("ask"))):
            return False
        sizes = (msg.get("bid_size"), msg.get("ask_size"))
        if version == 1 and None in sizes:
            return False  # version 1 quotes carry both sizes: the contract words the refusal
        if not all(v is None or _number(v) for v in sizes):
            return False
    else:
        return False
    tick_id, instrument, ts = msg.get("tick_id"), msg.get("instrument"), msg.get("ts_event_ns")
    recv = msg.get("ts_recv_ns")
    return (
        type(tick_id) is str
        and 1 <= len(tick_id) <= 128
        and type(instrument) is str
        and 1 <= len(instrument) <= 64
        and INSTRUMENT_RE.fullmatch(instrument) is not None
        and type(ts) is int
        and 0 <= ts < _TS_LIMIT
        and (msg.get("seq") is None or type(msg.get("seq")) is int)
        and (recv is None or (type(recv) is int and 0 <= recv < _TS_LIMIT))
    )


def mid(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """``QuoteTick.reference_price`` of each row: the mid, halves first where the sum of two
    prices near the largest float would overflow."""
    with np.errstate(over="ignore"):
        out = 0.5 * (bid + ask)
        return np.where(out == np.inf, 0.5 * bid + 0.5 * ask, out)


def decode(
    payloads: Sequence[bytes],
    symbols: SymbolTable,
    topic: str,
    partition: int,
    offsets: np.ndarray | Sequence[int],
    max_message_bytes: int,
    reinjected: np.ndarray | None = None,
    keep_messages: bool = False,
) -> TickBatch:
    """Decode raw ``ticks.raw`` messages of one partition into columns, in bulk."""
    from tickwise.streams.operators.validation.records import schema_reason

    n = len(payloads)
    instrument = np.full(n, -1, dtype=np.int32)
    kind = np.zeros(n, dtype=np.uint8)
    ts = np.zeros(n, dtype=np.int64)
    vals = np.full((6, n), np.nan)  # price, size, bid, ask, bid_size, ask_size
    verdict = np.zeros(n, dtype=np.uint8)
    has_seq = np.zeros(n, dtype=np.bool_)
    tick_ids: list[str | None] = [None] * n
    seq_texts: list[str] = [""] * n
    detail: dict[int, str] = {}
    messages: list[dict | None] | None = [None] * n if keep_messages else None
    loads, index = orjson.loads, symbols.index
    for i, raw in enumerate(payloads):
        if len(raw) > max_message_bytes:
            verdict[i] = R_OVERSIZED
            detail[i] = f"{len(raw)} bytes exceeds the limit of {max_message_bytes}"
            continue
        try:
            msg = loads(raw)
        except orjson.JSONDecodeError:
            msg = None
        if not _fast(msg):
            try:
                msg = TICK_ADAPTER.validate_json(raw).model_dump()
            except ValidationError as exc:
                reason, text = schema_reason(exc)
                verdict[i] = reason_index(reason)
                detail[i] = text
                continue
        if messages is not None:
            messages[i] = msg
        instrument[i] = index(msg["instrument"])
        tick_ids[i] = msg["tick_id"]
        ts[i] = msg["ts_event_ns"]
        seq = msg.get("seq")
        if seq is not None:
            has_seq[i] = True
            seq_texts[i] = str(seq)
        if msg["kind"] == "trade":
            vals[0, i] = msg["price"]
            vals[1, i] = msg["size"]
        else:
            kind[i] = KIND_QUOTE
            vals[2, i], vals[3, i] = msg["bid"], msg["ask"]
            bid_size, ask_size = msg.get("bid_size"), msg.get("ask_size")
            vals[4, i] = np.nan if bid_size is None else bid_size
            vals[5, i] = np.nan if ask_size is None else ask_size
    quotes = kind == KIND_QUOTE
    vals[0, quotes] = mid(vals[2, quotes], vals[3, quotes])
    id_key = fnv1a([t or "" for t in tick_ids])
    seq_key = fnv1a(seq_texts)
    return TickBatch(
        instrument=instrument,
        kind=kind,
        ts=ts,
        price=vals[0],
        size=vals[1],
        bid=vals[2],
        ask=vals[3],
        bid_size=vals[4],
        ask_size=vals[5],
        id_key=id_key,
        seq_key=seq_key,
        has_seq=has_seq,
        reinjected=np.zeros(n, dtype=np.bool_) if reinjected is None else reinjected,
        verdict=verdict,
        payloads=list(payloads),
        tick_ids=tick_ids,
        topic=topic,
        partition=partition,
        offsets=np.asarray(offsets, dtype=np.int64),
        detail=detail,
        messages=messages,
        seq_texts=seq_texts,
    )


def _canonical(msg: dict) -> dict:
    """A decoded tick as its contract serialises it: every field, in order, numbers as
    floats where the contract says float."""
    get = msg.get
    if msg["kind"] == "trade":
        return {
            "schema_version": 1, "kind": "trade", "tick_id": msg["tick_id"],
            "instrument": msg["instrument"], "ts_event_ns": msg["ts_event_ns"],
            "price": float(msg["price"]), "size": float(msg["size"]),
            "seq": get("seq"), "ts_recv_ns": get("ts_recv_ns"),
        }  # fmt: skip
    bid_size, ask_size = get("bid_size"), get("ask_size")
    return {
        "schema_version": get("schema_version", 2), "kind": "quote",
        "tick_id": msg["tick_id"], "instrument": msg["instrument"],
        "ts_event_ns": msg["ts_event_ns"], "bid": float(msg["bid"]), "ask": float(msg["ask"]),
        "bid_size": None if bid_size is None else float(bid_size),
        "ask_size": None if ask_size is None else float(ask_size),
        "seq": get("seq"), "ts_recv_ns": get("ts_recv_ns"),
    }  # fmt: skip


def clean_tick_bytes(batch: TickBatch, rows: Sequence[int]) -> list[bytes]:
    """The ``CleanTick`` of each of ``rows``, as the exact bytes its contract would encode
    (``tests/unit/engine/test_front.py``), without building the contract per tick.

    Needs the batch decoded with ``keep_messages``.
    """
    messages = batch.messages
    if messages is None:
        raise ValueError("clean ticks are rendered from a batch decoded with keep_messages")
    dumps, offsets = orjson.dumps, batch.offsets.tolist()
    # the envelope around each tick, its fields in the contract's order
    head = b'{"schema_version":1,"tick":'

    def envelope(topic: str, partition: int) -> bytes:
        return b',"source":{"topic":' + dumps(topic) + b',"partition":%d,"offset":' % partition

    source = envelope(batch.topic, batch.partition)
    lineage = batch.lineage
    out = []
    for row in rows:
        msg = messages[row]
        assert msg is not None
        try:
            tick = dumps(_canonical(msg))
        except TypeError:  # a sequence number past 64 bits: the contract's own encoder
            tick = TICK_ADAPTER.dump_json(TICK_ADAPTER.validate_python(_canonical(msg)))
        if lineage is not None:
            source = envelope(*lineage[row])
        out.append(b"".join((head, tick, source, b"%d}}" % offsets[row])))
    return out

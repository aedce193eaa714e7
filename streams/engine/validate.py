"""Validation over a batch: the stateful rules of ``streams.operators.validation`` as a kernel.

The rules, their order and their texts are those of the per-message ``Validator`` (market
sanity, duplicates, event time with confirmation, the MAD outlier with confirmation), in both
its out-of-order policies; the oracle tests hold the two equal verdict for verdict. The state
is a set of arrays indexed by instrument, so a batch of any size continues exactly where the
last one stopped.

Under ``out_of_order_policy = "reorder"`` a tick is judged in two steps, as the per-message
validator judges it: the rules that need only its arrival (sanity, duplicates, event time, a
tick behind what was already released) when it arrives, the outlier rule when it leaves the
instrument's event-time buffer, in time order. So the validator's output is not the batch it
was given but the batch *as validated*: its rows in the order their verdicts were reached (a
permutation), without the ticks still held, with those held from earlier batches that left
now. Every later stage runs on that batch; the held ticks stay in ``ReorderState`` (pickled
with the rest, so a checkpoint carries them) until a later batch or ``flush`` releases them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.streams.config import ValidationConfig
from tickwise.streams.engine.batch import (
    KIND_TRADE,
    R_UNKNOWN,
    SymbolTable,
    TickBatch,
    concat,
    reason_index,
)
from tickwise.streams.engine.jit import kernel
from tickwise.streams.operators.units import BPS_PER_UNIT, UNIT_PER_BPS
from tickwise.streams.operators.validation.records import quarantine
from tickwise.streams.operators.validation.rules import MAD_TO_STD

R_INVALID_PRICE = reason_index(ReasonCode.INVALID_PRICE)
R_INVALID_SIZE = reason_index(ReasonCode.INVALID_SIZE)
R_CROSSED = reason_index(ReasonCode.CROSSED_QUOTE)
R_LOCKED = reason_index(ReasonCode.LOCKED_QUOTE)
R_DUPLICATE = reason_index(ReasonCode.DUPLICATE)
R_FUTURE = reason_index(ReasonCode.FUTURE_TIMESTAMP)
R_STALE = reason_index(ReasonCode.STALE_TIMESTAMP)
R_OUT_OF_ORDER = reason_index(ReasonCode.OUT_OF_ORDER)
R_OUTLIER = reason_index(ReasonCode.PRICE_OUTLIER)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(slots=True)
class Rules:
    """The rules of every known instrument, overrides applied, one array per rule."""

    tol_ms: np.ndarray
    tol_ns: np.ndarray
    max_future_s: np.ndarray
    max_future_ns: np.ndarray
    max_past_s: np.ndarray
    time_confirm: np.ndarray
    dedup_window: np.ndarray
    outlier_k: np.ndarray
    floor_bps: np.ndarray
    outlier_window: np.ndarray
    outlier_confirm: np.ndarray
    reject_locked: np.ndarray
    allowed: np.ndarray
    reorder: np.ndarray  # bool: the ``reorder`` out-of-order policy
    window_ns: np.ndarray  # int64: the reorder window
    max_ticks: np.ndarray  # int64: the most ticks the reorder buffer holds


def _rules_of(config: ValidationConfig, names: list[str]) -> Rules:
    allowed = set(config.instruments) if config.instruments is not None else None
    rows = []
    for name in names:
        r = config.rules_for(name)
        rows.append(
            (
                r.out_of_order_tolerance_ms,
                int(r.out_of_order_tolerance_ms * 1e6),
                r.max_future_s,
                int(r.max_future_s * 1e9),
                r.max_past_s,
                r.time_confirm_ticks,
                r.dedup_window,
                r.outlier_k,
                r.outlier_min_jump_bps,
                r.outlier_window,
                r.outlier_confirm_ticks,
                r.reject_locked_quotes,
                allowed is None or name in allowed,
                r.out_of_order_policy == "reorder",
                int(r.reorder_window_ms * 1e6),
                r.reorder_max_ticks,
            )
        )
    types = (float, np.int64, float, np.int64, float, np.int64, np.int64, float, float)
    types += (np.int64, np.int64, np.bool_, np.bool_, np.bool_, np.int64, np.int64)
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(types)
    return Rules(
        *(np.array(col, dtype=t) for col, t in zip(cols, types, strict=True))  # type: ignore[arg-type]
    )


@dataclass(slots=True)
class ValidationState:
    """Everything the rules remember, per instrument row (and one table of recent ids)."""

    watermark: np.ndarray  # int64, -1: nothing accepted yet
    last_price: np.ndarray  # float64, NaN: none
    moves: np.ndarray  # float64 [instrument, outlier window] ring of recent log moves
    moves_len: np.ndarray
    moves_head: np.ndarray
    pend_price: np.ndarray  # first pending outlier candidate
    pend_count: np.ndarray
    pend_time: np.ndarray  # last pending time-jump candidate
    pend_time_count: np.ndarray
    ids: np.ndarray  # uint64 [instrument, 2, dedup window] rings of recent tick-id/seq keys
    ids_len: np.ndarray  # int64 [instrument, 2]
    ids_head: np.ndarray
    table_keys: np.ndarray  # uint64 open-addressing set of every key in the rings
    table_used: np.ndarray  # bool
    table_size: np.ndarray  # int64 [1]

    @classmethod
    def empty(cls, moves_cap: int, ids_cap: int) -> ValidationState:
        return cls(
            watermark=np.zeros(0, np.int64),
            last_price=np.zeros(0),
            moves=np.zeros((0, moves_cap)),
            moves_len=np.zeros(0, np.int64),
            moves_head=np.zeros(0, np.int64),
            pend_price=np.zeros(0),
            pend_count=np.zeros(0, np.int64),
            pend_time=np.zeros(0, np.int64),
            pend_time_count=np.zeros(0, np.int64),
            ids=np.zeros((0, 2, ids_cap), np.uint64),
            ids_len=np.zeros((0, 2), np.int64),
            ids_head=np.zeros((0, 2), np.int64),
            table_keys=np.zeros(1024, np.uint64),
            table_used=np.zeros(1024, np.bool_),
            table_size=np.zeros(1, np.int64),
        )

    def grow(self, n: int) -> None:
        """Room for ``n`` instruments; new rows start empty."""
        extra = n - self.watermark.size
        if extra <= 0:
            return

        def pad(a: np.ndarray, fill: float) -> np.ndarray:
            return np.concatenate([a, np.full((extra, *a.shape[1:]), fill, dtype=a.dtype)])

        self.watermark = pad(self.watermark, -1)
        self.last_price = pad(self.last_price, np.nan)
        self.pend_price = pad(self.pend_price, np.nan)
        self.pend_time = pad(self.pend_time, 0)
        for name in ("moves", "moves_len", "moves_head", "pend_count", "pend_time_count"):
            setattr(self, name, pad(getattr(self, name), 0))
        for name in ("ids", "ids_len", "ids_head"):
            setattr(self, name, pad(getattr(self, name), 0))

    def reserve(self, rows: int, most: int) -> None:
        """Keep the id table at most half full after ``rows`` more insertions, or with
        ``most`` keys, the most it can hold: a table sized by the batch instead would sit in
        memory far from the cache for a window of a few thousand ids."""
        need = min(int(self.table_size[0]) + 2 * rows, most)
        cap = self.table_keys.size
        if 2 * need <= cap:
            return
        while 2 * need > cap:
            cap *= 2
        keys, used = np.zeros(cap, np.uint64), np.zeros(cap, np.bool_)
        _rehash(self.table_keys, self.table_used, keys, used)
        self.table_keys, self.table_used = keys, used


@dataclass(slots=True)
class ReorderState:
    """The reorder buffers: per instrument a min-heap of held ticks by (event time, arrival),
    whose rows are those of ``held``, the ticks themselves, carried across batches."""

    heap_ts: np.ndarray  # int64 [instrument, capacity]
    heap_arrival: np.ndarray  # int64 [instrument, capacity]: arrival number, the tie-break
    heap_row: np.ndarray  # int64 [instrument, capacity]: row of ``held``
    heap_len: np.ndarray  # int64 [instrument]
    released: np.ndarray  # int64 [instrument]: event time of the last tick released, -1: none
    arrivals: np.ndarray  # int64 [instrument]: ticks buffered so far
    held: TickBatch | None = None

    @classmethod
    def empty(cls) -> ReorderState:
        heap = np.zeros((0, 4), np.int64)
        return cls(heap, heap.copy(), heap.copy(), *(np.zeros(0, np.int64) for _ in range(3)))

    def grow(self, n: int) -> None:
        """Room for ``n`` instruments; new rows start empty."""
        extra = n - self.heap_len.size
        if extra <= 0:
            return
        for name in ("heap_ts", "heap_arrival", "heap_row"):
            a = getattr(self, name)
            setattr(self, name, np.concatenate([a, np.zeros((extra, a.shape[1]), np.int64)]))
        self.heap_len = np.concatenate([self.heap_len, np.zeros(extra, np.int64)])
        self.released = np.concatenate([self.released, np.full(extra, -1, np.int64)])
        self.arrivals = np.concatenate([self.arrivals, np.zeros(extra, np.int64)])

    def widen(self) -> None:
        """Twice the room per instrument (a buffer filled up)."""
        for name in ("heap_ts", "heap_arrival", "heap_row"):
            a = getattr(self, name)
            setattr(self, name, np.concatenate([a, np.zeros_like(a)], axis=1))

    def keep(self, rows: TickBatch) -> None:
        """Hold, of ``rows``, those the heaps point at, renumbered; forget the rest."""
        live = np.arange(self.heap_ts.shape[1]) < self.heap_len[:, None]
        for a in (self.heap_ts, self.heap_arrival, self.heap_row):
            a[~live] = 0  # stale slots: the state is the same for any split
        kept = np.unique(self.heap_row[live])
        self.heap_row[live] = np.searchsorted(kept, self.heap_row[live])
        self.held = rows.take(kept, own=True) if kept.size else None


@kernel()
def _mix(instrument: int, tag: int, h: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    """splitmix64 of the id hash with its instrument and kind (id or seq): the table key."""
    z = h + np.uint64(2 * instrument + tag + 1) * GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@kernel()
def _contains(keys: np.ndarray, used: np.ndarray, key: np.uint64) -> bool:  # pragma: no cover
    mask = np.uint64(keys.size - 1)
    i = key & mask
    while used[i]:
        if keys[i] == key:
            return True
        i = (i + np.uint64(1)) & mask
    return False


@kernel()
def _insert(
    keys: np.ndarray, used: np.ndarray, size: np.ndarray, key: np.uint64
) -> None:  # pragma: no cover
    mask = np.uint64(keys.size - 1)
    i = key & mask
    while used[i]:
        if keys[i] == key:
            return
        i = (i + np.uint64(1)) & mask
    keys[i] = key
    used[i] = True
    size[0] += 1


@kernel()
def _delete(
    keys: np.ndarray, used: np.ndarray, size: np.ndarray, key: np.uint64
) -> None:  # pragma: no cover
    """Linear-probing deletion by backward shift, so no tombstones pile up."""
    mask = np.uint64(keys.size - 1)
    i = key & mask
    while used[i] and keys[i] != key:
        i = (i + np.uint64(1)) & mask
    if not used[i]:
        return
    size[0] -= 1
    j = i
    while True:
        j = (j + np.uint64(1)) & mask
        if not used[j]:
            break
        home = keys[j] & mask
        stays = i < home <= j if i <= j else home > i or home <= j
        if not stays:
            keys[i] = keys[j]
            i = j
    used[i] = False


@njit(cache=True)
def _rehash(old_keys, old_used, keys, used) -> None:  # pragma: no cover - compiled
    size = np.zeros(1, np.int64)
    for i in range(old_keys.size):
        if old_used[i]:
            _insert(keys, used, size, old_keys[i])


@kernel()
def _remember(st_ids, st_len, st_head, keys, used, size, k, tag, key, window):  # pragma: no cover
    cap = st_ids.shape[2]
    head = st_head[k, tag]
    st_ids[k, tag, head] = key
    st_head[k, tag] = (head + 1) % cap
    _insert(keys, used, size, key)
    if st_len[k, tag] < window:
        st_len[k, tag] += 1
    else:  # the oldest of the window leaves it
        oldest = st_ids[k, tag, (head - window + cap) % cap]
        _delete(keys, used, size, oldest)


@kernel()
def _sift(a, root, end) -> None:  # pragma: no cover - compiled
    """Move ``a[root]`` down the max-heap ``a[:end]`` to its place."""
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and a[child] < a[child + 1]:
            child += 1
        if not a[root] < a[child]:
            return
        a[root], a[child] = a[child], a[root]
        root = child


@kernel()
def _median(a, n) -> float:  # pragma: no cover - compiled
    """``statistics.median`` of ``a[:n]``: the middle value, or the mean of the two middle
    values; sorts ``a[:n]`` in place (a heap sort, which needs no stack)."""
    for root in range(n // 2 - 1, -1, -1):
        _sift(a, root, n)
    for end in range(n - 1, 0, -1):
        a[0], a[end] = a[end], a[0]
        _sift(a, 0, end)
    if n % 2 == 1:
        return a[n // 2]
    return (a[n // 2 - 1] + a[n // 2]) / 2


@kernel()
def _jump_limit(moves, k, head, count, k_out, floor, window):  # pragma: no cover - compiled
    """The outlier limit over instrument ``k``'s last ``count`` moves (a ring ending before
    ``head``), never below ``floor``; ``window``: scratch of the ring's size."""
    if count < 2:
        return floor
    cap = moves.shape[1]
    start = (head - count + cap) % cap
    for j in range(count):
        window[j] = moves[k, (start + j) % cap]
    centre = _median(window, count)
    for j in range(count):  # the deviations of the same moves, in another order
        window[j] = abs(window[j] - centre)
    mad = _median(window, count)
    limit = k_out * MAD_TO_STD * mad
    return limit if limit >= floor else floor


@kernel()
def _forget(st_ids, st_len, st_head, keys, used, size, k, tag, key):  # pragma: no cover
    """Take ``key`` out of instrument ``k``'s ring (if still in its window) and the table: the
    newer keys close the gap, as a key popped from the middle of an ordered dict."""
    cap = st_ids.shape[2]
    n = st_len[k, tag]
    head = st_head[k, tag]
    for back in range(1, n + 1):
        if st_ids[k, tag, (head - back + cap) % cap] == key:
            for b in range(back, 1, -1):
                st_ids[k, tag, (head - b + cap) % cap] = st_ids[k, tag, (head - b + 1 + cap) % cap]
            st_head[k, tag] = (head - 1 + cap) % cap
            st_len[k, tag] = n - 1
            _delete(keys, used, size, key)
            return


@kernel()
def _push(h_ts, h_arr, h_row, h_len, k, t, arrival, row) -> None:  # pragma: no cover
    """Add a held tick to instrument ``k``'s min-heap by (event time, arrival)."""
    i = h_len[k]
    h_len[k] = i + 1
    while i > 0:
        parent = (i - 1) // 2
        pt, pa = h_ts[k, parent], h_arr[k, parent]
        if pt < t or (pt == t and pa < arrival):
            break
        h_ts[k, i], h_arr[k, i], h_row[k, i] = pt, pa, h_row[k, parent]
        i = parent
    h_ts[k, i], h_arr[k, i], h_row[k, i] = t, arrival, row


@kernel()
def _pop(h_ts, h_arr, h_row, h_len, k) -> int:  # pragma: no cover - compiled
    """Take the earliest held tick of instrument ``k``; its row."""
    top = h_row[k, 0]
    n = h_len[k] - 1
    h_len[k] = n
    t, arrival, row = h_ts[k, n], h_arr[k, n], h_row[k, n]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and (
            h_ts[k, child + 1] < h_ts[k, child]
            or (h_ts[k, child + 1] == h_ts[k, child] and h_arr[k, child + 1] < h_arr[k, child])
        ):
            child += 1
        ct, ca = h_ts[k, child], h_arr[k, child]
        if t < ct or (t == ct and arrival < ca):
            break
        h_ts[k, i], h_arr[k, i], h_row[k, i] = ct, ca, h_row[k, child]
        i = child
    if n > 0:
        h_ts[k, i], h_arr[k, i], h_row[k, i] = t, arrival, row
    return top


@kernel()
def _judge(
    j, k, remember, price, idk, seqk, has_seq,
    outlier_k, floor_bps, outlier_window, outlier_confirm, dedup_window,
    last_price, moves, moves_len, moves_head, pend_price, pend_count,
    ids, ids_len, ids_head, keys, used, size_, aux, e, scratch,
) -> int:  # pragma: no cover - compiled  # fmt: skip
    """The outlier rule on row ``j``, then accept it: the last step before a tick goes on.
    ``remember``: its ids enter the duplicate window now (else they did when it was held, and
    leave it again if it is refused). The verdict; its numbers go to ``aux[e]``."""
    p = price[j]
    last = last_price[k]
    move = 0.0
    agreeing = False
    reason = 0
    if outlier_k[k] > 0.0 and not np.isnan(last):
        move = np.log(p) - np.log(last)
        floor = floor_bps[k] * UNIT_PER_BPS
        if abs(move) > floor:
            limit = _jump_limit(moves, k, moves_head[k], moves_len[k], outlier_k[k], floor, scratch)
            if abs(move) > limit:
                agreeing = pend_count[k] > 0 and abs(np.log(p) - np.log(pend_price[k])) <= limit
                count = pend_count[k] + 1 if agreeing else 1
                if count < outlier_confirm[k]:
                    reason = R_OUTLIER
                    aux[e, 0] = move
                    aux[e, 1] = last
                    aux[e, 2] = limit
                    aux[e, 3] = count
    if reason != 0:
        if not agreeing:
            pend_count[k] = 0
        if pend_count[k] == 0:
            pend_price[k] = p
        pend_count[k] += 1
        if not remember:
            _forget(ids, ids_len, ids_head, keys, used, size_, k, 0, idk)
            if has_seq:
                _forget(ids, ids_len, ids_head, keys, used, size_, k, 1, seqk)
        return reason
    if not np.isnan(last):
        cap = moves.shape[1]
        moves[k, moves_head[k]] = move
        moves_head[k] = (moves_head[k] + 1) % cap
        if moves_len[k] < outlier_window[k]:
            moves_len[k] += 1
    last_price[k] = p
    pend_count[k] = 0
    if remember:
        window = dedup_window[k]
        _remember(ids, ids_len, ids_head, keys, used, size_, k, 0, idk, window)
        if has_seq:
            _remember(ids, ids_len, ids_head, keys, used, size_, k, 1, seqk, window)
    return 0


@kernel()
def _release(
    k, force, inst, price, id_key, seq_key, has_seq, watermark, window_ns, max_ticks,
    h_ts, h_arr, h_row, h_len, released,
    outlier_k, floor_bps, outlier_window, outlier_confirm, dedup_window,
    last_price, moves, moves_len, moves_head, pend_price, pend_count,
    ids, ids_len, ids_head, keys, used, size_, order, verdict, aux, e, scratch,
) -> int:  # pragma: no cover - compiled  # fmt: skip
    """Release instrument ``k``'s held ticks in time order once the window has passed them,
    the buffer is over its bound, or (``force``) all of them, each judged as it leaves; the
    emission count after."""
    horizon = watermark[k] - window_ns[k]
    while h_len[k] > 0 and (force or h_ts[k, 0] <= horizon or h_len[k] > max_ticks[k]):
        t = h_ts[k, 0]
        j = _pop(h_ts, h_arr, h_row, h_len, k)
        if t > released[k]:
            released[k] = t
        verdict[e] = _judge(
            j, k, False, price, _mix(k, 0, id_key[j]), _mix(k, 1, seq_key[j]), has_seq[j],
            outlier_k, floor_bps, outlier_window, outlier_confirm, dedup_window,
            last_price, moves, moves_len, moves_head, pend_price, pend_count,
            ids, ids_len, ids_head, keys, used, size_, aux, e, scratch,
        )  # fmt: skip
        order[e] = j
        e += 1
    return e


@kernel()
def _validate(
    inst, kind, ts, price, size, bid, ask, bid_size, ask_size,
    id_key, seq_key, has_seq, reinjected, verdict_in,
    tol_ms, tol_ns, max_future_s, max_future_ns, max_past_s, time_confirm, dedup_window,
    outlier_k, floor_bps, outlier_window, outlier_confirm, reject_locked, allowed,
    reorder, window_ns, max_ticks,
    watermark, last_price, moves, moves_len, moves_head, pend_price, pend_count,
    pend_time, pend_time_count, ids, ids_len, ids_head, keys, used, size_,
    h_ts, h_arr, h_row, h_len, released, arrivals, progress, flush,
    order, verdict, aux, scratch,
):  # pragma: no cover - compiled  # fmt: skip
    """Rows from ``progress[0]`` on, in arrival order; each verdict as it is reached: row
    ``order[e]`` got ``verdict[e]``, ``e`` from ``progress[1]`` on. Stops early, ``progress``
    saying where, when a reorder buffer is full (the caller widens it and calls again); then
    releases every tick the instruments of ``flush`` hold, in that order."""
    n = inst.size
    i = progress[0]
    e = progress[1]
    while i < n:
        if verdict_in[i] != 0:
            order[e] = i
            verdict[e] = verdict_in[i]
            e += 1
            i += 1
            continue
        k = inst[i]
        if reorder[k] and h_len[k] >= h_ts.shape[1]:
            break
        order[e] = i
        i += 1
        row = i - 1
        if not allowed[k]:
            verdict[e] = R_UNKNOWN
            e += 1
            continue
        # market sanity
        reason = 0
        if kind[row] == KIND_TRADE:
            if not price[row] > 0.0:
                reason = R_INVALID_PRICE
            elif not size[row] > 0.0:
                reason = R_INVALID_SIZE
        else:
            bs, a_s = bid_size[row], ask_size[row]  # NaN: the quote has no size on that side
            if not (bid[row] > 0.0 and ask[row] > 0.0):
                reason = R_INVALID_PRICE
            elif not (np.isnan(bs) and np.isnan(a_s)) and (np.isnan(bs) or np.isnan(a_s)):
                reason = R_INVALID_SIZE
                aux[e, 0] = 1.0  # one side only
            elif not (np.isnan(bs) and np.isnan(a_s)) and not (bs >= 0.0 and a_s >= 0.0):
                reason = R_INVALID_SIZE
            elif ask[row] < bid[row]:
                reason = R_CROSSED
            elif reject_locked[k] and ask[row] == bid[row]:
                reason = R_LOCKED
        if reason != 0:
            verdict[e] = reason
            e += 1
            continue
        # duplicates
        idk = _mix(k, 0, id_key[row])
        seqk = _mix(k, 1, seq_key[row])
        if _contains(keys, used, idk):
            verdict[e] = R_DUPLICATE
            aux[e, 0] = 0.0
            e += 1
            continue
        if has_seq[row] and _contains(keys, used, seqk):
            verdict[e] = R_DUPLICATE
            aux[e, 0] = 1.0
            e += 1
            continue
        window = dedup_window[k]
        if reinjected[row]:
            _remember(ids, ids_len, ids_head, keys, used, size_, k, 0, idk, window)
            if has_seq[row]:
                _remember(ids, ids_len, ids_head, keys, used, size_, k, 1, seqk, window)
            e += 1
            continue
        # event time
        t = ts[row]
        wm = watermark[k]
        jump = False
        if wm >= 0:
            ahead_s = (t - wm) / 1e9
            behind_s = (wm - t) / 1e9
            jump = ahead_s > max_future_s[k] or -ahead_s > max_past_s[k]
            pending = pend_time_count[k] > 0 and (
                pend_time[k] - tol_ns[k] <= t <= pend_time[k] + max_future_ns[k]
            )
            if pending:
                confirmed = pend_time_count[k] + 1 >= time_confirm[k]
            else:
                confirmed = time_confirm[k] <= 1
            if ahead_s > max_future_s[k] and not confirmed:
                reason = R_FUTURE
                aux[e, 0] = ahead_s
            elif behind_s > max_past_s[k] and not confirmed:
                reason = R_STALE
                aux[e, 0] = behind_s
            elif not reorder[k] and behind_s <= max_past_s[k] and behind_s * 1e3 > tol_ms[k]:
                reason = R_OUT_OF_ORDER
                aux[e, 0] = behind_s * 1e3
            if reason != 0:
                if jump:
                    if not pending:
                        pend_time_count[k] = 0
                    pend_time[k] = t
                    pend_time_count[k] += 1
                verdict[e] = reason
                e += 1
                continue
        if jump:  # a confirmed jump: what is held goes first, then event time starts again
            e = _release(
                k, True, inst, price, id_key, seq_key, has_seq, watermark, window_ns,
                max_ticks, h_ts, h_arr, h_row, h_len, released,
                outlier_k, floor_bps, outlier_window, outlier_confirm, dedup_window,
                last_price, moves, moves_len, moves_head, pend_price, pend_count,
                ids, ids_len, ids_head, keys, used, size_, order, verdict, aux, e, scratch,
            )  # fmt: skip
            released[k] = -1
            watermark[k] = t
        elif t > wm:
            watermark[k] = t
        pend_time_count[k] = 0
        if not reorder[k]:
            order[e] = row
            verdict[e] = _judge(
                row, k, True, price, idk, seqk, has_seq[row],
                outlier_k, floor_bps, outlier_window, outlier_confirm, dedup_window,
                last_price, moves, moves_len, moves_head, pend_price, pend_count,
                ids, ids_len, ids_head, keys, used, size_, aux, e, scratch,
            )  # fmt: skip
            e += 1
            continue
        # the reorder buffer: behind what already left it is too late
        if released[k] >= 0 and t < released[k] - tol_ns[k]:
            order[e] = row
            verdict[e] = R_OUT_OF_ORDER
            aux[e, 0] = (released[k] - t) / 1e6
            e += 1
            continue
        _remember(ids, ids_len, ids_head, keys, used, size_, k, 0, idk, window)
        if has_seq[row]:
            _remember(ids, ids_len, ids_head, keys, used, size_, k, 1, seqk, window)
        arrivals[k] += 1
        _push(h_ts, h_arr, h_row, h_len, k, t, arrivals[k], row)
        e = _release(
            k, False, inst, price, id_key, seq_key, has_seq, watermark, window_ns,
            max_ticks, h_ts, h_arr, h_row, h_len, released,
            outlier_k, floor_bps, outlier_window, outlier_confirm, dedup_window,
            last_price, moves, moves_len, moves_head, pend_price, pend_count,
            ids, ids_len, ids_head, keys, used, size_, order, verdict, aux, e, scratch,
        )  # fmt: skip
    progress[0] = i
    if i == n:
        for k in flush:
            e = _release(
                k, True, inst, price, id_key, seq_key, has_seq, watermark, window_ns,
                max_ticks, h_ts, h_arr, h_row, h_len, released,
                outlier_k, floor_bps, outlier_window, outlier_confirm, dedup_window,
                last_price, moves, moves_len, moves_head, pend_price, pend_count,
                ids, ids_len, ids_head, keys, used, size_, order, verdict, aux, e, scratch,
            )  # fmt: skip
    progress[1] = e


class BatchValidator:
    """The validation operator over batches: verdicts per row, state carried across batches."""

    def __init__(self, config: ValidationConfig, symbols: SymbolTable) -> None:
        self.config = config
        self.symbols = symbols
        windows = [config.outlier_window, config.dedup_window]
        for r in config.per_instrument.values():
            windows[0] = max(windows[0], r.outlier_window or 0)
            windows[1] = max(windows[1], r.dedup_window or 0)
        # one slot more than the window: the newest key is written before the oldest leaves
        self.state = ValidationState.empty(windows[0], windows[1] + 1)
        self.reorder = ReorderState.empty()
        self.rules = _rules_of(config, [])

    def _sync(self) -> None:
        n = len(self.symbols)
        if self.rules.allowed.size < n:
            self.rules = _rules_of(self.config, self.symbols.names)
            self.state.grow(n)
            self.reorder.grow(n)

    def run(self, batch: TickBatch) -> tuple[TickBatch, np.ndarray, np.ndarray]:
        """The batch as validated, a verdict per row of it (0: clean; see ``batch.REASONS``)
        and the numbers each refusal's detail cites.

        Without a reordering instrument that is ``batch`` itself; with one, its rows in the
        order their verdicts were reached, the ticks held from earlier batches among them,
        those still held left out.
        """
        self._sync()
        held = self.reorder.held
        rows = batch if held is None else concat(held, batch)
        return self._validate(rows, len(rows) - len(batch), np.zeros(0, np.int64))

    def flush(self) -> tuple[TickBatch, np.ndarray, np.ndarray] | None:
        """Release every tick still held, as ``run`` gives them (end of a finite input); None
        when nothing is held. Instruments go by name, as the per-message validator's do."""
        held = self.reorder.held
        if held is None:
            return None
        names = self.symbols.names
        waiting = np.flatnonzero(self.reorder.heap_len > 0)
        order = np.array(sorted(waiting.tolist(), key=names.__getitem__), np.int64)
        return self._validate(held, len(held), order)

    def _validate(
        self, rows: TickBatch, start: int, flush: np.ndarray
    ) -> tuple[TickBatch, np.ndarray, np.ndarray]:
        n = len(rows)
        # each (instrument, id or sequence) ring keeps at most its window, plus the key written
        # before the oldest leaves
        self.state.reserve(2 * (n - start), 2 * int(self.rules.dedup_window.sum()) + 1)
        order = np.empty(n, np.int64)
        verdict = np.zeros(n, np.uint8)
        aux = np.zeros((n, 4))
        progress = np.array([start, 0], np.int64)
        r, s, h = self.rules, self.state, self.reorder
        while True:
            _validate(
                rows.instrument, rows.kind, rows.ts, rows.price, rows.size, rows.bid,
                rows.ask, rows.bid_size, rows.ask_size, rows.id_key, rows.seq_key,
                rows.has_seq, rows.reinjected, rows.verdict,
                r.tol_ms, r.tol_ns, r.max_future_s, r.max_future_ns, r.max_past_s,
                r.time_confirm, r.dedup_window, r.outlier_k, r.floor_bps, r.outlier_window,
                r.outlier_confirm, r.reject_locked, r.allowed, r.reorder, r.window_ns,
                r.max_ticks,
                s.watermark, s.last_price, s.moves, s.moves_len, s.moves_head, s.pend_price,
                s.pend_count, s.pend_time, s.pend_time_count, s.ids, s.ids_len, s.ids_head,
                s.table_keys, s.table_used, s.table_size,
                h.heap_ts, h.heap_arrival, h.heap_row, h.heap_len, h.released, h.arrivals,
                progress, flush, order, verdict, aux, np.empty(s.moves.shape[1]),
            )  # fmt: skip
            if progress[0] == n:
                break
            h.widen()  # a reorder buffer is full: room, and on from the row it stopped at
        e = int(progress[1])
        if start == 0 and e == n and not flush.size and not r.reorder.any():
            return rows, verdict, aux  # nothing reorders: every row, in its order
        h.keep(rows)
        return rows.take(order[:e]), verdict[:e], aux[:e]

    def records(
        self, batch: TickBatch, verdict: np.ndarray, aux: np.ndarray
    ) -> dict[int, QuarantineRecord]:
        """The quarantine record of every refused row, by row (texts as the validator's)."""
        out = {}
        for row in np.flatnonzero(verdict):
            out[int(row)] = self._record(batch, int(row), int(verdict[row]), aux[row])
        return out

    def _record(self, b: TickBatch, i: int, v: int, aux: np.ndarray) -> QuarantineRecord:
        reason = ReasonCode(list(ReasonCode)[v - 1])
        raw, source = b.payloads[i], b.source(i)
        if i in b.detail:  # refused while decoding: nothing about the tick is known
            return quarantine(raw, source, reason, b.detail[i])
        name = self.symbols.names[b.instrument[i]]
        rules = self.config.rules_for(name)
        return quarantine(raw, source, reason, _detail(b, i, reason, aux, rules, name), name,
                          b.tick_ids[i])  # fmt: skip


def _detail(
    b: TickBatch, i: int, reason: ReasonCode, aux: np.ndarray, rules: ValidationConfig, name: str
) -> str:
    """The validator's words for row ``i``'s refusal, from the numbers the kernel kept."""
    trade = b.kind[i] == KIND_TRADE
    price, size = float(b.price[i]), float(b.size[i])
    bid, ask = float(b.bid[i]), float(b.ask[i])
    if reason is ReasonCode.UNKNOWN_INSTRUMENT:
        return f"{name!r} not configured"
    if reason is ReasonCode.INVALID_PRICE:
        return f"price {price} is not positive" if trade else f"bid {bid} / ask {ask} not positive"
    if reason is ReasonCode.INVALID_SIZE:
        if trade:
            return f"size {size} is not positive"
        sizes = f"quote sizes {_size(b.bid_size[i])} / {_size(b.ask_size[i])}"
        return f"{sizes}: one side only" if aux[0] == 1.0 else f"{sizes} negative"
    if reason is ReasonCode.CROSSED_QUOTE:
        return f"ask {ask} < bid {bid}"
    if reason is ReasonCode.LOCKED_QUOTE:
        return f"bid = ask = {bid} (locked market)"
    if reason is ReasonCode.DUPLICATE:
        if aux[0] == 0.0:
            return f"tick_id {b.tick_ids[i]!r} already seen"
        return f"sequence number {_seq_text(b, i)} already seen"
    if reason is ReasonCode.FUTURE_TIMESTAMP:
        return f"{aux[0]:.3f} s ahead of the instrument's event time (limit {rules.max_future_s} s)"
    if reason is ReasonCode.STALE_TIMESTAMP:
        return f"{aux[0]:.3f} s behind the instrument's event time (limit {rules.max_past_s} s)"
    if reason is ReasonCode.OUT_OF_ORDER and rules.out_of_order_policy == "reorder":
        return (
            f"{aux[0]:.3f} ms behind a tick already released; later than the "
            f"reorder window of {rules.reorder_window_ms} ms"
        )
    if reason is ReasonCode.OUT_OF_ORDER:
        return (
            f"{aux[0]:.3f} ms behind the instrument's last tick "
            f"(tolerance {rules.out_of_order_tolerance_ms} ms)"
        )
    move, last, limit, count = float(aux[0]), float(aux[1]), float(aux[2]), int(aux[3])
    return (
        f"jump of {move * BPS_PER_UNIT:+.1f} bps from {last} to {price} exceeds "
        f"{limit * BPS_PER_UNIT:.1f} bps (k={rules.outlier_k} robust std devs); "
        f"unconfirmed {count}/{rules.outlier_confirm_ticks}"
    )


def _size(value: float) -> object:
    return None if np.isnan(value) else float(value)


def _seq_text(b: TickBatch, i: int) -> str:
    """The sequence number as the contract read it (only a refused row ever asks)."""
    return b.seq_texts[i]

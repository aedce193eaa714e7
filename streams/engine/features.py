"""Event-time features over a batch: ``streams.operators.features.FeatureEngine`` as a kernel.

Same statistics, same order of floating-point operations, so a vector equals the per-tick
engine's bit for bit (the oracle test holds it). Every clean row moves its instrument's state;
a row gets a vector when a decision is due (every row, or the first of each event-time bucket
of ``sample_ms``).

A ``ret_<H>s_bps`` feature keeps, per instrument, the per-tick engine's window: a ring of
(event time, log price) from the last tick at or before ``now - H`` on (the first tick while
there is none; the log is the one the tick's own return takes, the same bits as the per-tick
code's second call). The ring of every instrument and horizon doubles when a tick finds one
full: the kernel stops before that row and resumes there, so no split into batches changes a
ring.
"""

from __future__ import annotations

import math

import numpy as np

from tickwise.streams.config import FeatureConfig
from tickwise.streams.engine.batch import KIND_TRADE, SymbolTable, TickBatch
from tickwise.streams.engine.jit import kernel
from tickwise.streams.operators.features.engine import (
    CATALOGUE,
    HORIZON_RE,
    NOISE_BPS,
    Z_BOUND,
    check_feature_set,
    horizons_of,
)
from tickwise.streams.operators.labels import horizon_ns
from tickwise.streams.operators.units import BPS_PER_UNIT

BASE = tuple(CATALOGUE)  # the kernel's columns, in catalogue order
# EWM statistics (weight, mean, m2) and decayed sums, by position in the state arrays
FAST, SLOW, VOL, LOG_PRICE, LOG_SIZE = range(5)
RV, SIGNED_VOL, VOLUME, TICKS, UP, DOWN = range(6)
# scalars per instrument
S_FIRST, S_LAST, S_SPREAD, S_IMB, S_MICRO, S_MID, S_TRADE, S_SIGN = range(8)
START_CAPACITY = 64  # pairs a lagged-return ring holds before it first doubles (a power of 2)
MAX_NS = np.iinfo(np.int64).max  # a longer horizon never ends within int64 event time either


@kernel(inline="always")
def _pymax(a: float, b: float) -> float:  # pragma: no cover - compiled
    """Python's ``max(a, b)``: ``a`` unless ``b`` is larger (keeps the sign of a zero)."""
    return b if b > a else a


@kernel(inline="always")
def _clip(x: float, bound: float) -> float:  # pragma: no cover - compiled
    m = x if x < bound else bound
    return m if m > -bound else -bound


@kernel(inline="always")
def _ratio(num: float, den: float, tiny: float) -> float:  # pragma: no cover - compiled
    return num / den if abs(den) > tiny else 0.0


@kernel(inline="always")
def _ewm_add(ewm, k, s, x, decay) -> None:  # pragma: no cover - compiled
    w = ewm[k, s, 0] * decay + 1.0
    mean = ewm[k, s, 1]
    delta = x - mean
    mean += delta / w
    ewm[k, s, 0] = w
    ewm[k, s, 1] = mean
    ewm[k, s, 2] = ewm[k, s, 2] * decay + delta * (x - mean)


@kernel(inline="always")
def _std(ewm, k, s) -> float:  # pragma: no cover - compiled
    w = ewm[k, s, 0]
    if w <= 0.0:
        return 0.0
    return math.sqrt(_pymax(ewm[k, s, 2] / w, 0.0))


@kernel()
def _features(
    clean, inst, kind, ts, price, size, bid, ask, bid_size, ask_size,
    taus, intensity_tau, sample_ns, horizons,
    started, last_ts, last_bucket, scal, ewm, sums,
    lag_ts, lag_log, lag_head, lag_len,
    emit, out, columns, full, cursor,
):  # pragma: no cover - compiled  # fmt: skip
    """Rows from ``cursor[0]`` on, vectors from ``cursor[1]``; returns the row whose tick
    finds a lagged-return ring full (``cursor`` then says where to resume), or -1."""
    cap = lag_ts.shape[2]
    mask = cap - 1  # a power of two: a ring index wraps by a mask, not a division
    n_base = full.size - horizons.size
    j = cursor[1]
    for i in range(cursor[0], inst.size):
        if not clean[i]:
            continue
        k = inst[i]
        if started[k]:
            for h in range(horizons.size):
                if lag_len[k, h] == cap:
                    cursor[0] = i
                    cursor[1] = j
                    return i
        p = price[i]
        if not started[k]:
            started[k] = True
            scal[k, :] = 0.0
            scal[k, S_FIRST] = p
            scal[k, S_LAST] = p
            scal[k, S_MID] = np.nan
            scal[k, S_TRADE] = np.nan
            ewm[k, :, :] = 0.0
            sums[k, :] = 0.0
            last_ts[k] = ts[i]
            last_bucket[k] = -1
            lag_head[k, :] = 0
            lag_len[k, :] = 0
        now = last_ts[k] if last_ts[k] > ts[i] else ts[i]
        dt_s = (now - last_ts[k]) * 1e-9
        log_p = np.log(p)
        ret = (log_p - np.log(scal[k, S_LAST])) * BPS_PER_UNIT
        if dt_s == 0.0:
            d0 = d1 = d2 = d3 = d4 = 1.0
        else:
            d0 = math.exp(-dt_s / taus[0])
            d1 = math.exp(-dt_s / taus[1])
            d2 = math.exp(-dt_s / taus[2])
            d3 = math.exp(-dt_s / taus[3])
            d4 = math.exp(-dt_s / taus[4])
        _ewm_add(ewm, k, FAST, ret, d0)
        _ewm_add(ewm, k, SLOW, ret, d1)
        _ewm_add(ewm, k, VOL, ret, d2)
        sums[k, RV] = sums[k, RV] * d2 + ret * ret
        sums[k, TICKS] = sums[k, TICKS] * d3 + 1.0
        sums[k, UP] = sums[k, UP] * d4 + _pymax(ret, 0.0)
        sums[k, DOWN] = sums[k, DOWN] * d4 + _pymax(-ret, 0.0)
        log_price = (log_p - np.log(scal[k, S_FIRST])) * BPS_PER_UNIT
        _ewm_add(ewm, k, LOG_PRICE, log_price, d1)
        signed = 0.0
        trade = kind[i] == KIND_TRADE
        if not trade:
            scal[k, S_SPREAD] = (ask[i] - bid[i]) / p * BPS_PER_UNIT
            bs, a_s = bid_size[i], ask_size[i]
            if np.isnan(bs) or np.isnan(a_s):  # a quote without sizes: no side leans
                scal[k, S_IMB] = 0.0
            else:
                scal[k, S_IMB] = _ratio(bs - a_s, bs + a_s, 1e-12)
            # the size-weighted microprice: the mid moved by imbalance times half the spread
            scal[k, S_MICRO] = 0.5 * scal[k, S_IMB] * scal[k, S_SPREAD]
            scal[k, S_MID] = p
            sums[k, VOLUME] = sums[k, VOLUME] * d0 + 0.0
        else:
            ref = scal[k, S_MID] if not np.isnan(scal[k, S_MID]) else scal[k, S_TRADE]
            if not np.isnan(ref) and p != ref:
                scal[k, S_SIGN] = 1.0 if p > ref else -1.0
            signed = scal[k, S_SIGN] * size[i]
            scal[k, S_TRADE] = p
            sums[k, VOLUME] = sums[k, VOLUME] * d0 + size[i]
            _ewm_add(ewm, k, LOG_SIZE, math.log1p(size[i]), d1)
        sums[k, SIGNED_VOL] = sums[k, SIGNED_VOL] * d0 + signed
        for h in range(horizons.size):  # ``_Lagged.push``: add the tick, drop unreachable bases
            head = lag_head[k, h]
            tail = (head + lag_len[k, h]) & mask
            lag_ts[k, h, tail] = now
            lag_log[k, h, tail] = log_p
            lag_len[k, h] += 1
            cutoff = now - horizons[h]
            while lag_len[k, h] > 1 and lag_ts[k, h, (head + 1) & mask] <= cutoff:
                head = (head + 1) & mask
                lag_len[k, h] -= 1
            lag_head[k, h] = head
        scal[k, S_LAST] = p
        last_ts[k] = now
        if sample_ns > 0:
            bucket = now // sample_ns
            if bucket <= last_bucket[k]:
                continue
            last_bucket[k] = bucket
        emit[i] = True
        vol = _std(ewm, k, VOL)
        up, down = sums[k, UP], sums[k, DOWN]
        lp_mean = ewm[k, LOG_PRICE, 1]
        full[0] = ret
        full[1] = ewm[k, FAST, 1]
        full[2] = ewm[k, SLOW, 1]
        full[3] = vol
        full[4] = sums[k, RV]
        full[5] = _clip(_ratio(ret, vol, 1e-12), Z_BOUND)
        full[6] = _clip(_ratio(log_price - lp_mean, _std(ewm, k, LOG_PRICE), 1e-12), Z_BOUND)
        full[7] = log_price - lp_mean
        full[8] = scal[k, S_SPREAD]
        full[9] = scal[k, S_IMB]
        full[10] = scal[k, S_MICRO]
        full[11] = sums[k, SIGNED_VOL]
        full[12] = _clip(_ratio(sums[k, SIGNED_VOL], sums[k, VOLUME], 1e-12), 1.0)
        if trade:
            z = _ratio(math.log1p(size[i]) - ewm[k, LOG_SIZE, 1], _std(ewm, k, LOG_SIZE), 1e-12)
            full[13] = _clip(z, Z_BOUND)
        else:
            full[13] = 0.0
        full[14] = sums[k, TICKS] / intensity_tau
        full[15] = _clip(_ratio(up - down, up + down, NOISE_BPS), 1.0)
        full[16] = math.log1p(dt_s)
        for h in range(horizons.size):  # ``_Lagged.value``: from the window's oldest price
            full[n_base + h] = (log_p - lag_log[k, h, lag_head[k, h]]) * BPS_PER_UNIT
        for c in range(columns.size):  # the configured features, in their order
            out[j, c] = full[columns[c]]
        j += 1
    cursor[0] = inst.size
    cursor[1] = j
    return -1


class BatchFeatures:
    """The feature operator over batches: the vectors due in a batch, state carried across."""

    def __init__(self, config: FeatureConfig, symbols: SymbolTable) -> None:
        check_feature_set(config.feature_set)
        self.config = config
        self.symbols = symbols
        self.names = config.feature_set
        lagged = [n for n in self.names if HORIZON_RE.match(n)]  # after BASE in the kernel's row
        self.columns = np.array(
            [len(BASE) + lagged.index(n) if n in lagged else BASE.index(n) for n in self.names],
            dtype=np.int64,
        )
        horizon_s = horizons_of(self.names)
        self.horizons = np.array([min(horizon_ns(horizon_s[n]), MAX_NS) for n in lagged], np.int64)
        self.taus = np.array(
            [
                config.fast_tau_s,
                config.slow_tau_s,
                config.vol_tau_s,
                config.intensity_tau_s,
                config.rsi_tau_s,
            ]
        )
        self.sample_ns = int(config.sample_ms * 1e6)
        self.started = np.zeros(0, np.bool_)
        self.last_ts = np.zeros(0, np.int64)
        self.last_bucket = np.zeros(0, np.int64)
        self.scal = np.zeros((0, 8))
        self.ewm = np.zeros((0, 5, 3))
        self.sums = np.zeros((0, 6))
        # per instrument and horizon: a ring of (event time, log price), its head and length
        self.lag_ts = np.zeros((0, len(lagged), START_CAPACITY), np.int64)
        self.lag_log = np.zeros((0, len(lagged), START_CAPACITY))
        self.lag_head = np.zeros((0, len(lagged)), np.int64)
        self.lag_len = np.zeros((0, len(lagged)), np.int64)

    def _sync(self) -> None:
        extra = len(self.symbols) - self.started.size
        if extra <= 0:
            return
        for name in ("started", "last_ts", "last_bucket", "scal", "ewm", "sums", "lag_ts",
                     "lag_log", "lag_head", "lag_len"):  # fmt: skip
            a = getattr(self, name)
            setattr(self, name, np.concatenate([a, np.zeros((extra, *a.shape[1:]), a.dtype)]))

    def _grow(self) -> None:
        """Double the lagged-return rings, laying each one out from slot 0."""
        cap = self.lag_ts.shape[2]
        order = (self.lag_head[:, :, None] + np.arange(cap)) % cap
        for name in ("lag_ts", "lag_log"):
            a = np.take_along_axis(getattr(self, name), order, axis=2)
            wide = np.zeros((*a.shape[:2], 2 * cap), a.dtype)
            wide[:, :, :cap] = a
            setattr(self, name, wide)
        self.lag_head[:] = 0

    def run(self, batch: TickBatch, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows that carry a vector (bool per row) and their vectors, in the configured order."""
        self._sync()
        n = len(batch)
        emit = np.zeros(n, np.bool_)
        out = np.empty((int(clean.sum()), self.columns.size))
        full = np.empty(len(BASE) + self.horizons.size)
        cursor = np.zeros(2, np.int64)  # the row to go on from, the vectors written so far
        b = batch
        while True:
            stop = _features(
                clean, b.instrument, b.kind, b.ts, b.price, b.size, b.bid, b.ask, b.bid_size,
                b.ask_size, self.taus, self.config.intensity_tau_s, self.sample_ns,
                self.horizons, self.started, self.last_ts, self.last_bucket, self.scal,
                self.ewm, self.sums, self.lag_ts, self.lag_log, self.lag_head, self.lag_len,
                emit, out, self.columns, full, cursor,
            )  # fmt: skip
            if stop < 0:
                return emit, out[: cursor[1]]
            self._grow()

    def state_arrays(self) -> list[np.ndarray]:
        """Every array of the state, each ring's pairs oldest first whatever its capacity and
        head (what a checkpoint carries; what invariance compares)."""
        rings = []
        for k in range(self.lag_len.shape[0]):
            for h in range(self.lag_len.shape[1]):
                at = (self.lag_head[k, h] + np.arange(self.lag_len[k, h])) % self.lag_ts.shape[2]
                rings += [self.lag_ts[k, h, at], self.lag_log[k, h, at]]
        fixed = [self.started, self.last_ts, self.last_bucket, self.scal, self.ewm, self.sums]
        return [*fixed, self.lag_len, *rings]

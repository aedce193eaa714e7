"""Event-time features over a batch: ``streams.operators.features.FeatureEngine`` as a kernel.

Same statistics, same order of floating-point operations, so a vector equals the per-tick
engine's bit for bit (the oracle test holds it). Every clean row moves its instrument's state;
a row gets a vector when a decision is due (every row, or the first of each event-time bucket
of ``sample_ms``).
"""

from __future__ import annotations

import math

import numpy as np

from tickwise.streams.config import FeatureConfig
from tickwise.streams.engine.batch import KIND_TRADE, SymbolTable, TickBatch
from tickwise.streams.engine.jit import kernel
from tickwise.streams.operators.features.engine import (
    CATALOGUE,
    NOISE_BPS,
    Z_BOUND,
    check_feature_set,
    horizons_of,
)
from tickwise.streams.operators.units import BPS_PER_UNIT

BASE = tuple(CATALOGUE)  # the kernel's columns, in catalogue order
# EWM statistics (weight, mean, m2) and decayed sums, by position in the state arrays
FAST, SLOW, VOL, LOG_PRICE, LOG_SIZE = range(5)
RV, SIGNED_VOL, VOLUME, TICKS, UP, DOWN = range(6)
# scalars per instrument
S_FIRST, S_LAST, S_SPREAD, S_IMB, S_MICRO, S_MID, S_TRADE, S_SIGN = range(8)


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
    taus, intensity_tau, sample_ns,
    started, last_ts, last_bucket, scal, ewm, sums,
    emit, out, columns, full,
):  # pragma: no cover - compiled  # fmt: skip
    j = 0
    for i in range(inst.size):
        if not clean[i]:
            continue
        k = inst[i]
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
        now = last_ts[k] if last_ts[k] > ts[i] else ts[i]
        dt_s = (now - last_ts[k]) * 1e-9
        ret = (np.log(p) - np.log(scal[k, S_LAST])) * BPS_PER_UNIT
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
        log_price = (np.log(p) - np.log(scal[k, S_FIRST])) * BPS_PER_UNIT
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
        for c in range(columns.size):  # the configured features, in their order
            out[j, c] = full[columns[c]]
        j += 1
    return j


class BatchFeatures:
    """The feature operator over batches: the vectors due in a batch, state carried across."""

    def __init__(self, config: FeatureConfig, symbols: SymbolTable) -> None:
        check_feature_set(config.feature_set)
        if horizons_of(config.feature_set):
            raise NotImplementedError("the columnar engine has no ret_<H>s_bps features yet")
        self.config = config
        self.symbols = symbols
        self.names = config.feature_set
        self.columns = np.array([BASE.index(n) for n in self.names], dtype=np.int64)
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

    def _sync(self) -> None:
        extra = len(self.symbols) - self.started.size
        if extra <= 0:
            return
        for name in ("started", "last_ts", "last_bucket", "scal", "ewm", "sums"):
            a = getattr(self, name)
            setattr(self, name, np.concatenate([a, np.zeros((extra, *a.shape[1:]), a.dtype)]))

    def run(self, batch: TickBatch, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows that carry a vector (bool per row) and their vectors, in the configured order."""
        self._sync()
        n = len(batch)
        emit = np.zeros(n, np.bool_)
        out = np.empty((int(clean.sum()), self.columns.size))
        b = batch
        count = _features(
            clean, b.instrument, b.kind, b.ts, b.price, b.size, b.bid, b.ask, b.bid_size,
            b.ask_size, self.taus, self.config.intensity_tau_s, self.sample_ns,
            self.started, self.last_ts, self.last_bucket, self.scal, self.ewm, self.sums,
            emit, out, self.columns, np.empty(len(BASE)),
        )  # fmt: skip
        return emit, out[:count]

"""Causal per-instrument features, decayed in event time, chosen by configuration.

``FeatureConfig.feature_set`` names the features and their order; every name is checked when
the engine is built, so a typo fails at start-up instead of producing a model with a missing
input. All state is per instrument (the partition key) and picklable, so it moves with a
partition and survives a restart through the pipeline's checkpoint.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tickwise.schemas.decisions import FeatureVector
from tickwise.schemas.ticks import QuoteTick, TradeTick
from tickwise.streams.config import DEFAULT_FEATURES, FeatureConfig
from tickwise.streams.operators.features.ewm import DecayedSum, EwmStats, clip, ratio
from tickwise.streams.operators.labels import horizon_ns
from tickwise.streams.operators.state import InstrumentStateMixin
from tickwise.streams.operators.units import BPS_PER_UNIT

NS = 1e-9
Z_BOUND = 10.0
NOISE_BPS = 1e-6  # a log move this small is the rounding of a float price (1e-10 relative)
HORIZON_RE = re.compile(r"^ret_(\d+(?:\.\d+)?)s_bps$")

FEATURE_NAMES = DEFAULT_FEATURES
_NO_DECAY = (1.0, 1.0, 1.0, 1.0, 1.0)  # exp(-0 / tau): ticks that share a timestamp
# name -> what it means; ``ret_<H>s_bps`` (any H in seconds) comes on top of these.
CATALOGUE: Mapping[str, str] = MappingProxyType(
    {
        "ret_bps": "log return since the previous tick, bps",
        "mom_fast_bps": "EWMA of tick returns over fast_tau_s, bps",
        "mom_slow_bps": "EWMA of tick returns over slow_tau_s, bps",
        "vol_bps": "EWMA volatility of tick returns over vol_tau_s, bps",
        "rv_bps2": "realized variance: decayed sum of squared tick returns over vol_tau_s, bps^2",
        "z_ret": "tick return / EWMA volatility, clipped to +-10",
        "z_price": "log price minus its slow EWMA mean, over its slow EWMA std, clipped to +-10",
        "mid_dev_bps": "log price minus its slow EWMA mean, bps",
        "spread_bps": "last quoted spread over the mid, bps",
        "imbalance": "last quoted (bid size - ask size) / (bid size + ask size); 0 without sizes",
        "microprice_bps": "size-weighted microprice minus the mid, bps; 0 without sizes",
        "signed_volume": "decayed sum of trade size signed by aggressor side, over fast_tau_s",
        "trade_imbalance": "decayed signed volume / decayed volume over fast_tau_s, in [-1, 1]",
        "z_volume": "log trade size against its slow EWMA mean and std, clipped to +-10",
        "intensity_hz": "ticks per second, decayed over intensity_tau_s",
        "rsi": "RSI-style oscillator: (up - down) / (up + down) moves over rsi_tau_s, in [-1, 1]",
        "log_gap_s": "log(1 + seconds since the previous tick)",
    }
)


def horizons_of(feature_set: tuple[str, ...]) -> dict[str, float]:
    """Map each ``ret_<H>s_bps`` feature in ``feature_set`` to its horizon H in seconds."""
    out = {}
    for name in feature_set:
        match = HORIZON_RE.match(name)
        if match:
            out[name] = float(match.group(1))
    return out


def check_feature_set(feature_set: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming every unknown or repeated feature."""
    unknown = [n for n in feature_set if n not in CATALOGUE and not HORIZON_RE.match(n)]
    if unknown:
        raise ValueError(f"unknown features {unknown}; known: {sorted(CATALOGUE)} + ret_<H>s_bps")
    if len(set(feature_set)) != len(feature_set):
        raise ValueError(f"feature_set repeats a name: {list(feature_set)}")


class _Lagged:
    """The last price at or before ``now - horizon``: the base of an event-time return."""

    __slots__ = ("horizon_ns", "window")

    def __init__(self, horizon_s: float) -> None:
        self.horizon_ns = horizon_ns(horizon_s)
        self.window: deque[tuple[int, float]] = deque()

    def push(self, ts_ns: int, price: float) -> None:
        """Add the tick and forget prices no later return can start from."""
        window = self.window
        window.append((ts_ns, price))
        cutoff = ts_ns - self.horizon_ns
        while len(window) > 1 and window[1][0] <= cutoff:
            window.popleft()

    def value(self, price: float) -> float:
        """The log return over the horizon (or since the first tick) to ``price``, in bps."""
        return (math.log(price) - math.log(self.window[0][1])) * BPS_PER_UNIT


@dataclass
class _State:
    first_price: float
    last_price: float
    last_ts_ns: int
    fast: EwmStats
    slow: EwmStats
    vol: EwmStats
    log_price: EwmStats
    log_size: EwmStats
    rv: DecayedSum
    signed_vol: DecayedSum
    volume: DecayedSum
    ticks: DecayedSum
    up: DecayedSum
    down: DecayedSum
    lagged: dict[str, _Lagged] = field(default_factory=dict)
    spread_bps: float = 0.0
    imbalance: float = 0.0
    microprice_bps: float = 0.0
    last_mid: float = math.nan
    last_trade: float = math.nan
    last_sign: float = 0.0
    last_bucket: int = -1  # the event-time bucket of the last vector (``sample_ms``)


class FeatureEngine(InstrumentStateMixin):
    """Turn each clean tick into a feature vector using only that tick and earlier ones.

    Examples
    --------
    >>> from tickwise.schemas.ticks import TradeTick
    >>> fe = FeatureEngine(FeatureConfig())
    >>> _ = fe.on_tick(TradeTick(tick_id="1", instrument="ES", ts_event_ns=0, price=100.0, size=1))
    >>> fv = fe.on_tick(TradeTick(tick_id="2", instrument="ES", ts_event_ns=10**9, price=101.0,
    ...                           size=1))
    >>> round(fv.values["ret_bps"], 2)
    99.5
    >>> fe = FeatureEngine(FeatureConfig(feature_set=("ret_1s_bps", "rsi", "intensity_hz")))
    >>> list(fe.on_tick(TradeTick(tick_id="1", instrument="ES", ts_event_ns=0, price=100.0,
    ...                           size=1)).values)
    ['ret_1s_bps', 'rsi', 'intensity_hz']
    """

    def __init__(self, config: FeatureConfig) -> None:
        check_feature_set(config.feature_set)
        self.config = config
        self.names = config.feature_set
        self.horizons = horizons_of(config.feature_set)
        self.sample_ns = int(config.sample_ms * 1e6)
        self._taus = (
            config.fast_tau_s,
            config.slow_tau_s,
            config.vol_tau_s,
            config.intensity_tau_s,
            config.rsi_tau_s,
        )
        self._state: dict[str, _State] = {}

    def _new_state(self, price: float, ts_ns: int) -> _State:
        cfg = self.config
        return _State(
            first_price=price,
            last_price=price,
            last_ts_ns=ts_ns,
            fast=EwmStats(cfg.fast_tau_s),
            slow=EwmStats(cfg.slow_tau_s),
            vol=EwmStats(cfg.vol_tau_s),
            log_price=EwmStats(cfg.slow_tau_s),
            log_size=EwmStats(cfg.slow_tau_s),
            rv=DecayedSum(cfg.vol_tau_s),
            signed_vol=DecayedSum(cfg.fast_tau_s),
            volume=DecayedSum(cfg.fast_tau_s),
            ticks=DecayedSum(cfg.intensity_tau_s),
            up=DecayedSum(cfg.rsi_tau_s),
            down=DecayedSum(cfg.rsi_tau_s),
            lagged={name: _Lagged(h) for name, h in self.horizons.items()},
        )

    def on_tick(self, tick: TradeTick | QuoteTick) -> FeatureVector | None:
        """Update the instrument's state with ``tick``; its features when a vector is due.

        With ``sample_ms`` set, a vector (and so a decision) comes only on the first tick of
        each event-time bucket; every other tick still moves the state, so a vector always
        sums up every tick before it. Buckets follow event time, never arrival, so live and
        replay sample the same ticks.
        """
        price = tick.reference_price
        state = self._state.get(tick.instrument)
        if state is None:
            state = self._state[tick.instrument] = self._new_state(price, tick.ts_event_ns)
        # Out-of-order ticks (within the validator's tolerance) do not run time backwards.
        now_ns = max(state.last_ts_ns, tick.ts_event_ns)
        dt_s = (now_ns - state.last_ts_ns) * NS
        ret = (math.log(price) - math.log(state.last_price)) * BPS_PER_UNIT
        log_price = self._advance(state, tick, price, ret, dt_s, now_ns)
        state.last_price = price
        state.last_ts_ns = now_ns
        if self.sample_ns:
            bucket = now_ns // self.sample_ns
            if bucket <= state.last_bucket:
                return None
            state.last_bucket = bucket
        values = self._values(state, tick, price, ret, dt_s, log_price)
        return FeatureVector(
            instrument=tick.instrument,
            tick_id=tick.tick_id,
            ts_event_ns=tick.ts_event_ns,
            price=price,
            values={name: values[name] for name in self.names},
        )

    def _advance(
        self,
        s: _State,
        tick: TradeTick | QuoteTick,
        price: float,
        ret: float,
        dt_s: float,
        now_ns: int,
    ) -> float:
        """Move every running statistic by one tick; returns the tick's log price (bps)."""
        decay = self._decays(dt_s)
        s.fast.add(ret, decay[0])
        s.slow.add(ret, decay[1])
        s.vol.add(ret, decay[2])
        s.rv.add(ret * ret, decay[2])
        s.ticks.add(1.0, decay[3])
        s.up.add(max(ret, 0.0), decay[4])
        s.down.add(max(-ret, 0.0), decay[4])
        # Log price relative to the first tick keeps the numbers small whatever the price level.
        log_price = (math.log(price) - math.log(s.first_price)) * BPS_PER_UNIT
        s.log_price.add(log_price, decay[1])
        signed = 0.0
        if isinstance(tick, QuoteTick):
            s.spread_bps = (tick.ask - tick.bid) / price * BPS_PER_UNIT
            bid_size, ask_size = tick.bid_size, tick.ask_size
            if bid_size is None or ask_size is None:  # no sizes: no side of the book leans
                s.imbalance = 0.0
            else:
                s.imbalance = ratio(bid_size - ask_size, bid_size + ask_size)
            # The size-weighted microprice is the mid moved by imbalance times half the spread;
            # in that form it is bounded by the spread, and the mid itself without sizes.
            s.microprice_bps = 0.5 * s.imbalance * s.spread_bps
            s.last_mid = price
            s.volume.add(0.0, decay[0])
        else:
            # Aggressor side: against the last mid when quotes are seen, else the tick rule.
            ref = s.last_mid if not math.isnan(s.last_mid) else s.last_trade
            if not math.isnan(ref) and price != ref:
                s.last_sign = 1.0 if price > ref else -1.0
            signed = s.last_sign * tick.size
            s.last_trade = price
            s.volume.add(tick.size, decay[0])
            s.log_size.add(math.log1p(tick.size), decay[1])
        s.signed_vol.add(signed, decay[0])
        for lagged in s.lagged.values():
            lagged.push(now_ns, price)
        return log_price

    def _decays(self, dt_s: float) -> tuple[float, float, float, float, float]:
        """``exp(-dt / tau)`` for the fast, slow, vol, intensity and RSI time constants: one
        each per tick, shared by the statistics that use the same constant."""
        if dt_s == 0.0:
            return _NO_DECAY
        fast, slow, vol, intensity, rsi = self._taus
        exp = math.exp
        return (
            exp(-dt_s / fast),
            exp(-dt_s / slow),
            exp(-dt_s / vol),
            exp(-dt_s / intensity),
            exp(-dt_s / rsi),
        )

    def _values(
        self,
        s: _State,
        tick: TradeTick | QuoteTick,
        price: float,
        ret: float,
        dt_s: float,
        log_price: float,
    ) -> dict[str, float]:
        vol = s.vol.std
        up, down = s.up.value, s.down.value
        values = {
            "ret_bps": ret,
            "mom_fast_bps": s.fast.mean,
            "mom_slow_bps": s.slow.mean,
            "vol_bps": vol,
            "rv_bps2": s.rv.value,
            "z_ret": clip(ratio(ret, vol), Z_BOUND),
            "z_price": clip(ratio(log_price - s.log_price.mean, s.log_price.std), Z_BOUND),
            "mid_dev_bps": log_price - s.log_price.mean,
            "spread_bps": s.spread_bps,
            "imbalance": s.imbalance,
            "microprice_bps": s.microprice_bps,
            "signed_volume": s.signed_vol.value,
            "trade_imbalance": clip(ratio(s.signed_vol.value, s.volume.value), 1.0),
            "z_volume": 0.0,
            "intensity_hz": s.ticks.value / self.config.intensity_tau_s,
            # moves below NOISE_BPS are float rounding of an unchanged price, not a direction
            "rsi": clip(ratio(up - down, up + down, NOISE_BPS), 1.0),
            "log_gap_s": math.log1p(dt_s),
        }
        if isinstance(tick, TradeTick):
            z = ratio(math.log1p(tick.size) - s.log_size.mean, s.log_size.std)
            values["z_volume"] = clip(z, Z_BOUND)
        for name, lagged in s.lagged.items():
            values[name] = lagged.value(price)
        return values

"""Causal per-instrument features, decayed in event time.

Every average here is an event-time exponentially weighted mean: the running sums decay by
``exp(-dt / tau)`` where ``dt`` is the gap between tick timestamps, and the new observation enters
with weight one. Ticks sharing a timestamp are averaged rather than ignored, the first ticks are
not biased towards zero, and nothing depends on how fast the ticks are delivered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from schemas.decisions import FeatureVector
from schemas.ticks import QuoteTick, TradeTick
from streams.config import FeatureConfig
from streams.operators.state import InstrumentStateMixin

NS = 1e-9
BPS = 1e4

FEATURE_NAMES = (
    "ret_bps",
    "mom_fast_bps",
    "mom_slow_bps",
    "vol_bps",
    "z_ret",
    "spread_bps",
    "imbalance",
    "log_gap_s",
)


class _Ewm:
    """Event-time exponentially weighted mean and variance of one series."""

    __slots__ = ("s0", "s1", "s2", "tau_s")

    def __init__(self, tau_s: float) -> None:
        self.tau_s = tau_s
        self.s0 = self.s1 = self.s2 = 0.0

    def update(self, x: float, dt_s: float) -> None:
        decay = math.exp(-dt_s / self.tau_s)
        self.s0 = self.s0 * decay + 1.0
        self.s1 = self.s1 * decay + x
        self.s2 = self.s2 * decay + x * x

    @property
    def mean(self) -> float:
        return self.s1 / self.s0 if self.s0 else 0.0

    @property
    def std(self) -> float:
        if not self.s0:
            return 0.0
        m = self.s1 / self.s0
        return math.sqrt(max(self.s2 / self.s0 - m * m, 0.0))


@dataclass
class _State:
    last_price: float
    last_ts_ns: int
    fast: _Ewm
    slow: _Ewm
    vol: _Ewm
    spread_bps: float = 0.0
    imbalance: float = 0.0


class FeatureEngine(InstrumentStateMixin):
    """Turn each clean tick into a feature vector using only that tick and earlier ones.

    Examples
    --------
    >>> from schemas.ticks import TradeTick
    >>> fe = FeatureEngine(FeatureConfig())
    >>> _ = fe.on_tick(TradeTick(tick_id="1", instrument="ES", ts_event_ns=0, price=100.0, size=1))
    >>> fv = fe.on_tick(TradeTick(tick_id="2", instrument="ES", ts_event_ns=10**9, price=101.0,
    ...                           size=1))
    >>> round(fv.values["ret_bps"], 2)
    99.5
    """

    names = FEATURE_NAMES

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._state: dict[str, _State] = {}

    def on_tick(self, tick: TradeTick | QuoteTick) -> FeatureVector:
        """Update the instrument's state with ``tick`` and return its features."""
        price = tick.reference_price
        state = self._state.get(tick.instrument)
        if state is None:
            cfg = self.config
            state = _State(
                price,
                tick.ts_event_ns,
                _Ewm(cfg.fast_tau_s),
                _Ewm(cfg.slow_tau_s),
                _Ewm(cfg.vol_tau_s),
            )
            self._state[tick.instrument] = state
        dt_s = max(tick.ts_event_ns - state.last_ts_ns, 0) * NS
        # A difference of logs, not the log of a ratio: the ratio of two extreme (but finite)
        # prices can overflow to inf and poison the averages for good.
        ret = (math.log(price) - math.log(state.last_price)) * BPS
        state.fast.update(ret, dt_s)
        state.slow.update(ret, dt_s)
        state.vol.update(ret, dt_s)
        vol = state.vol.std
        if isinstance(tick, QuoteTick):
            state.spread_bps = (tick.ask - tick.bid) / price * BPS
            depth = tick.bid_size + tick.ask_size
            state.imbalance = (tick.bid_size - tick.ask_size) / depth if depth > 0 else 0.0
        state.last_price = price
        state.last_ts_ns = max(state.last_ts_ns, tick.ts_event_ns)
        values = {
            "ret_bps": ret,
            "mom_fast_bps": state.fast.mean,
            "mom_slow_bps": state.slow.mean,
            "vol_bps": vol,
            "z_ret": max(-10.0, min(10.0, ret / vol)) if vol > 1e-12 else 0.0,
            "spread_bps": state.spread_bps,
            "imbalance": state.imbalance,
            "log_gap_s": math.log1p(dt_s),
        }
        return FeatureVector(
            instrument=tick.instrument,
            tick_id=tick.tick_id,
            ts_event_ns=tick.ts_event_ns,
            price=price,
            values=values,
        )

"""Which signals are published: every one, those of order intents, or those plus a sample.

A signal is a message per decided tick; a desk reads the ones behind its orders and a periodic
look at each model, and the model stage, the monitor and the audit chain see every one
whatever is published. The sample is taken in event time per instrument, so live and replay
publish the same signals.
"""

from __future__ import annotations

from tickwise.schemas.decisions import Signal
from tickwise.streams.config import SignalsConfig, parse_every
from tickwise.streams.operators.state import InstrumentStateMixin


class SignalSampler(InstrumentStateMixin):
    """Pick the signals of one decided tick to publish (``[signals] every``).

    Examples
    --------
    >>> SignalSampler(SignalsConfig(every="order")).select("ES", (), order_intent=False)
    ()
    """

    def __init__(self, config: SignalsConfig) -> None:
        self.config = config
        period_s = parse_every(config.every)
        self.period_ns = None if period_s is None else round(period_s * 1e9)
        # per instrument: model version key -> event-time period of its last sampled signal
        self._state: dict[str, dict[str, int]] = {}

    def select(
        self, instrument: str, signals: tuple[Signal, ...], order_intent: bool
    ) -> tuple[Signal, ...] | None:
        """The signals to publish, None for every one (``decision``); ``order_intent``: the
        tick's decision is an order, approved or refused."""
        if self.config.every == "decision":
            return None
        if order_intent:
            return signals
        if self.period_ns is None:  # "order"
            return ()
        last = self._state.get(instrument)
        if last is None:
            last = self._state[instrument] = {}
        out = []
        for signal in signals:
            key = f"{signal.model_id}:v{signal.model_version}"
            period = signal.ts_event_ns // self.period_ns
            if last.get(key) != period:
                last[key] = period
                out.append(signal)
        return tuple(out)

    def resume(self, instrument: str, model_key: str, period: int) -> None:
        """Go on from another sampler's state: ``model_key`` (``<id>:v<version>``) last
        published on ``instrument`` in event-time period ``period``."""
        self._state.setdefault(instrument, {})[model_key] = period

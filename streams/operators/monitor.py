"""The monitor: notice a model or a feed going wrong before the P&L does, in event time.

Per instrument and model it keeps rolling accuracy, trade counts, P&L and losing streaks, and
runs ADWIN (river's, bit for bit: ``streams.operators.adwin``) on the model's error. ADWIN
compares every split of its adaptive window and flags a change when the two means differ by
more than a Hoeffding-style bound at confidence ``drift_delta``. That bound assumes independent
inputs, and the 0/1 errors of consecutive ticks are not: their label horizons overlap, so one
price move makes hundreds of them wrong at once. ADWIN therefore gets one value per block of
``drift_block_s`` of event time (default: the label horizon), the block's mean error, and
checks at every block (``clock=1``). It alarms only when the error went *up* by at least
``drift_min_increase`` (a better model is no incident), and not before ``drift_grace`` blocks.
Outcomes are the model's labels (``streams.operators.labels.outcome``): the direction of the
log return over ``horizon_s`` of event time, known only once a later tick has arrived; a move
inside the label's dead zone has no direction and scores nothing, as it teaches the model
nothing.

Each alert code maps to a policy: ``alert`` only, ``demote`` the model to shadow,
``halt_instrument`` or ``global_kill``. Policies become ``ControlCommand``s effective from the
alert's event time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType

from tickwise.schemas.decisions import Alert, ControlCommand, Fill, Severity, Side, Signal
from tickwise.streams.config import LabelConfig, MonitorConfig, Policy
from tickwise.streams.operators.adwin import Adwin, feed_adwin
from tickwise.streams.operators.execution import AccountView
from tickwise.streams.operators.labels import NO_DIRECTION, UP, horizon_ns, outcome_one
from tickwise.streams.operators.state import InstrumentStateMixin

SEVERITY = MappingProxyType(
    {
        "MODEL_DRIFT": Severity.WARNING,
        "LOW_ACCURACY": Severity.WARNING,
        "LOSING_STREAK": Severity.WARNING,
        "PNL_LOSS": Severity.CRITICAL,
        "DATA_QUALITY": Severity.WARNING,
    }
)


def policy_command(
    alert: Alert, policy: Policy, operator: str, id_prefix: str
) -> ControlCommand | None:
    """The command a policy answers an alert with, effective from the alert's event time.

    The command's id is the alert's behind ``id_prefix``, so the same alert, derived
    again in a replay or re-sent after a restart, is the same command and applies once.

    Examples
    --------
    >>> alert = Alert(alert_id="a1", ts_event_ns=7, severity=Severity.CRITICAL,
    ...               code="PNL_LOSS", detail="down", instrument="ES")
    >>> cmd = policy_command(alert, "halt_instrument", "monitor", "mon-")
    >>> cmd.command, cmd.scope, cmd.effective_ts_event_ns, cmd.command_id
    ('kill_switch_on', 'ES', 7, 'mon-a1')
    >>> policy_command(alert, "alert", "monitor", "mon-") is None
    True
    """
    if policy == "alert":
        return None
    command = "demote" if policy == "demote" else "kill_switch_on"
    scope = "global" if policy == "global_kill" else (alert.instrument or "global")
    return ControlCommand(
        command_id=f"{id_prefix}{alert.alert_id}",
        command=command,  # type: ignore[arg-type]
        scope=scope,
        reason=f"{alert.code}: {alert.detail}",
        operator=operator,
        ts_event_ns=alert.ts_event_ns,
        model_id=alert.model_id if command == "demote" else None,
        effective_ts_event_ns=alert.ts_event_ns,
    )


@dataclass
class _ModelStats:
    adwin: Adwin
    hits: deque[bool]
    outcomes: int = 0
    signals: int = 0
    trades: int = 0
    streak: int = 0
    worst_streak: int = 0
    drifts: int = 0
    block_start_ns: int | None = None
    block_errors: float = 0.0
    block_n: int = 0
    armed: dict[str, bool] = field(default_factory=dict)


@dataclass
class _MonitorState:
    pending: deque[tuple[int, float, str, float, Side]] = field(default_factory=deque)
    models: dict[str, _ModelStats] = field(default_factory=dict)
    quality: deque[bool] = field(default_factory=deque)
    quality_bad: int = -1  # how many of ``quality`` are True; -1: count it (older checkpoints)
    quality_armed: bool = True
    last_price: float = 0.0
    last_ts_ns: int = 0
    validated_ts_ns: int = 0
    realized: float = 0.0
    alerts: int = 0


class Monitor(InstrumentStateMixin):
    """Rolling model and data-quality statistics per instrument, with alerts and policies.

    Examples
    --------
    >>> from tickwise.streams.config import LabelConfig, MonitorConfig, Policy
    >>> mon = Monitor(MonitorConfig(max_losing_streak=2), LabelConfig())
    >>> mon.on_validated("ES", clean=True, ts_event_ns=0)
    []
    >>> mon.stats("ES")["quarantine_rate"]
    0.0
    """

    def __init__(self, config: MonitorConfig, label: LabelConfig) -> None:
        self.config = config
        self.horizon_ns = horizon_ns(label.horizon_s)
        self.dead_zone_bps = label.dead_zone_bps
        block_s = config.drift_block_s if config.drift_block_s is not None else label.horizon_s
        self.block_ns = horizon_ns(block_s)
        self._state: dict[str, _MonitorState] = {}

    def _get(self, instrument: str) -> _MonitorState:
        st = self._state.get(instrument)
        if st is None:
            st = self._state[instrument] = _MonitorState()
        return st

    def _model(self, st: _MonitorState, model_id: str) -> _ModelStats:
        m = st.models.get(model_id)
        if m is None:
            # clock=1: check for change at every block (river checks every 32 inputs by default)
            adwin = Adwin(
                delta=self.config.drift_delta, clock=1, grace_period=self.config.drift_grace
            )
            m = st.models[model_id] = _ModelStats(adwin, deque(maxlen=self.config.accuracy_window))
        return m

    # --- inputs -----------------------------------------------------------------------------

    def on_tick(self, instrument: str, ts_event_ns: int, price: float) -> list[Alert]:
        """Score every signal whose horizon has passed; return drift / accuracy alerts."""
        st = self._get(instrument)
        alerts: list[Alert] = []
        while st.pending and st.pending[0][0] + self.horizon_ns < ts_event_ns:
            signal_ts, entry, model_id, score, side = st.pending.popleft()
            _, sign = outcome_one(entry, st.last_price, self.dead_zone_bps)
            if sign == NO_DIRECTION:
                continue  # as for the model: no label, nothing to score
            alerts += self._outcome(instrument, st, model_id, score, side, sign == UP, signal_ts)
        st.last_price, st.last_ts_ns = price, max(st.last_ts_ns, ts_event_ns)
        return alerts

    def on_signal(self, signal: Signal, price: float) -> None:
        """Remember a signal until its outcome is known."""
        st = self._get(signal.instrument)
        self._model(st, signal.model_id).signals += 1
        st.pending.append((signal.ts_event_ns, price, signal.model_id, signal.score, signal.side))

    def on_fill(self, fill: Fill) -> list[Alert]:
        """Count the trade; a fill that realized a loss extends the losing streak."""
        st = self._get(fill.instrument)
        m = self._model(st, fill.model_id)
        m.trades += 1
        realized_before, st.realized = st.realized, fill.realized_pnl_after
        if fill.realized_pnl_after == realized_before:
            return []  # opened or added: nothing realized yet
        realized = fill.realized_pnl_after - realized_before - fill.fee
        m.streak = m.streak + 1 if realized < 0.0 else 0
        m.worst_streak = max(m.worst_streak, m.streak)
        return self._arm(
            fill.instrument,
            st,
            fill.model_id,
            "LOSING_STREAK",
            m.streak >= self.config.max_losing_streak,
            f"{m.streak} losing trades in a row",
            fill.ts_event_ns,
        )

    def on_account(self, account: AccountView, model_id: str) -> list[Alert]:
        """Alert when the instrument's net P&L falls below ``-max_loss``."""
        if self.config.max_loss is None:
            return []
        st = self._get(account.instrument)
        return self._arm(
            account.instrument,
            st,
            model_id,
            "PNL_LOSS",
            account.net_pnl < -self.config.max_loss,
            f"net P&L {account.net_pnl:.2f} below -{self.config.max_loss:g}",
            account.ts_event_ns,
        )

    def on_validated(self, instrument: str, clean: bool, ts_event_ns: int | None) -> list[Alert]:
        """Track the quarantine rate over the last ``quarantine_window`` messages.

        A quarantined message may have no usable timestamp: its alert carries the event time
        of the instrument's last clean tick.
        """
        cfg = self.config
        st = self._get(instrument)
        if ts_event_ns is not None:
            st.validated_ts_ns = max(st.validated_ts_ns, ts_event_ns)
        ts_event_ns = st.validated_ts_ns
        # A running count: summing a 1,000-message window on every tick was a tenth of a
        # tick's cost.
        if st.quality_bad < 0:
            st.quality_bad = sum(st.quality)
        st.quality.append(not clean)
        st.quality_bad += not clean
        if len(st.quality) > cfg.quarantine_window:
            st.quality_bad -= st.quality.popleft()
        rate = st.quality_bad / len(st.quality)
        bad = len(st.quality) >= min(100, cfg.quarantine_window) and rate > cfg.max_quarantine_rate
        if bad and st.quality_armed:
            st.quality_armed = False
            detail = f"quarantine rate {rate:.1%} over {len(st.quality)} messages"
            return [self._alert(instrument, st, None, "DATA_QUALITY", detail, ts_event_ns)]
        if not bad:
            st.quality_armed = True
        return []

    # --- outputs ----------------------------------------------------------------------------

    def act(self, alert: Alert) -> ControlCommand | None:
        """The command a policy asks for (None for ``alert`` only)."""
        policy = self.config.policies.get(alert.code, "alert")
        return policy_command(alert, policy, "monitor", "mon-")

    def stats(self, instrument: str) -> dict[str, object]:
        """A summary per model (accuracy, outcomes, trades, streaks, drifts) for reports."""
        st = self._get(instrument)
        q = st.quality
        return {
            "quarantine_rate": sum(q) / len(q) if q else 0.0,
            "models": {
                name: {
                    "accuracy": sum(m.hits) / len(m.hits) if m.hits else None,
                    "outcomes": m.outcomes,
                    "signals": m.signals,
                    "trades": m.trades,
                    "losing_streak": m.streak,
                    "worst_losing_streak": m.worst_streak,
                    "drifts": m.drifts,
                    "error_estimate": m.adwin.estimation,
                }
                for name, m in sorted(st.models.items())
            },
        }

    # --- internals --------------------------------------------------------------------------

    def _outcome(
        self,
        instrument: str,
        st: _MonitorState,
        model_id: str,
        score: float,
        side: Side,
        up: bool,
        ts: int,
    ) -> list[Alert]:
        m = self._model(st, model_id)
        m.outcomes += 1
        alerts: list[Alert] = []
        if m.block_start_ns is None:
            m.block_start_ns = ts
        elif ts >= m.block_start_ns + self.block_ns:
            x = m.block_errors / m.block_n
            fire, old, now = feed_adwin(m.adwin, x, self.config.drift_min_increase)
            m.block_start_ns, m.block_errors, m.block_n = ts, 0.0, 0
            if fire:
                m.drifts += 1
                detail = f"error rate rose from {old:.3f} to {now:.3f} (ADWIN)"
                alerts.append(self._alert(instrument, st, model_id, "MODEL_DRIFT", detail, ts))
        m.block_errors += float((score > 0.5) != up)
        m.block_n += 1
        if side is not Side.FLAT:
            m.hits.append((side is Side.BUY) == up)
        if self.config.min_accuracy is not None and len(m.hits) == m.hits.maxlen:
            accuracy = sum(m.hits) / len(m.hits)
            alerts += self._arm(
                instrument,
                st,
                model_id,
                "LOW_ACCURACY",
                accuracy < self.config.min_accuracy,
                f"accuracy {accuracy:.1%} over the last {len(m.hits)} signals",
                ts,
            )
        return alerts

    def _arm(
        self,
        instrument: str,
        st: _MonitorState,
        model_id: str,
        code: str,
        firing: bool,
        detail: str,
        ts: int,
    ) -> list[Alert]:
        """Alert once when a condition starts; re-arm when it clears."""
        m = self._model(st, model_id)
        armed = m.armed.get(code, True)
        m.armed[code] = not firing
        if firing and armed:
            return [self._alert(instrument, st, model_id, code, detail, ts)]
        return []

    def _alert(
        self,
        instrument: str,
        st: _MonitorState,
        model_id: str | None,
        code: str,
        detail: str,
        ts: int,
    ) -> Alert:
        st.alerts += 1
        return Alert(
            alert_id=f"alert-{instrument}-{st.alerts}-{code}",
            ts_event_ns=ts,
            severity=SEVERITY.get(code, Severity.WARNING),
            code=code,
            detail=detail,
            instrument=instrument,
            model_id=model_id,
        )

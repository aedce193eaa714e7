"""What the console shows, as plain state built from topic messages (message in, state out).

Pure on purpose: no Kafka, no web framework, no wall clock. The server feeds it every message it
reads and pushes ``snapshot()`` to browsers, and the unit tests feed it messages directly. It
keeps a small, bounded view per instrument (last price, position, P&L, risk state, the latest
signals with their explanations), per model (stage, rolling accuracy, scored by the monitor's
own rule) and for the desk (alerts, data quality by reason, rejections by reason, controls and
the audit records that applied them, with the operator who asked). Beside a watchtower it also
keeps the last answers of its views (``on_watch``): each instrument's account over the whole
trail stands in for what the console's tail of the topics shows, and the page gets the chart
series of the windows (``charts``).
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from tickwise.schemas.decisions import (
    AUDIT_ADAPTER,
    Alert,
    AuditRecord,
    ControlCommand,
    Decision,
    Fill,
    HoldSummary,
    Signal,
    Stage,
    TradingState,
)
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.topics import (
    ALERTS,
    AUDIT,
    CONTROL,
    DECISIONS,
    FILLS,
    SIGNALS,
    TICKS_QUARANTINE,
)
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.console.charts import instrument_series, lag_series
from tickwise.streams.operators.monitor import Monitor

# The topics the console reads, and how each is decoded (keyed by catalogue name).
SPECS = (DECISIONS, SIGNALS, FILLS, ALERTS, TICKS_QUARANTINE, AUDIT, CONTROL)
CONTRACTS: dict[str, Callable[[bytes], Any]] = {
    DECISIONS.name: Decision.model_validate_json,
    SIGNALS.name: Signal.model_validate_json,
    FILLS.name: Fill.model_validate_json,
    ALERTS.name: Alert.model_validate_json,
    TICKS_QUARANTINE.name: QuarantineRecord.model_validate_json,
    AUDIT.name: AUDIT_ADAPTER.validate_json,  # a decision's record or a summary of holds
    CONTROL.name: ControlCommand.model_validate_json,
}
KEEP_SIGNALS = 5
KEEP_EVENTS = 25
KEEP_UNPAIRED = 20_000  # signals and decisions waiting for their pair (they travel apart)


@dataclass
class InstrumentView:
    """The latest of one instrument."""

    last_price: float | None = None
    ts_event_ns: int = 0
    position: float = 0.0
    cash: float | None = None
    realized_pnl: float = 0.0
    fees: float = 0.0
    risk_state: str = TradingState.ACTIVE.value
    decisions: int = 0
    approved_orders: int = 0
    fills: int = 0
    audit_records: int = 0
    holds: int = 0  # HOLD decisions counted in hold summaries (not published one by one)
    last_decision: dict[str, Any] | None = None
    last_holds: dict[str, Any] | None = None  # the latest summary of a run of holds
    signals: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP_SIGNALS))


def explain(signal: Signal) -> str:
    """One readable line: the features that pushed the score, strongest first.

    Examples
    --------
    >>> from tickwise.schemas.decisions import Contribution
    >>> s = Signal(signal_id="s", instrument="ES", tick_id="t", ts_event_ns=0, model_id="m",
    ...            model_version=1, score=0.7, side="BUY", confidence=0.4, n_trained=9,
    ...            explanation=[Contribution(feature="ret_1s", value=2.0, weight=0.5,
    ...                                      contribution=1.0)])
    >>> explain(s)
    'ret_1s=+2 pushed up (+1.00)'
    """
    parts = []
    for c in sorted(signal.explanation, key=lambda c: -abs(c.contribution)):
        direction = "up" if c.contribution >= 0 else "down"
        parts.append(f"{c.feature}={c.value:+.3g} pushed {direction} ({c.contribution:+.2f})")
    return "; ".join(parts) or "no explanation"


def _bounded_put(store: OrderedDict[str, Any], key: str, value: Any) -> None:
    store[key] = value
    if len(store) > KEEP_UNPAIRED:
        store.popitem(last=False)


class ConsoleView:
    """The console's state, fed one topic message at a time.

    Examples
    --------
    >>> view = ConsoleView()
    >>> cmd = ControlCommand(command_id="k1", command="kill_switch_on", scope="global",
    ...                      reason="desk limit", operator="alice", ts_event_ns=1)
    >>> view.apply("control", cmd.to_bytes())
    True
    >>> view.snapshot()["kill_switches"]
    {'global': {'on': True, 'operator': 'alice', 'reason': 'desk limit', 'ts_event_ns': 1}}
    >>> view.apply("control", b"not json")   # counted, never raised
    False
    """

    def __init__(self, config: TickwiseConfig | None = None) -> None:
        self.config = config or TickwiseConfig()
        self.instruments: dict[str, InstrumentView] = {}
        self.monitor = Monitor(self.config.monitor, self.config.label)
        self.stages: dict[str, str] = {}  # "model:vN" -> stage, from the signals it emits
        self.quality: Counter[str] = Counter()
        self.quality_by_instrument: Counter[tuple[str, str]] = Counter()
        self.rejections: Counter[str] = Counter()
        self.alert_counts: Counter[str] = Counter()
        self.alerts: deque[dict[str, Any]] = deque(maxlen=KEEP_EVENTS)
        self.controls: deque[dict[str, Any]] = deque(maxlen=KEEP_EVENTS)
        self.kill_switches: dict[str, dict[str, Any]] = {}
        self.audit: deque[dict[str, Any]] = deque(maxlen=KEEP_EVENTS)
        self.counts: Counter[str] = Counter()
        self.undecodable: Counter[str] = Counter()
        self.version = 0  # bumped on every change, so the server pushes only when it moved
        self.ready = False  # the server's word: what it must read first is read
        # the watchtower's views, when the console is pointed at one (None: topics alone)
        self.watch: dict[str, Any] | None = None
        # a signal is scored at its own tick's price, which its decision carries
        self._signals: OrderedDict[str, Signal] = OrderedDict()
        self._prices: OrderedDict[str, float] = OrderedDict()

    def _instrument(self, name: str) -> InstrumentView:
        view = self.instruments.get(name)
        if view is None:
            view = self.instruments[name] = InstrumentView()
        return view

    def apply(self, topic: str, value: bytes) -> bool:
        """Take one message of catalogue topic ``topic``; False if it does not decode.

        An undecodable message is counted per topic (shown on the page), never raised: the
        console only reads, and the pipeline quarantines bad input where it owns it.
        """
        decode = CONTRACTS.get(topic)
        if decode is None:
            raise ValueError(f"the console does not read topic {topic!r}")
        try:
            message = decode(value)
        except ValidationError:
            self.undecodable[topic] += 1
            self.version += 1
            return False
        self.counts[topic] += 1
        getattr(self, f"_on_{type(message).__name__.lower()}")(message)
        self.version += 1
        return True

    # --- one handler per contract ---------------------------------------------------------

    def _on_decision(self, d: Decision) -> None:
        view = self._instrument(d.instrument)
        view.decisions += 1
        view.approved_orders += d.approved and d.action.value != "HOLD"
        if d.ts_event_ns >= view.ts_event_ns:
            view.last_price, view.ts_event_ns = d.price, d.ts_event_ns
        for reason in d.reject_reasons:
            self.rejections[reason] += 1
        view.last_decision = {
            "action": d.action.value,
            "quantity": d.quantity,
            "price": d.price,
            "approved": d.approved,
            "reject_reasons": list(d.reject_reasons),
            "ts_event_ns": d.ts_event_ns,
            "model": f"{d.model_id}:v{d.model_version}",
        }
        self.monitor.on_tick(d.instrument, d.ts_event_ns, d.price)
        signal = self._signals.pop(d.signal_id, None)
        if signal is not None:
            self.monitor.on_signal(signal, d.price)
        else:
            _bounded_put(self._prices, d.signal_id, d.price)

    def _on_signal(self, s: Signal) -> None:
        view = self._instrument(s.instrument)
        key = f"{s.model_id}:v{s.model_version}"
        self.stages[key] = s.stage
        view.signals.appendleft(
            {
                "model": key,
                "stage": s.stage,
                "side": s.side.value,
                "score": s.score,
                "confidence": s.confidence,
                "ts_event_ns": s.ts_event_ns,
                "explanation": explain(s),
                "contributions": [
                    {"feature": c.feature, "value": c.value, "contribution": c.contribution}
                    for c in s.explanation
                ],
            }
        )
        # scored like the model's labels: direction over the horizon, once it has passed;
        # shadow signals have no decision, so they take the instrument's last price
        price = self._prices.pop(s.signal_id, None)
        if price is None and s.stage == Stage.SHADOW:
            price = view.last_price
        if price is not None:
            self.monitor.on_signal(s, price)
        else:
            _bounded_put(self._signals, s.signal_id, s)

    def _on_fill(self, f: Fill) -> None:
        view = self._instrument(f.instrument)
        view.fills += 1
        view.position = f.position_after
        view.cash = f.cash_after
        view.realized_pnl = f.realized_pnl_after
        view.fees += f.fee
        self.monitor.on_fill(f)

    def _on_alert(self, a: Alert) -> None:
        self.alert_counts[a.code] += 1
        self.alerts.appendleft(
            {
                "code": a.code,
                "severity": a.severity.value,
                "detail": a.detail,
                "instrument": a.instrument,
                "model": a.model_id,
                "ts_event_ns": a.ts_event_ns,
            }
        )

    def _on_quarantinerecord(self, q: QuarantineRecord) -> None:
        self.quality[q.reason.value] += 1
        self.quality_by_instrument[(q.instrument or "?", q.reason.value)] += 1

    def _on_auditrecord(self, r: AuditRecord) -> None:
        view = self._instrument(r.instrument)
        view.audit_records += 1
        view.risk_state = r.trading_state.value
        for a in r.controls_applied:
            self.audit.appendleft(
                {
                    "instrument": r.instrument,
                    "seq": r.seq,
                    "audit_id": r.audit_id,
                    "command_id": a.command_id,
                    "command": a.command,
                    "scope": a.scope,
                    "reason": a.reason,
                    "operator": a.operator,
                    "applied_ts_event_ns": a.applied_ts_event_ns,
                    "trading_state": r.trading_state.value,
                }
            )

    def _on_holdsummary(self, h: HoldSummary) -> None:
        view = self._instrument(h.instrument)
        view.audit_records += 1
        view.holds += h.holds
        view.decisions += h.holds
        view.risk_state = h.trading_state.value
        view.last_holds = {
            "holds": h.holds,
            "from_ts_event_ns": h.from_ts_event_ns,
            "to_ts_event_ns": h.to_ts_event_ns,
            "position": h.position,
            "reasons": dict(h.reasons),
            "model": f"{h.model_id}:v{h.model_version}",
        }
        last = view.last_decision
        if last is None or h.to_ts_event_ns >= last["ts_event_ns"]:
            # the latest decision was a HOLD: show the run it belongs to
            view.last_decision = {
                "action": "HOLD",
                "quantity": 0.0,
                "price": None,
                "approved": True,
                "reject_reasons": [],
                "ts_event_ns": h.to_ts_event_ns,
                "model": f"{h.model_id}:v{h.model_version}",
                "holds": h.holds,
                "reasons": dict(h.reasons),
            }

    def _on_controlcommand(self, c: ControlCommand) -> None:
        self.controls.appendleft(
            {
                "command_id": c.command_id,
                "command": c.command,
                "scope": c.scope,
                "reason": c.reason,
                "operator": c.operator,
                "ts_event_ns": c.ts_event_ns,
                "model": f"{c.model_id}:v{c.model_version}" if c.model_id else None,
            }
        )
        if c.command in ("kill_switch_on", "kill_switch_off"):
            self.kill_switches[c.scope] = {
                "on": c.command == "kill_switch_on",
                "operator": c.operator,
                "reason": c.reason,
                "ts_event_ns": c.ts_event_ns,
            }

    def on_ready(self) -> None:
        self.ready = True
        self.version += 1

    def on_watch(
        self,
        url: str,
        health: dict[str, Any] | None,
        windows: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        """Take what the watchtower's views answered; a failed read keeps the last answers and
        shows the error beside them."""
        last = self.watch or {}
        self.watch = {
            "url": url,
            "health": health if health is not None else last.get("health"),
            "windows": windows if windows is not None else last.get("windows"),
            "error": error,
        }
        self.version += 1

    def _accounts(self) -> dict[str, dict[str, Any]]:
        """Each instrument's account as the watchtower keeps it over the whole trail: that of
        its key (model version) that moved last."""
        windows = (self.watch or {}).get("windows") or {}
        out: dict[str, dict[str, Any]] = {}
        for key in sorted(windows.get("keys", []), key=lambda k: k.get("latest_ns") or 0):
            if key["account"]["cash"] is not None:
                out[key["instrument"]] = key["account"]
        return out

    # --- what the page gets ---------------------------------------------------------------

    def pnl(self, view: InstrumentView) -> float | None:
        """Equity change of the instrument's paper account: cash + position at the last price."""
        if view.cash is None or view.last_price is None:
            return None
        mark = view.position * view.last_price * self.config.execution.multiplier
        return view.cash + mark - self.config.execution.initial_cash

    def models(self) -> list[dict[str, Any]]:
        """Per instrument and model: stage and rolling accuracy (the monitor's own scoring)."""
        rows = []
        for name in sorted(self.instruments):
            stats = self.monitor.stats(name)["models"]
            for model_id, m in stats.items():  # type: ignore[union-attr]
                stages = {k: s for k, s in self.stages.items() if k.split(":v")[0] == model_id}
                rows.append(
                    {
                        "instrument": name,
                        "model": model_id,
                        "stages": stages,
                        "accuracy": m["accuracy"],
                        "outcomes": m["outcomes"],
                        "signals": m["signals"],
                        "trades": m["trades"],
                        "losing_streak": m["losing_streak"],
                    }
                )
        return rows

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data."""
        instruments = {}
        accounts = self._accounts()
        for name in sorted(set(self.instruments) | set(accounts)):
            v = self.instruments.get(name) or InstrumentView()
            account = accounts.get(name)
            if account is not None:  # the watchtower read the whole trail; the console its tail
                v = replace(
                    v,
                    position=account["position"],
                    cash=account["cash"],
                    realized_pnl=account["realized_pnl"] or 0.0,
                    last_price=account["price"] if v.last_price is None else v.last_price,
                )
            quality = {r: n for (i, r), n in self.quality_by_instrument.items() if i == name}
            instruments[name] = {
                "last_price": v.last_price,
                "ts_event_ns": v.ts_event_ns,
                "position": v.position,
                "pnl": self.pnl(v),
                "realized_pnl": v.realized_pnl,
                "fees": v.fees,
                "risk_state": v.risk_state,
                "decisions": v.decisions,
                "approved_orders": v.approved_orders,
                "fills": v.fills,
                "audit_records": v.audit_records,
                "holds": v.holds,
                "last_decision": v.last_decision,
                "last_holds": v.last_holds,
                "signals": list(v.signals),
                "quarantined": quality,
            }
        return {
            "version": self.version,
            "instruments": instruments,
            "models": self.models(),
            "stages": dict(sorted(self.stages.items())),
            "quality": dict(self.quality.most_common()),
            "rejections": dict(self.rejections.most_common()),
            "alerts": list(self.alerts),
            "alert_counts": dict(self.alert_counts.most_common()),
            "kill_switches": self._kill_switches(),
            "controls": list(self.controls),
            "audit": list(self.audit),
            "counts": dict(self.counts),
            "undecodable": dict(self.undecodable),
            "ready": self.ready,
            "watch": self._watch_snapshot(),
        }

    def _kill_switches(self) -> dict[str, dict[str, Any]]:
        """The switches from the control commands read, and those the watchtower holds in
        force that the console's tail of the control topic no longer reaches."""
        health = ((self.watch or {}).get("health")) or {}
        out = dict(self.kill_switches)
        for scope, on in (health.get("kill_switches") or {}).items():
            if scope not in out:
                out[scope] = {"on": on, "operator": None, "reason": None, "ts_event_ns": None}
        return dict(sorted(out.items()))

    def _watch_snapshot(self) -> dict[str, Any] | None:
        """The watchtower's health and the chart series of its windows (the page draws these,
        not the windows themselves, so each push stays small)."""
        if self.watch is None:
            return None
        health = self.watch["health"]
        windows = self.watch["windows"]
        return {
            "url": self.watch["url"],
            "error": self.watch["error"],
            "health": {k: v for k, v in health.items() if k != "lag_history"} if health else None,
            "lag": lag_series(health) if health else None,
            "charts": instrument_series(windows) if windows else {},
            "tumbling_s": windows.get("tumbling_s") if windows else None,
        }

"""Event-time windows of trading activity per instrument and model version, from the audit trail.

The audit topic alone carries everything the windows count, in the order the worker decided
it: each record's decision (an order intent, approved or refused), its order and the fills
since the previous record, and the summaries of the runs of holds between records. Reading
the decisions and fills topics as well would count the same facts twice.

Windows are over event time (``ts_event_ns``), aligned to the epoch: a tumbling window of
``window_s`` and a hopping window of ``hop_size_s`` every ``hop_step_s``. A key's windows close
when an entry of that key arrives at or past their end, so a replay of the same topic closes
the same windows with the same counts, whatever the wall clock did. An entry older than the
key's latest entry (never, on a chain of one instrument) counts at that latest time. A hold
summary counts at its last hold: with windows a multiple of ``[audit] hold_summary_s`` (the
defaults), a run never straddles a window's edge.

Why here and not faust's windowed tables: those take an event's time from the Kafka record
timestamp, or from a field of a faust ``Record`` (our values are our own codec's bytes), and
expire windows against the wall clock; and the detector needs the list of a key's trailing
windows, which a faust window wrapper does not enumerate. So the arithmetic is a pure module
tested without Kafka, and the state, one JSON-able dict per key, lives in a faust table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tickwise.schemas.decisions import Action, AuditRecord, Fill, HoldSummary, Side
from tickwise.streams.config import AnomalyConfig, LabelConfig
from tickwise.streams.operators.labels import NO_DIRECTION, UP, horizon_ns, outcome_one

TUMBLING = "tumbling"
HOPPING = "hopping"
# Signals awaiting their outcome per key; beyond this many the oldest are dropped unscored.
MAX_PENDING = 2000

State = dict[str, Any]  # one key's windows and account, JSON-able (a faust table's value)
Counts = dict[str, Any]  # one window's figures


@dataclass(frozen=True)
class WindowSpec:
    """A window family: tumbling when ``step_ns == size_ns``."""

    name: str
    size_ns: int
    step_ns: int

    def starts(self, ts_ns: int) -> list[int]:
        """Starts of the windows holding ``ts_ns``, oldest first.

        Examples
        --------
        >>> WindowSpec("h", 300, 100).starts(250)
        [0, 100, 200]
        >>> WindowSpec("t", 60, 60).starts(59), WindowSpec("t", 60, 60).starts(60)
        ([0], [60])
        """
        last = ts_ns - ts_ns % self.step_ns
        first = last - ((self.size_ns - 1) // self.step_ns) * self.step_ns
        return [s for s in range(first, last + 1, self.step_ns) if s <= ts_ns < s + self.size_ns]


def window_specs(config: AnomalyConfig) -> tuple[WindowSpec, WindowSpec]:
    """The tumbling window the detectors judge and the hopping one shown beside it."""
    size = round(config.window_s * 1e9)
    return (
        WindowSpec(TUMBLING, size, size),
        WindowSpec(HOPPING, round(config.hop_size_s * 1e9), round(config.hop_step_s * 1e9)),
    )


def key_of(instrument: str, model_id: str, model_version: int) -> str:
    """The table key of an instrument and model version."""
    return f"{instrument}|{model_id}|v{model_version}"


def empty_counts(start_ns: int, end_ns: int, position: float = 0.0) -> Counts:
    """A window nothing has happened in yet; ``position``: the account's as it opens."""
    return {
        "start_ns": start_ns,
        "end_ns": end_ns,
        "decided_ticks": 0,
        "intents": 0,  # BUY or SELL decisions, approved or refused
        "orders": 0,  # approved ones
        "fills": 0,
        "refusals": {},  # reason -> count
        "realized_pnl": 0.0,
        "marked_pnl": 0.0,  # change of cash + position x last price over the window
        "outcomes": 0,
        "hits": 0,
        "position": position,  # the account's position at the window's last fill (or open)
    }


def accuracy(counts: Counts) -> float | None:
    """Share of scored signals whose side the outcome agreed with; None before any outcome."""
    return counts["hits"] / counts["outcomes"] if counts["outcomes"] else None


def new_state() -> State:
    return {
        "latest_ns": None,
        "open": {TUMBLING: {}, HOPPING: {}},
        "closed": {TUMBLING: [], HOPPING: []},
        "firing": [],
        "cash": None,
        "position": 0.0,
        "price": None,
        "mark": None,
        "realized": None,
        "pending": [],
    }


@dataclass(frozen=True)
class Closed:
    """A tumbling window that just closed, with the trailing ones before it (oldest first)."""

    key: str
    instrument: str
    model_id: str
    model_version: int
    window: Counts
    history: list[Counts]


class Windows:
    """Each key's windows over the audit trail; ``states`` is a mapping (a faust table live).

    Examples
    --------
    >>> from tickwise.streams.config import AnomalyConfig, LabelConfig
    >>> w = Windows(AnomalyConfig(window_s=1, hop_size_s=2, hop_step_s=1), LabelConfig(), {})
    >>> w.window_starts(1_500_000_000)
    {'tumbling': [1000000000], 'hopping': [0, 1000000000]}
    """

    def __init__(self, config: AnomalyConfig, label: LabelConfig, states: Any) -> None:
        self.config = config
        self.specs = window_specs(config)
        self.horizon_ns = horizon_ns(label.horizon_s)
        self.dead_zone_bps = label.dead_zone_bps
        self.states = states

    def window_starts(self, ts_ns: int) -> dict[str, list[int]]:
        """The windows of each family an entry at ``ts_ns`` counts in."""
        return {spec.name: spec.starts(ts_ns) for spec in self.specs}

    def on_entry(self, entry: AuditRecord | HoldSummary) -> list[Closed]:
        """Count one audit entry; return the tumbling windows it closed."""
        closed: list[Closed] = []
        if isinstance(entry, HoldSummary):
            key = key_of(entry.instrument, entry.model_id, entry.model_version)
            st, closed = self._advance(key, entry.to_ts_event_ns, closed)

            def holds(c: Counts) -> None:
                c["decided_ticks"] += entry.holds

            self._count(st, st["latest_ns"], holds)
            self.states[key] = st
            return closed
        d = entry.decision
        ts = entry.ts_event_ns
        by_fill: dict[str, list[Fill]] = {}
        for fill in entry.fills:
            fill_key = key_of(fill.instrument, fill.model_id, fill.model_version)
            by_fill.setdefault(fill_key, []).append(fill)
        key = key_of(d.instrument, d.model_id, d.model_version)
        for fill_key, fills in by_fill.items():
            if fill_key != key:
                st, closed = self._advance(fill_key, ts, closed)
                self._fills(st, fills)
                self.states[fill_key] = st
        st, closed = self._advance(key, ts, closed)
        self._fills(st, by_fill.get(key, []))
        self._score(st, st["latest_ns"], d.price)
        intent = d.action is not Action.HOLD
        reasons = list(d.reject_reasons) if intent and not d.approved else []

        def decided(c: Counts) -> None:
            c["decided_ticks"] += 1
            c["intents"] += intent
            c["orders"] += intent and d.approved
            for reason in reasons:
                c["refusals"][reason] = c["refusals"].get(reason, 0) + 1

        self._count(st, st["latest_ns"], decided)
        if d.side is not Side.FLAT:
            st["pending"] = [*st["pending"], [ts, d.price, d.side is Side.BUY]][-MAX_PENDING:]
        self.states[key] = st
        return closed

    # --- internals --------------------------------------------------------------------------

    def _advance(self, key: str, ts: int, closed: list[Closed]) -> tuple[State, list[Closed]]:
        """The key's state with every window that ends at or before ``ts`` closed."""
        known = self.states.get(key)
        st = new_state() if known is None else known
        latest = ts if st["latest_ns"] is None else max(st["latest_ns"], ts)
        st["latest_ns"] = latest
        instrument, model_id, version = key.split("|")
        for spec in self.specs:
            windows = st["open"][spec.name]
            for start in sorted(windows, key=int):
                counts = windows[start]
                if counts["end_ns"] > latest:
                    continue
                del windows[start]
                history = st["closed"][spec.name]
                if spec.name == TUMBLING:
                    closed = [
                        *closed,
                        Closed(key, instrument, model_id, int(version[1:]), counts, list(history)),
                    ]
                st["closed"][spec.name] = [*history, counts][-self.config.history :]
        return st, closed

    def _count(self, st: State, ts: int, update: Any) -> None:
        """Apply ``update`` to every open window holding ``ts``, opening the missing ones."""
        for spec in self.specs:
            windows = st["open"][spec.name]
            for start in spec.starts(ts):
                counts = windows.get(str(start))
                if counts is None:
                    counts = windows[str(start)] = empty_counts(
                        start, start + spec.size_ns, st["position"]
                    )
                update(counts)

    def _fills(self, st: State, fills: list[Fill]) -> None:
        for fill in fills:
            realized = 0.0 if st["realized"] is None else fill.realized_pnl_after - st["realized"]
            first = st["cash"] is None
            st["realized"] = fill.realized_pnl_after
            st["cash"], st["position"] = fill.cash_after, fill.position_after
            if first:
                st["mark"] = None  # the account is known from here: its level is no P&L

            def filled(
                c: Counts, realized: float = realized, position: float = fill.position_after
            ) -> None:
                c["fills"] += 1
                c["realized_pnl"] += realized
                c["position"] = position

            self._count(st, st["latest_ns"], filled)
            self._mark(st, fill.reference_price)

    def _score(self, st: State, ts: int, price: float) -> None:
        """Score the signals whose horizon has passed against the last price before ``ts``;
        then mark the account to ``price``."""
        last = st["price"]
        outcomes = hits = 0
        pending = st["pending"]
        while pending and pending[0][0] + self.horizon_ns < ts and last is not None:
            _, entry, buy = pending.pop(0)
            _, sign = outcome_one(entry, last, self.dead_zone_bps)
            if sign == NO_DIRECTION:
                continue
            outcomes += 1
            hits += (sign == UP) == buy
        if outcomes:

            def scored(c: Counts) -> None:
                c["outcomes"] += outcomes
                c["hits"] += hits

            self._count(st, ts, scored)
        self._mark(st, price)

    def _mark(self, st: State, price: float) -> None:
        st["price"] = price
        if st["cash"] is None:
            return  # nothing filled yet: no account to mark
        mark = st["cash"] + st["position"] * price
        if st["mark"] is not None:
            change = mark - st["mark"]

            def marked(c: Counts) -> None:
                c["marked_pnl"] += change

            self._count(st, st["latest_ns"], marked)
        st["mark"] = mark

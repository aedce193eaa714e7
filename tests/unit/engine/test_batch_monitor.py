"""The engine's monitor against ``Monitor`` driven by the same events in ``Pipeline``'s order
(the oracle): the same alerts and commands byte for byte and the same ``stats()``; and batch
invariance of its alerts and state."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stubs import ES_TRADES, MS, T0_NS

from tickwise.schemas.decisions import Action, Fill, Side, Signal
from tickwise.streams.config import LabelConfig, MonitorConfig, ValidationConfig
from tickwise.streams.engine import monitor as engine_monitor
from tickwise.streams.engine.batch import SymbolTable, decode
from tickwise.streams.engine.monitor import A_ROW, BatchMonitor, MonitorEvents
from tickwise.streams.engine.risk import BUY, SELL, SIDE_FLAT
from tickwise.streams.engine.validate import BatchValidator
from tickwise.streams.operators.execution import AccountView
from tickwise.streams.operators.monitor import Monitor
from tickwise.streams.sources import ColumnMap, read_csv

SIDES = {Side.BUY: BUY, Side.SELL: SELL, Side.FLAT: SIDE_FLAT}


@dataclass
class Row:
    """One verdict and what the decide stage did at it (clean rows only)."""

    instrument: str | None
    clean: bool
    ts: int
    price: float = 0.0
    fills: list[tuple[str, float, float]] = field(default_factory=list)  # model, realized, fee
    # model, score, side, price, net P&L after, account time
    decisions: list[tuple[str, float, Side, float, float, int]] = field(default_factory=list)


def account(instrument: str, ts: int, net_pnl: float) -> AccountView:
    return AccountView(
        instrument, ts, 0.0, 0.0, 0.0, 100.0, 1e6, net_pnl, 0.0, 0.0, 1e6, 1e6, 1e6, 0, 0
    )


def oracle(rows: list[Row], config: MonitorConfig, label: LabelConfig):
    """``Monitor`` called as ``Pipeline`` calls it."""
    mon = Monitor(config, label)
    alerts = []
    for i, r in enumerate(rows):
        if r.instrument is None:
            continue
        if not r.clean:
            alerts += mon.on_validated(r.instrument, False, None)
            continue
        alerts += mon.on_validated(r.instrument, True, r.ts)
        alerts += mon.on_tick(r.instrument, r.ts, r.price)
        for n, (model, realized, fee) in enumerate(r.fills):
            alerts += mon.on_fill(fill(r.instrument, r.ts, f"{i}-{n}", model, realized, fee))
        for model, score, side, price, pnl, account_ts in r.decisions:
            sig = Signal(
                signal_id=f"s{i}", instrument=r.instrument, tick_id=f"t{i}", ts_event_ns=r.ts,
                model_id=model, model_version=1, score=score, side=side, confidence=0.5,
                n_trained=10, explanation=[],
            )  # fmt: skip
            mon.on_signal(sig, price)
            alerts += mon.on_account(account(r.instrument, account_ts, pnl), model)
    commands = [c for a in alerts if (c := mon.act(a)) is not None]
    return alerts, commands, mon


def fill(instrument: str, ts: int, n: str, model: str, realized: float, fee: float) -> Fill:
    return Fill(
        fill_id=f"f{n}", order_id=f"o{n}", decision_id=f"d{n}", instrument=instrument,
        tick_id=f"t{n}", ts_event_ns=ts, order_ts_event_ns=ts, side=Action.BUY, quantity=1.0,
        price=100.0, reference_price=100.0, fee=fee, position_after=0.0, cash_after=0.0,
        realized_pnl_after=realized, model_id=model, model_version=1,
    )  # fmt: skip


def events(rows: list[Row], symbols: SymbolTable, models: SymbolTable) -> MonitorEvents:
    inst = [-1 if r.instrument is None else symbols.index(r.instrument) for r in rows]
    fills = [(i, *f) for i, r in enumerate(rows) for f in r.fills]
    decs = [(i, *d) for i, r in enumerate(rows) for d in r.decisions]
    net = [account(rows[d[0]].instrument or "", d[6], d[5]).net_pnl for d in decs]
    return MonitorEvents(
        np.array(inst, np.int64),
        np.array([r.clean for r in rows], np.bool_),
        np.array([r.ts for r in rows], np.int64),
        np.array([r.price for r in rows], np.float64),
        np.array([f[0] for f in fills], np.int64),
        np.array([models.index(f[1]) for f in fills], np.int64),
        np.array([f[2] for f in fills], np.float64),
        np.array([f[3] for f in fills], np.float64),
        np.array([d[0] for d in decs], np.int64),
        np.array([models.index(d[1]) for d in decs], np.int64),
        np.array([d[2] for d in decs], np.float64),
        np.array([SIDES[d[3]] for d in decs], np.int64),
        np.array([d[4] for d in decs], np.float64),
        np.array(net, np.float64),
        np.array([d[6] for d in decs], np.int64),
    )


def engine(rows: list[Row], config: MonitorConfig, label: LabelConfig, cuts=()):
    symbols, models = SymbolTable(), SymbolTable()
    mon = BatchMonitor(config, label, symbols, models)
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(rows)}), len(rows)]
    alerts, commands, codes = [], [], []
    for a, b in pairwise(bounds):
        out = mon.run(events(rows[a:b], symbols, models))
        alerts += out.alerts
        commands += out.commands
        shifted = out.a_int.copy()
        shifted[:, A_ROW] += a
        codes.append((shifted, out.a_num))
    return alerts, commands, mon, codes


def assert_equal(rows: list[Row], config: MonitorConfig, label: LabelConfig) -> list[str]:
    """Both monitors over ``rows``; returns the alert codes raised."""
    want_alerts, want_commands, mon = oracle(rows, config, label)
    alerts, commands, batch, _ = engine(rows, config, label)
    assert [a.to_bytes() for a in alerts] == [a.to_bytes() for a in want_alerts]
    assert [c.to_bytes() for c in commands] == [c.to_bytes() for c in want_commands]
    for name in sorted({r.instrument for r in rows if r.instrument is not None}):
        assert batch.stats(name) == mon.stats(name)
    return [a.code for a in alerts]


# --- streams --------------------------------------------------------------------------------


def drifting(seed: int, n: int = 60_000, change: int = 40_000) -> list[Row]:
    """A signal a tick on a random walk, right 60% of the time, then 20% (as in the per-tick
    monitor's drift test)."""
    rng = random.Random(seed)
    ahead = 250  # ticks in one 5 s horizon
    prices = [100.0]
    for _ in range(n + ahead):
        prices.append(prices[-1] + rng.choice((-0.25, 0.25)))
    rows = []
    for i in range(n):
        ts = T0_NS + i * 20 * MS
        up = prices[i + ahead] > prices[i]
        up_bet = up if rng.random() < (0.6 if i < change else 0.2) else not up
        score = 0.6 if up_bet else 0.4
        side = Side.BUY if up_bet else Side.SELL
        rows.append(
            Row("ES", True, ts, prices[i], [], [("logreg", score, side, prices[i], 0.0, ts)])
        )
    return rows


def mixed(seed: int, n: int) -> list[Row]:
    """Two instruments, two models, flat signals, moves inside the dead zone, late ticks,
    quarantine bursts, losing streaks and P&L dips, messages without an instrument."""
    rng = random.Random(seed)
    ts = {"ES": T0_NS, "NQ": T0_NS + 3 * MS}
    price = {"ES": 100.0, "NQ": 250.0}
    realized = {"ES": 0.0, "NQ": 0.0}
    pnl = {"ES": 0.0, "NQ": 0.0}
    rows = []
    for i in range(n):
        name = rng.choice(("ES", "NQ"))
        burst = n // 3 < i < n // 3 + n // 10 and name == "NQ"
        if rng.random() < (0.3 if burst else 0.01):
            rows.append(Row(name if rng.random() < 0.9 else None, False, 0))
            continue
        step = rng.choice((-1, 1)) * 20 * MS if rng.random() < 0.02 else rng.randint(1, 40) * MS
        ts[name] += step
        if rng.random() < 0.6:
            price[name] = round(price[name] + rng.choice((-0.02, -0.01, 0.01, 0.02)), 2)
        row = Row(name, True, ts[name], price[name])
        losing = (i // 500) % 2 == 1
        if rng.random() < 0.08:
            for _ in range(rng.choice((1, 1, 2))):
                move = rng.choice((0.0, -2.0, -1.0, 3.0) if losing else (0.0, -1.0, 2.0, 4.0))
                realized[name] += move
                model = rng.choice(("logreg", "tree"))
                row.fills.append((model, realized[name], rng.choice((0.0, 0.25))))
        if rng.random() < 0.7:
            pnl[name] += rng.gauss(0.0, 6.0) - pnl[name] * 0.002
            model = "tree" if rng.random() < 0.3 else "logreg"
            side = rng.choice((Side.BUY, Side.SELL, Side.FLAT))
            score = rng.choice((0.3, 0.45, 0.5, 0.55, 0.7))
            row.decisions.append((model, score, side, price[name], pnl[name], ts[name]))
        rows.append(row)
    # the second model sees its outcome: right 80% of the time, then 10% from half way
    for i, row in enumerate(rows):
        if not row.decisions or row.decisions[0][0] != "tree":
            continue
        model, _, side, entry, net, when = row.decisions[0]
        later = entry
        for r in rows[i:]:
            if r.clean and r.instrument == row.instrument:
                if r.ts > when + 3 * 10**9:  # late ticks are at most 20 ms late
                    break
                if r.ts <= when + 2 * 10**9:
                    later = r.price
        up = later > entry
        bet = up if rng.random() < (0.8 if i < n // 2 else 0.1) else not up
        row.decisions[0] = (model, 0.7 if bet else 0.3, side, entry, net, when)
    return rows


MIXED_CONFIG = MonitorConfig(
    accuracy_window=40, min_accuracy=0.5, drift_block_s=0.5, drift_grace=5, drift_delta=0.05,
    drift_min_increase=0.0, max_losing_streak=3, max_loss=40.0, quarantine_window=200,
    max_quarantine_rate=0.1,
    policies={"MODEL_DRIFT": "demote", "LOW_ACCURACY": "global_kill", "PNL_LOSS": "halt_instrument",
              "DATA_QUALITY": "demote"},
)  # fmt: skip
MIXED_LABEL = LabelConfig(horizon_s=2.0, dead_zone_bps=1.5)


# --- the oracle -----------------------------------------------------------------------------


def test_drift_and_low_accuracy_equal_the_monitor() -> None:
    config = MonitorConfig(min_accuracy=0.45, accuracy_window=300)
    codes = assert_equal(drifting(1), config, LabelConfig(horizon_s=5.0))
    assert "MODEL_DRIFT" in codes and "LOW_ACCURACY" in codes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streaks_losses_quality_and_policies_equal_the_monitor(seed: int) -> None:
    codes = assert_equal(mixed(seed, 12_000), MIXED_CONFIG, MIXED_LABEL)
    assert set(codes) == {"MODEL_DRIFT", "LOW_ACCURACY", "LOSING_STREAK", "PNL_LOSS",
                          "DATA_QUALITY"}  # fmt: skip


@pytest.mark.parametrize("queue", [1, 3])
def test_a_short_adwin_queue_changes_nothing(queue: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passes stopped by a full queue of closed blocks, and passes run again for an alarm
    found after them, give the monitor's alerts and commands all the same."""
    monkeypatch.setattr(engine_monitor, "ADWIN_QUEUE", queue)
    codes = assert_equal(mixed(2, 12_000), MIXED_CONFIG, MIXED_LABEL)
    assert "MODEL_DRIFT" in codes


def test_defaults_without_max_loss_or_min_accuracy_equal_the_monitor() -> None:
    codes = assert_equal(mixed(4, 6_000), MonitorConfig(), LabelConfig())
    assert "DATA_QUALITY" in codes
    assert "PNL_LOSS" not in codes and "LOW_ACCURACY" not in codes


def test_real_es_trades_with_signals_equal_the_monitor() -> None:
    if not ES_TRADES.exists():
        pytest.skip(f"real ES trades not found at {ES_TRADES}")
    records = read_csv(ES_TRADES, ColumnMap(symbol="ES", tz="America/Chicago"))
    payloads = [r.payload for _, r in zip(range(30_000), records, strict=False)]
    symbols = SymbolTable()
    batch = decode(payloads, symbols, "t", 0, np.arange(len(payloads)), 16_384)
    _, verdict, _ = BatchValidator(ValidationConfig(), symbols).run(batch)
    rows, prices, pnl, held = [], [], 0.0, 0.0
    for i in range(len(payloads)):
        if verdict[i] != 0:
            rows.append(Row("ES", False, 0))
            continue
        ts, price = int(batch.ts[i]), float(batch.price[i])
        if prices:
            pnl += held * (price - prices[-1]) * 50.0
        prices.append(price)
        row = Row("ES", True, ts, price)
        if len(prices) % 5 == 0:  # a momentum signal on every fifth trade
            move = math.log(price / prices[max(0, len(prices) - 200)]) * 1e4
            score = 0.5 + 0.5 * math.tanh(move / 4.0)
            side = Side.BUY if score > 0.52 else Side.SELL if score < 0.48 else Side.FLAT
            held = {Side.BUY: 1.0, Side.SELL: -1.0, Side.FLAT: held}[side]
            row.decisions.append(("logreg", score, side, price, pnl, ts))
        rows.append(row)
    config = MonitorConfig(min_accuracy=0.5, accuracy_window=100, max_loss=300.0)
    codes = assert_equal(rows, config, LabelConfig(horizon_s=5.0, dead_zone_bps=0.5))
    assert codes  # the real stream raises alerts to compare


@st.composite
def small_streams(draw: st.DrawFn) -> tuple[list[Row], LabelConfig]:
    """Short streams over few prices and steps, so every branch is near: moves inside the dead
    zone and none at all, late and equal times, fills that realize nothing, blocks of one."""
    ts = {"ES": T0_NS, "NQ": T0_NS}
    realized = {"ES": 0.0, "NQ": 0.0}
    rows = []
    for _ in range(draw(st.integers(1, 200))):
        name = draw(st.sampled_from(["ES", "ES", "NQ", None]))
        if name is None or draw(st.integers(0, 4)) == 0:
            rows.append(Row(name, False, 0))
            continue
        ts[name] += draw(st.sampled_from([-5 * MS, 0, 10 * MS, 60 * MS, 200 * MS]))
        row = Row(name, True, ts[name], draw(st.sampled_from([100.0, 100.01, 100.1, 99.9])))
        for model in draw(st.lists(st.sampled_from(["a", "b"]), max_size=2)):
            realized[name] += draw(st.sampled_from([0.0, -1.0, 2.0]))
            row.fills.append((model, realized[name], draw(st.sampled_from([0.0, 0.5]))))
        if draw(st.integers(0, 3)) > 0:
            model = draw(st.sampled_from(["a", "b"]))
            score = draw(st.sampled_from([0.2, 0.5, 0.8]))
            side = draw(st.sampled_from(list(Side)))
            pnl = draw(st.sampled_from([0.0, -0.5, -2.0, 3.0]))
            row.decisions.append((model, score, side, row.price, pnl, row.ts))
        rows.append(row)
    return rows, LabelConfig(horizon_s=0.1, dead_zone_bps=draw(st.sampled_from([0.0, 5.0])))


TINY = MonitorConfig(
    accuracy_window=10, min_accuracy=0.6, drift_block_s=0.05, drift_grace=0, drift_delta=0.5,
    drift_min_increase=0.0, max_losing_streak=1, max_loss=1.0, quarantine_window=10,
    max_quarantine_rate=0.2,
    policies={"MODEL_DRIFT": "halt_instrument", "LOW_ACCURACY": "demote",
              "LOSING_STREAK": "global_kill", "DATA_QUALITY": "halt_instrument"},
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(small_streams())
def test_short_streams_equal_the_monitor(stream: tuple[list[Row], LabelConfig]) -> None:
    rows, label = stream
    assert_equal(rows, TINY, label)


# --- batch invariance -----------------------------------------------------------------------

ROWS = mixed(7, 4_000)


@cache
def whole_run():
    return engine(ROWS, MIXED_CONFIG, MIXED_LABEL)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, len(ROWS)), max_size=10) | st.just(list(range(len(ROWS)))))
def test_any_split_gives_the_same_alerts_and_state(cuts: list[int]) -> None:
    whole_alerts, whole_cmds, whole, whole_codes = whole_run()
    alerts, cmds, split, codes = engine(ROWS, MIXED_CONFIG, MIXED_LABEL, cuts)
    assert [a.to_bytes() for a in alerts] == [a.to_bytes() for a in whole_alerts]
    assert [c.to_bytes() for c in cmds] == [c.to_bytes() for c in whole_cmds]
    for a, b in zip(
        (np.concatenate([c[i] for c in codes]) for i in (0, 1)),
        (np.concatenate([c[i] for c in whole_codes]) for i in (0, 1)),
        strict=True,
    ):
        assert a.tobytes() == b.tobytes()
    assert whole.p_ts.shape[1] > 64  # the pending rings grew
    assert len(whole.adwins) == 4 and len({a.code for a in whole_alerts}) == 5
    for a, b in zip(split.state_arrays(), whole.state_arrays(), strict=True):
        assert a.tobytes() == b.tobytes()
    assert sorted(split.adwins) == sorted(whole.adwins)
    for key, adwin in whole.adwins.items():
        other = split.adwins[key]
        assert (other.width, other.total, other.variance, other.n_detections) == (
            adwin.width, adwin.total, adwin.variance, adwin.n_detections,
        )  # fmt: skip


@pytest.mark.parametrize("where", ["quarantined row", "no instrument", "out of order"])
def test_events_that_do_not_belong_to_clean_rows_in_order_are_refused(where: str) -> None:
    """A fill or decision the pass cannot take at its clean row, in row order, is an error."""
    d = ("m", 0.7, Side.BUY, 100.0, 0.0, T0_NS)
    rows = [Row("ES", True, T0_NS + i * MS, 100.0) for i in range(4)]
    if where == "quarantined row":
        rows[2] = Row("ES", False, T0_NS, decisions=[d])
    elif where == "no instrument":
        rows[2] = Row(None, False, T0_NS, fills=[("m", 0.0, 0.0)])
    else:
        rows[1].decisions.append(d)
        rows[3].decisions.append(d)
    symbols, models = SymbolTable(), SymbolTable()
    ev = events(rows, symbols, models)
    ev.dec_row[:] = ev.dec_row[::-1].copy()  # rows 3, 1 when out of order
    mon = BatchMonitor(MonitorConfig(), LabelConfig(), symbols, models)
    with pytest.raises(ValueError, match="belong to clean rows, in row order"):
        mon.run(ev)
    rows_ok = [Row("ES", True, T0_NS + i * MS, 100.0, decisions=[d]) for i in range(4)]
    assert mon.run(events(rows_ok, symbols, models)).stopped_at is None  # in order: taken

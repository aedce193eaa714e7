"""The monitor as kernel functions: ``streams.operators.monitor.Monitor`` over arrays, for the
fused decide kernel (docs/ENGINE.md) to call per row.

Outcome scoring (the one outcome rule of ``streams.operators.labels``), accuracy windows,
losing streaks, the P&L alert and the quarantine rate are arithmetic on state arrays indexed by
instrument and model slot. ADWIN (``streams.operators.adwin``) is fed apart from the pass: it
takes one value per block of event time. When a block closes, ``on_tick`` queues the block's
mean error in ``aq_*`` and goes on as if ADWIN raised no alarm, which is nearly always its
answer; after the pass one compiled call feeds the queued blocks to the windows of their
(instrument, model slot), stacked, in order (``adwin_feed_many``, the per-tick monitor's rule
to the letter). If one alarms, ``BatchMonitor`` puts the state back as the pass
found it and runs it again with the answers up to that block known (``ADW_KNOWN``), so the
alarm's alert comes out at its row, and ADWIN is fed each block once. When the queue is full
``on_tick`` stops before the outcome that closed the block and the caller calls it again at the
same row.

Alerts come out as rows of numbers (code, instrument, model slot, event time, the
instrument's alert number, the figures the text needs, and the command their policy asks
for as an effect code); ``render_alerts`` and ``render_command`` turn them into the
``Alert`` and ``ControlCommand`` contracts ``Monitor`` builds, byte for byte.

Order within a row (the per-tick oracle's, ``tests/oracle``): ``on_validated`` (a quarantined row
stops there), ``on_tick``, ``on_fill`` per fill, then per decision ``on_signal`` and
``on_account``. ``on_tick`` may stop, so call it before anything else of the row changes
state, or remember what the row already did (``BatchMonitor`` resumes after
``on_validated``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tickwise.schemas.decisions import Alert, ControlCommand
from tickwise.streams.config import LabelConfig, MonitorConfig
from tickwise.streams.engine.batch import SymbolTable
from tickwise.streams.engine.jit import kernel
from tickwise.streams.engine.risk import BUY, NONE, SIDE_FLAT
from tickwise.streams.operators.adwin import Adwin, AdwinArrays, adwin_arrays, adwin_feed_many
from tickwise.streams.operators.labels import NO_DIRECTION, UP, direction_nb, forward_bps_nb
from tickwise.streams.operators.labels import horizon_ns as to_ns
from tickwise.streams.operators.monitor import SEVERITY

# alert codes, by number (the text of each is ``CODES[code]``)
MODEL_DRIFT, LOW_ACCURACY, LOSING_STREAK, PNL_LOSS, DATA_QUALITY = range(5)
CODES = ("MODEL_DRIFT", "LOW_ACCURACY", "LOSING_STREAK", "PNL_LOSS", "DATA_QUALITY")
# a policy's effect on control state: nothing, demote (instrument, model slot; slot -1 is
# every model of the instrument), kill switch on the instrument, global kill switch
E_NONE, E_DEMOTE, E_HALT, E_KILL = range(4)
EFFECTS = {"alert": E_NONE, "demote": E_DEMOTE, "halt_instrument": E_HALT, "global_kill": E_KILL}
# per instrument, int64 columns of ``ist``
I_LAST_TS, I_VALIDATED_TS, I_ALERTS, I_P_HEAD, I_P_LEN, I_Q_HEAD, I_Q_LEN, I_Q_BAD = range(8)
I_Q_ARMED = 8
N_IST = 9
# per instrument, float64 columns of ``fst``
F_LAST_PRICE, F_REALIZED = range(2)
N_FST = 2
# per instrument and model slot, int64 columns of ``mst``
(
    M_EXISTS, M_OUTCOMES, M_SIGNALS, M_TRADES, M_STREAK, M_WORST, M_DRIFTS, M_BLOCK_START,
    M_BLOCK_N, M_H_HEAD, M_H_LEN, M_H_SUM, M_ARMED_LOW, M_ARMED_STREAK, M_ARMED_PNL,
) = range(15)  # fmt: skip
N_MST = 15
# settings: int64 ``icfg`` and float64 ``fcfg`` (NaN: unset)
IC_HORIZON, IC_BLOCK, IC_MAX_STREAK, IC_Q_MIN, IC_POLICY = range(5)  # then one policy per code
N_ICFG = IC_POLICY + len(CODES)
FC_DEAD_ZONE, FC_MIN_ACCURACY, FC_MAX_LOSS, FC_MAX_Q_RATE = range(4)
# an alert row: int64 columns of ``a_int``, float64 columns of ``a_num``
A_ROW, A_CODE, A_INST, A_SLOT, A_TS, A_SEQ, A_N, A_EFFECT = range(8)
N_AI = 8
A_X, A_Y = range(2)
# the exchange with ADWIN: ``adw_i`` = [blocks closed in this pass, of which answered before];
# the queue, a block a row: ``aq_km`` = [instrument, slot], ``aq_f`` = [x, fire, old, est]
ADW_N, ADW_KNOWN = range(2)
AQ_X, AQ_FIRE, AQ_OLD, AQ_EST = range(4)
ADWIN_QUEUE = 1024  # blocks a pass may close before Python answers them


@kernel()
def _emit(ist, icfg, a_int, a_num, n_out, row, code, k, m, ts, n, x, y) -> None:  # pragma: no cover
    ist[k, I_ALERTS] += 1
    j = n_out[0]
    a_int[j, A_ROW], a_int[j, A_CODE], a_int[j, A_INST], a_int[j, A_SLOT] = row, code, k, m
    a_int[j, A_TS], a_int[j, A_SEQ], a_int[j, A_N] = ts, ist[k, I_ALERTS], n
    a_int[j, A_EFFECT] = icfg[IC_POLICY + code]
    a_num[j, A_X], a_num[j, A_Y] = x, y
    n_out[0] = j + 1


@kernel()
def _arm(mst, k, m, column, firing) -> bool:  # pragma: no cover - compiled
    """Alert once when a condition starts; re-arm when it clears."""
    mst[k, m, M_EXISTS] = 1
    armed = mst[k, m, column] == 1
    mst[k, m, column] = 0 if firing else 1
    return firing and armed


@kernel()
def on_tick(
    ist, fst, mst, m_err, hits, p_ts, p_slot, p_side, p_price, p_score, icfg, fcfg,
    adw_i, aq_km, aq_f, a_int, a_num, n_out, row, k, ts, price,
) -> bool:  # pragma: no cover - compiled  # fmt: skip
    """Score every signal of instrument ``k`` whose horizon has passed, then take the price.

    False: stopped before an outcome that closes an ADWIN block, the queue being full;
    answer the queue and call again at the same row.
    """
    cap = p_ts.shape[1]
    window = hits.shape[2]
    horizon, block = icfg[IC_HORIZON], icfg[IC_BLOCK]
    while ist[k, I_P_LEN] > 0:
        h = ist[k, I_P_HEAD]
        sig_ts = p_ts[k, h]
        if not sig_ts + horizon < ts:
            break
        sign = direction_nb(forward_bps_nb(p_price[k, h], fst[k, F_LAST_PRICE]), fcfg[FC_DEAD_ZONE])
        m = p_slot[k, h]
        fire = False
        if sign != NO_DIRECTION:
            start = mst[k, m, M_BLOCK_START]
            if start != NONE and sig_ts >= start + block:
                a = adw_i[ADW_N]
                if a == aq_km.shape[0]:
                    return False
                if a < adw_i[ADW_KNOWN]:  # answered after an earlier pass over these rows
                    fire = aq_f[a, AQ_FIRE] != 0.0
                else:  # asked; no alarm until Python says otherwise
                    aq_km[a, 0], aq_km[a, 1] = k, m
                    aq_f[a, AQ_X] = m_err[k, m] / mst[k, m, M_BLOCK_N]
                    fire = False
                adw_i[ADW_N] = a + 1
                mst[k, m, M_BLOCK_START] = sig_ts
                m_err[k, m] = 0.0
                mst[k, m, M_BLOCK_N] = 0
            elif start == NONE:
                mst[k, m, M_BLOCK_START] = sig_ts
        ist[k, I_P_HEAD] = (h + 1) % cap
        ist[k, I_P_LEN] -= 1
        if sign == NO_DIRECTION:
            continue  # as for the model: no label, nothing to score
        up = sign == UP
        mst[k, m, M_EXISTS] = 1
        mst[k, m, M_OUTCOMES] += 1
        if fire:
            mst[k, m, M_DRIFTS] += 1
            a = adw_i[ADW_N] - 1
            _emit(ist, icfg, a_int, a_num, n_out, row, MODEL_DRIFT, k, m, sig_ts, 0,
                  aq_f[a, AQ_OLD], aq_f[a, AQ_EST])  # fmt: skip
        m_err[k, m] += 1.0 if (p_score[k, h] > 0.5) != up else 0.0
        mst[k, m, M_BLOCK_N] += 1
        side = p_side[k, h]
        if side != SIDE_FLAT:
            if mst[k, m, M_H_LEN] == window:
                old = mst[k, m, M_H_HEAD]
                mst[k, m, M_H_SUM] -= 1 if hits[k, m, old] else 0
                mst[k, m, M_H_HEAD] = (old + 1) % window
                mst[k, m, M_H_LEN] -= 1
            hit = (side == BUY) == up
            hits[k, m, (mst[k, m, M_H_HEAD] + mst[k, m, M_H_LEN]) % window] = hit
            mst[k, m, M_H_LEN] += 1
            mst[k, m, M_H_SUM] += 1 if hit else 0
        n_hits = mst[k, m, M_H_LEN]
        if not np.isnan(fcfg[FC_MIN_ACCURACY]) and n_hits == window:
            accuracy = mst[k, m, M_H_SUM] / n_hits
            if _arm(mst, k, m, M_ARMED_LOW, accuracy < fcfg[FC_MIN_ACCURACY]):
                _emit(ist, icfg, a_int, a_num, n_out, row, LOW_ACCURACY, k, m, sig_ts, n_hits,
                      accuracy, 0.0)  # fmt: skip
    fst[k, F_LAST_PRICE] = price
    if ts > ist[k, I_LAST_TS]:
        ist[k, I_LAST_TS] = ts
    return True


@kernel()
def signal_room(ist, p_ts, k, n) -> bool:  # pragma: no cover - compiled
    """Whether instrument ``k``'s pending ring has room for ``n`` more signals."""
    return ist[k, I_P_LEN] + n <= p_ts.shape[1]


@kernel()
def on_signal(
    ist, mst, p_ts, p_slot, p_side, p_price, p_score, k, m, ts, price, score, side
) -> bool:  # pragma: no cover - compiled  # fmt: skip
    """Remember a signal until its outcome is known; False when the ring is full (nothing
    changed: grow it, or check ``signal_room`` before the row)."""
    cap = p_ts.shape[1]
    if ist[k, I_P_LEN] == cap:
        return False
    mst[k, m, M_EXISTS] = 1
    mst[k, m, M_SIGNALS] += 1
    tail = (ist[k, I_P_HEAD] + ist[k, I_P_LEN]) % cap
    p_ts[k, tail], p_slot[k, tail], p_side[k, tail] = ts, m, side
    p_price[k, tail], p_score[k, tail] = price, score
    ist[k, I_P_LEN] += 1
    return True


@kernel()
def on_fill(
    ist, fst, mst, icfg, a_int, a_num, n_out, row, k, m, ts, realized_after, fee
) -> None:  # pragma: no cover - compiled  # fmt: skip
    """Count the trade; a fill that realized a loss extends the losing streak."""
    mst[k, m, M_EXISTS] = 1
    mst[k, m, M_TRADES] += 1
    before = fst[k, F_REALIZED]
    fst[k, F_REALIZED] = realized_after
    if realized_after == before:
        return  # opened or added: nothing realized yet
    realized = realized_after - before - fee
    streak = mst[k, m, M_STREAK] + 1 if realized < 0.0 else 0
    mst[k, m, M_STREAK] = streak
    if streak > mst[k, m, M_WORST]:
        mst[k, m, M_WORST] = streak
    if _arm(mst, k, m, M_ARMED_STREAK, streak >= icfg[IC_MAX_STREAK]):
        _emit(ist, icfg, a_int, a_num, n_out, row, LOSING_STREAK, k, m, ts, streak, 0.0, 0.0)


@kernel()
def on_account(
    ist, mst, icfg, fcfg, a_int, a_num, n_out, row, k, m, ts, net_pnl
) -> None:  # pragma: no cover - compiled  # fmt: skip
    """Alert when the instrument's net P&L (realized + unrealized - fees, as ``AccountView``
    adds them) falls below ``-max_loss``."""
    max_loss = fcfg[FC_MAX_LOSS]
    if np.isnan(max_loss):
        return
    if _arm(mst, k, m, M_ARMED_PNL, net_pnl < -max_loss):
        _emit(ist, icfg, a_int, a_num, n_out, row, PNL_LOSS, k, m, ts, 0, net_pnl, 0.0)


@kernel()
def on_validated(
    ist, q, icfg, fcfg, a_int, a_num, n_out, row, k, clean, ts
) -> None:  # pragma: no cover - compiled  # fmt: skip
    """Track the quarantine rate over the last ``quarantine_window`` verdicts; ``ts`` is
    ``NONE`` for a message without a usable time (the last clean tick's time is used)."""
    if ts != NONE and ts > ist[k, I_VALIDATED_TS]:
        ist[k, I_VALIDATED_TS] = ts
    window = q.shape[1]
    if ist[k, I_Q_LEN] == window:
        old = ist[k, I_Q_HEAD]
        ist[k, I_Q_BAD] -= 1 if q[k, old] else 0
        ist[k, I_Q_HEAD] = (old + 1) % window
        ist[k, I_Q_LEN] -= 1
    q[k, (ist[k, I_Q_HEAD] + ist[k, I_Q_LEN]) % window] = not clean
    ist[k, I_Q_LEN] += 1
    ist[k, I_Q_BAD] += 0 if clean else 1
    n = ist[k, I_Q_LEN]
    rate = ist[k, I_Q_BAD] / n
    bad = n >= icfg[IC_Q_MIN] and rate > fcfg[FC_MAX_Q_RATE]
    if bad and ist[k, I_Q_ARMED] == 1:
        ist[k, I_Q_ARMED] = 0
        _emit(ist, icfg, a_int, a_num, n_out, row, DATA_QUALITY, k, -1, ist[k, I_VALIDATED_TS],
              n, rate, 0.0)  # fmt: skip
    if not bad:
        ist[k, I_Q_ARMED] = 1


def settings_of(config: MonitorConfig, label: LabelConfig) -> tuple[np.ndarray, np.ndarray]:
    """``icfg`` and ``fcfg`` for the kernel functions."""
    block_s = config.drift_block_s if config.drift_block_s is not None else label.horizon_s
    icfg = np.zeros(N_ICFG, np.int64)
    icfg[IC_HORIZON], icfg[IC_BLOCK] = to_ns(label.horizon_s), to_ns(block_s)
    icfg[IC_MAX_STREAK] = config.max_losing_streak
    icfg[IC_Q_MIN] = min(100, config.quarantine_window)
    for code, name in enumerate(CODES):
        icfg[IC_POLICY + code] = EFFECTS[config.policies.get(name, "alert")]
    unset = math.nan
    fcfg = np.array(
        [
            label.dead_zone_bps,
            unset if config.min_accuracy is None else config.min_accuracy,
            unset if config.max_loss is None else config.max_loss,
            config.max_quarantine_rate,
        ]
    )
    return icfg, fcfg


def detail_of(config: MonitorConfig, code: int, n: int, x: float, y: float) -> str:
    """An alert's text, in the words of ``Monitor``."""
    if code == MODEL_DRIFT:
        return f"error rate rose from {x:.3f} to {y:.3f} (ADWIN)"
    if code == LOW_ACCURACY:
        return f"accuracy {x:.1%} over the last {n} signals"
    if code == LOSING_STREAK:
        return f"{n} losing trades in a row"
    if code == PNL_LOSS:
        return f"net P&L {x:.2f} below -{config.max_loss:g}"
    return f"quarantine rate {x:.1%} over {n} messages"


def render_alerts(
    config: MonitorConfig,
    a_int: np.ndarray,
    a_num: np.ndarray,
    instruments: list[str],
    models: list[str],
) -> list[Alert]:
    """The ``Alert`` contracts of alert rows, as ``Monitor`` builds them."""
    out = []
    for ai, an in zip(a_int.tolist(), a_num.tolist(), strict=True):
        code, name = ai[A_CODE], CODES[ai[A_CODE]]
        instrument = instruments[ai[A_INST]]
        out.append(
            Alert(
                alert_id=f"alert-{instrument}-{ai[A_SEQ]}-{name}",
                ts_event_ns=ai[A_TS],
                severity=SEVERITY[name],
                code=name,
                detail=detail_of(config, code, ai[A_N], an[A_X], an[A_Y]),
                instrument=instrument,
                model_id=None if ai[A_SLOT] < 0 else models[ai[A_SLOT]],
            )
        )
    return out


def render_command(alert: Alert, effect: int) -> ControlCommand | None:
    """The command an alert's policy asks for (``Monitor.act``); None for alert only."""
    if effect == E_NONE:
        return None
    command = "demote" if effect == E_DEMOTE else "kill_switch_on"
    scope = "global" if effect == E_KILL else (alert.instrument or "global")
    return ControlCommand(
        command_id=f"mon-{alert.alert_id}",
        command=command,  # type: ignore[arg-type]
        scope=scope,
        reason=f"{alert.code}: {alert.detail}",
        operator="monitor",
        ts_event_ns=alert.ts_event_ns,
        model_id=alert.model_id if command == "demote" else None,
        effective_ts_event_ns=alert.ts_event_ns,
    )


DONE, STOP_GROW, STOP_ADWIN, STOP_POLICY = range(4)
START_CAPACITY = 64


@kernel()
def _run(
    inst, clean, ts, price,
    f_row, f_slot, f_realized, f_fee,
    d_row, d_slot, d_score, d_side, d_price, d_net_pnl, d_account_ts,
    ist, fst, mst, m_err, hits, q, p_ts, p_slot, p_side, p_price, p_score, icfg, fcfg,
    adw_i, aq_km, aq_f, a_int, a_num, n_out, start_row, start_fill, start_dec, resumed,
):  # pragma: no cover - compiled  # fmt: skip
    """Rows from ``start_row`` on, in the per-tick oracle's order; returns (stop, row, fill,
    decision).

    ``resumed``: the start row has had its ``on_validated`` (it stopped in ``on_tick``, or for
    the policy of its verdict's alert). ``STOP_POLICY``: an alert asked its policy for a
    command, which applies at once: after the verdict (row returned: that row,
    resume it), or after the row (row returned: the next one).
    """
    f, d = start_fill, start_dec
    for i in range(start_row, inst.size):
        k = inst[i]
        if k < 0:
            continue  # no instrument to attribute it to
        if not (resumed and i == start_row):
            need = 0
            while d + need < d_row.size and d_row[d + need] == i:
                need += 1
            if not signal_room(ist, p_ts, k, need):
                return STOP_GROW, i, f, d
            when = ts[i] if clean[i] else NONE
            before = n_out[0]
            on_validated(ist, q, icfg, fcfg, a_int, a_num, n_out, i, k, clean[i], when)
            if n_out[0] > before and a_int[before, A_EFFECT] != E_NONE:
                return STOP_POLICY, i, f, d
        if not clean[i]:
            continue
        if not on_tick(
            ist,
            fst,
            mst,
            m_err,
            hits,
            p_ts,
            p_slot,
            p_side,
            p_price,
            p_score,
            icfg,
            fcfg,
            adw_i,
            aq_km,
            aq_f,
            a_int,
            a_num,
            n_out,
            i,
            k,
            ts[i],
            price[i],
        ):
            return STOP_ADWIN, i, f, d  # fmt: skip
        while f < f_row.size and f_row[f] == i:
            on_fill(ist, fst, mst, icfg, a_int, a_num, n_out, i, k, f_slot[f], ts[i],
                    f_realized[f], f_fee[f])  # fmt: skip
            f += 1
        while d < d_row.size and d_row[d] == i:
            m = d_slot[d]
            on_signal(ist, mst, p_ts, p_slot, p_side, p_price, p_score, k, m, ts[i],
                      d_price[d], d_score[d], d_side[d])  # fmt: skip
            on_account(ist, mst, icfg, fcfg, a_int, a_num, n_out, i, k, m, d_account_ts[d],
                       d_net_pnl[d])  # fmt: skip
            d += 1
        j = n_out[0] - 1
        while j >= 0 and a_int[j, A_ROW] == i and a_int[j, A_CODE] != DATA_QUALITY:
            if a_int[j, A_EFFECT] != E_NONE:
                return STOP_POLICY, i + 1, f, d
            j -= 1
    return DONE, -1, f, d


@dataclass(slots=True)
class MonitorEvents:
    """What the monitor sees of a batch, as columns.

    Rows are validation verdicts in order (``inst`` -1: no instrument; ``ts`` and ``price``
    are read for clean rows only). Fills and decisions name the clean row they happened at,
    rows ascending; a fill's time is its row's. A decision is a signal (scored at the row's
    time, remembered at ``price``) followed by the account it left (``net_pnl`` as
    ``AccountView.net_pnl`` adds it, at ``account_ts``).
    """

    inst: np.ndarray  # int64
    clean: np.ndarray  # bool
    ts: np.ndarray  # int64
    price: np.ndarray  # float64
    fill_row: np.ndarray  # int64
    fill_slot: np.ndarray  # int64, the model slot
    fill_realized: np.ndarray  # float64, realized P&L after the fill
    fill_fee: np.ndarray  # float64
    dec_row: np.ndarray  # int64
    dec_slot: np.ndarray  # int64
    dec_score: np.ndarray  # float64
    dec_side: np.ndarray  # int64: risk's BUY, SELL, SIDE_FLAT
    dec_price: np.ndarray  # float64
    dec_net_pnl: np.ndarray  # float64
    dec_account_ts: np.ndarray  # int64


@dataclass(slots=True)
class MonitorOutput:
    """A batch's alert rows (``A_*`` columns, rows relative to the batch) and their contracts."""

    a_int: np.ndarray
    a_num: np.ndarray
    alerts: list[Alert]
    commands: list[ControlCommand]  # of the alerts whose policy issues one, in alert order
    # where a run stopped for a policy: (row to go on from, whether its verdict was seen)
    stopped_at: tuple[int, bool] | None = None


class BatchMonitor:
    """The monitor over batches of events, ADWIN fed the blocks each pass closed."""

    def __init__(
        self, config: MonitorConfig, label: LabelConfig, symbols: SymbolTable, models: SymbolTable
    ) -> None:
        self.config, self.symbols, self.models = config, symbols, models
        self.icfg, self.fcfg = settings_of(config, label)
        # ADWIN's windows, stacked, and which one each (instrument, model slot) has (-1: none)
        self.adw = self._windows(0)
        self.adw_window = np.full((0, 0), -1, np.int64)
        self.adw_i = np.zeros(2, np.int64)
        self.aq_km = np.zeros((ADWIN_QUEUE, 2), np.int64)
        self.aq_f = np.zeros((ADWIN_QUEUE, 4))
        self.ist = np.zeros((0, N_IST), np.int64)
        self.fst = np.zeros((0, N_FST))
        self.mst = np.zeros((0, 0, N_MST), np.int64)
        self.m_err = np.zeros((0, 0))
        self.hits = np.zeros((0, 0, config.accuracy_window), np.bool_)
        self.q = np.zeros((0, config.quarantine_window), np.bool_)
        ring = (0, START_CAPACITY)
        self.p_ts, self.p_slot, self.p_side = (np.zeros(ring, np.int64) for _ in range(3))
        self.p_price, self.p_score = np.zeros(ring), np.zeros(ring)

    def sync(self) -> None:
        """Room for every instrument and model slot the tables know."""
        n, s = len(self.symbols), len(self.models)
        extra = n - self.ist.shape[0]
        if extra > 0:
            ist = np.zeros((extra, N_IST), np.int64)
            ist[:, I_Q_ARMED] = 1
            self.ist = np.concatenate([self.ist, ist])
            for name in ("fst", "q", "p_ts", "p_slot", "p_side", "p_price", "p_score"):
                a = getattr(self, name)
                setattr(self, name, np.concatenate([a, np.zeros((extra, *a.shape[1:]), a.dtype)]))
        n0, s0 = self.mst.shape[:2]
        if n > n0 or s > s0:
            mst = np.zeros((n, s, N_MST), np.int64)
            mst[:, :, M_BLOCK_START] = NONE
            mst[:, :, [M_ARMED_LOW, M_ARMED_STREAK, M_ARMED_PNL]] = 1
            mst[:n0, :s0] = self.mst
            self.mst = mst
            for name in ("m_err", "hits"):
                a = getattr(self, name)
                wide = np.zeros((n, s, *a.shape[2:]), a.dtype)
                wide[:n0, :s0] = a
                setattr(self, name, wide)
            window = np.full((n, s), -1, np.int64)
            window[:n0, :s0] = self.adw_window
            self.adw_window = window

    def widen(self) -> None:
        """Double the pending-signal rings, each laid out from slot 0."""
        cap = self.p_ts.shape[1]
        head = self.ist[:, I_P_HEAD]
        order = (head[:, None] + np.arange(cap)[None, :]) % cap
        rows = np.arange(order.shape[0])[:, None]
        for name in ("p_ts", "p_slot", "p_side", "p_price", "p_score"):
            a = getattr(self, name)[rows, order]
            wide = np.zeros((a.shape[0], 2 * cap), a.dtype)
            wide[:, :cap] = a
            setattr(self, name, wide)
        self.ist[:, I_P_HEAD] = 0

    def _windows(self, n: int) -> AdwinArrays:
        # clock=1: check for change at every block, as Monitor does
        return adwin_arrays(
            n, self.config.drift_delta, clock=1, grace_period=self.config.drift_grace
        )

    def _window(self, k: int, m: int) -> int:
        """The row of instrument ``k`` and model slot ``m``'s window, made on first use."""
        p = int(self.adw_window[k, m])
        if p < 0:
            p = self.adw_window[k, m] = self.adw.f.shape[0]
            fresh = self._windows(1)
            self.adw = AdwinArrays(
                *(np.concatenate([a, b]) for a, b in zip(self.adw, fresh, strict=True))
            )
        return p

    @property
    def adwins(self) -> dict[tuple[int, int], Adwin]:
        """Each (instrument, model slot)'s ADWIN, once it has been fed (views: reading them
        reads the state)."""
        k, m = np.nonzero(self.adw_window >= 0)
        return {
            (a, b): Adwin.of(self.adw, int(self.adw_window[a, b]))
            for a, b in zip(k.tolist(), m.tolist(), strict=True)
        }

    def answer(self) -> int:
        """Feed the blocks the last pass closed and took no alarm for to their ADWINs, in
        order, up to the first that alarms; returns its place in the queue, or -1."""
        known, n = int(self.adw_i[ADW_KNOWN]), int(self.adw_i[ADW_N])
        if n <= known:
            return -1
        k, m = self.aq_km[known:n, 0], self.aq_km[known:n, 1]
        for a, b in self.aq_km[known:n][self.adw_window[k, m] < 0].tolist():
            self._window(a, b)  # a first block: a window for it
        windows = self.adw_window[k, m]
        q = self.aq_f[known:n]
        alarm = adwin_feed_many(
            windows, np.ascontiguousarray(q[:, AQ_X]), *self.adw, self.config.drift_min_increase,
            q[:, AQ_FIRE], q[:, AQ_OLD], q[:, AQ_EST],
        )  # fmt: skip
        return -1 if alarm < 0 else known + alarm

    def run(self, ev: MonitorEvents) -> MonitorOutput:
        """Every event of the batch in order; alerts and commands as ``Monitor`` gives them."""
        out = self.run_until_policy(ev)
        while out.stopped_at is not None:
            more = self.run_until_policy(ev, *out.stopped_at)
            out = MonitorOutput(
                np.concatenate([out.a_int, more.a_int]),
                np.concatenate([out.a_num, more.a_num]),
                out.alerts + more.alerts,
                out.commands + more.commands,
                more.stopped_at,
            )
        return out

    def run_until_policy(
        self, ev: MonitorEvents, row: int = 0, resumed: bool = False
    ) -> MonitorOutput:
        """The events from ``row`` on (``resumed``: its verdict already seen), up to the first
        alert whose policy issues a command (``stopped_at``: where to go on from)."""
        self.sync()
        bound = 2 * (int(self.ist[:, I_P_LEN].sum()) + ev.dec_row.size)
        bound += ev.fill_row.size + ev.dec_row.size + ev.inst.size
        # empty, not zeros: the kernel reads only the rows it wrote (below ``n_out``), and
        # zeroing a bound this size cost more than the kernel's pass
        a_int, a_num = np.empty((bound, N_AI), np.int64), np.empty((bound, 2))
        n_out = np.zeros(1, np.int64)
        fill = int(np.searchsorted(ev.fill_row, row))
        dec = int(np.searchsorted(ev.dec_row, row))
        stopped_at: tuple[int, bool] | None = None
        self.adw_i[:] = 0
        pass_from = None  # where the pass began and the state it found, to go back to
        while True:
            if pass_from is None:
                pass_from = (row, fill, dec, resumed, int(n_out[0]), self._state_copy())
            stop, row, fill, dec = _run(
                ev.inst, ev.clean, ev.ts, ev.price, ev.fill_row, ev.fill_slot, ev.fill_realized,
                ev.fill_fee, ev.dec_row, ev.dec_slot, ev.dec_score, ev.dec_side, ev.dec_price,
                ev.dec_net_pnl, ev.dec_account_ts, self.ist, self.fst, self.mst, self.m_err,
                self.hits, self.q, self.p_ts, self.p_slot, self.p_side, self.p_price,
                self.p_score, self.icfg, self.fcfg, self.adw_i, self.aq_km, self.aq_f, a_int,
                a_num, n_out, row, fill, dec, resumed,
            )  # fmt: skip
            alarm = self.answer()
            if alarm >= 0:  # the pass went on without this alarm: again, with it
                row, fill, dec, resumed, n_out[0], state = pass_from
                self._restore(state)
                self.adw_i[ADW_N], self.adw_i[ADW_KNOWN] = 0, alarm + 1
                continue
            pass_from = None
            self.adw_i[:] = 0
            if stop == DONE:
                # the pass takes a row's fills and decisions at that clean row, in row order:
                # one it left behind names another row, or came out of order
                if fill != ev.fill_row.size or dec != ev.dec_row.size:
                    raise ValueError("fills and decisions belong to clean rows, in row order")
                break
            if stop == STOP_POLICY:
                stopped_at = (row, bool(n_out[0]) and int(a_int[n_out[0] - 1, A_ROW]) == row)
                break
            resumed = stop == STOP_ADWIN  # the queue was full: the same row again
            if stop == STOP_GROW:
                self.widen()
        n = int(n_out[0])
        a_int, a_num = a_int[:n], a_num[:n]
        alerts = render_alerts(self.config, a_int, a_num, self.symbols.names, self.models.names)
        commands = [
            c
            for alert, effect in zip(alerts, a_int[:, A_EFFECT].tolist(), strict=True)
            if (c := render_command(alert, effect)) is not None
        ]
        return MonitorOutput(a_int, a_num, alerts, commands, stopped_at)

    def stats(self, instrument: str) -> dict[str, object]:
        """``Monitor.stats`` from the arrays."""
        k = self.symbols.index(instrument)
        self.sync()
        n_q = int(self.ist[k, I_Q_LEN])
        models = {}
        for m, name in enumerate(self.models.names):
            s = self.mst[k, m]
            if not s[M_EXISTS]:
                continue
            n_hits = int(s[M_H_LEN])
            p = int(self.adw_window[k, m])
            adwin = Adwin.of(self.adw, p) if p >= 0 else None
            models[name] = {
                "accuracy": int(s[M_H_SUM]) / n_hits if n_hits else None,
                "outcomes": int(s[M_OUTCOMES]),
                "signals": int(s[M_SIGNALS]),
                "trades": int(s[M_TRADES]),
                "losing_streak": int(s[M_STREAK]),
                "worst_losing_streak": int(s[M_WORST]),
                "drifts": int(s[M_DRIFTS]),
                "error_estimate": adwin.estimation if adwin is not None else 0.0,
            }
        return {
            "quarantine_rate": int(self.ist[k, I_Q_BAD]) / n_q if n_q else 0.0,
            "models": dict(sorted(models.items())),
        }

    def _state_copy(self) -> list[np.ndarray]:
        return [a.copy() for a in self.state_arrays()]

    def _restore(self, state: list[np.ndarray]) -> None:
        for a, saved in zip(self.state_arrays(), state, strict=True):
            a[...] = saved

    def state_arrays(self) -> list[np.ndarray]:
        """Every array of the state (what a checkpoint carries; what invariance compares)."""
        return [
            self.ist, self.fst, self.mst, self.m_err, self.hits, self.q, self.p_ts,
            self.p_slot, self.p_side, self.p_price, self.p_score,
        ]  # fmt: skip

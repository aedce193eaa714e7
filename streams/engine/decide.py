"""The back half over a batch: fills, risk, control and the decision of every decided row, in one
kernel; then the decisions, orders, fills and audit entries rendered from its columns.

What the per-tick oracle (``tests/oracle``) decides per clean tick, as one compiled pass over
the rows in order (what risk
decides feeds back into later rows: positions, throttles, fills), with all state in arrays a
row per instrument:

1. fills due at the row and the marks (``execution.on_tick``), risk's market state
   (``risk.on_tick``); *the monitor's tick and fill scoring slots in here*;
2. on a row that carries a vector: the model stage's commands due at it (``promote`` and
   ``rollback`` of the configured version, which only say so in the audit); then, when the
   model is warm (a routed signal), the control view at the row's event time (the command in
   force per key, first applications marked), ``risk.evaluate`` with the decision rule, and
   ``execution.submit`` of an approved order; *the monitor's signal and account scoring, and
   its policies (which add commands from the next row on), slot in after the decision*.

Commands (``ControlCommand``) enter between batches, in arrival order: the control book's
newest command per key wins among those effective at the row, so arrival order, not effective
time, settles a tie. Texts come afterwards from the numbers (``risk.rule_reasons``,
``risk.check_details``), and Python objects only for what is published: a decision that does
something, an order, a fill, an audit entry. Plain HOLDs under ``[audit] holds = "summary"``
are cut into stretches from the columns (``hold_stretches``), and the stretches that follow
one another are counted into their runs by one call (``AuditChain.count_stretches``): no HOLD
is built or visited one by one.

The monitor runs after this kernel over the same rows; a policy of its that changes control
makes the engine decide again from the row it applies at (``streams.engine.run``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tickwise.schemas.decisions import (
    Action,
    AppliedControl,
    AuditRecord,
    ControlCommand,
    Decision,
    FeatureVector,
    Fill,
    Order,
    RiskCheckResult,
    Side,
    Signal,
    Stage,
    TradingState,
)
from tickwise.schemas.wire import SignalWire
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.engine import execution as ex
from tickwise.streams.engine import risk as rk
from tickwise.streams.engine.batch import KIND_TRADE, SymbolTable, TickBatch
from tickwise.streams.engine.execution import BatchExecution, FillColumns
from tickwise.streams.engine.jit import kernel
from tickwise.streams.engine.models import ModelColumns
from tickwise.streams.engine.risk import RiskKernel
from tickwise.streams.operators.audit import AuditChain, Entry, reason_key
from tickwise.streams.operators.control import (
    GLOBAL,
    KILL_COMMANDS,
    MODEL_COMMANDS,
    STAGE_COMMANDS,
)
from tickwise.streams.operators.models.shared import Applied, version_key
from tickwise.streams.operators.risk import _shared_check, decision_of

NONE = rk.NONE  # an unset effective time: always in force
# command kinds, by code in ``c_kind``
KILL_ON, KILL_OFF, DEMOTE, PROMOTE = range(4)
_KINDS = {"kill_switch_on": KILL_ON, "kill_switch_off": KILL_OFF, "demote": DEMOTE}
_KINDS["promote"] = PROMOTE
N_KEYS = 6  # the control view's keys, in ``ControlBook.view``'s order
# ``c_model``: the model a command names, as its slot in the engine's table of model ids
MODEL_ANY = -1  # a command naming no model: every model
# what an applied-control mark is (``e_what``)
E_STAGE, E_VIEW = range(2)
# stop reasons of the kernel (bits): a ring or the events buffer needs room
FULL_RISK, FULL_ORDERS, FULL_EVENTS = 1, 2, 4
# cursor positions: where the kernel is in the batch and its outputs
C_ROW, C_VEC, C_DEC, C_FILL, C_EVENT = range(5)
_ACTIONS = (Action.HOLD, Action.BUY, Action.SELL)
_SIDES = (Side.BUY, Side.SELL, Side.FLAT)
_STATES = (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED)
# a plain HOLD's reason as a number: the rule's reason code, long or not, cost and edge finite
_N_CODES = 8 * (rk.R_KEEP + 1)


@dataclass(slots=True)
class DecideColumns:
    """What the kernel decided in a batch.

    Decisions, a row each in row order (the rows with a routed signal): ``row`` and ``vec``
    (the model columns' index), the signal's ``score``/``side``/``confidence`` (risk's side
    codes), ``held`` (position filled plus in flight before), the account's ``drawdown`` and
    ``day_pnl`` (check texts), risk's numbers ``out`` (``risk.O_*`` and one column per check),
    ``order`` (order number, -1: none), ``halted_by``/``demoted_by`` (command index, -1),
    ``plain`` (a HOLD with nothing to record), ``state_changed`` (the trading state differs
    from the instrument's last decision), and the account the decision left as the monitor
    reads it: ``net_pnl`` (``AccountView.net_pnl``) at ``account_ts``.

    Applied controls, in the order applied: ``e_row``, ``e_what`` (``E_STAGE``: the model
    stage's command; ``E_VIEW``: the control view's first application), ``e_cmd``.
    Fills: ``fills`` (``execution.FillColumns``; ``order_id`` is the order number).
    """

    row: np.ndarray
    vec: np.ndarray
    score: np.ndarray
    side: np.ndarray
    confidence: np.ndarray
    held: np.ndarray
    drawdown: np.ndarray
    day_pnl: np.ndarray
    out: np.ndarray
    order: np.ndarray
    halted_by: np.ndarray
    demoted_by: np.ndarray
    plain: np.ndarray
    state_changed: np.ndarray
    net_pnl: np.ndarray
    account_ts: np.ndarray
    e_row: np.ndarray
    e_what: np.ndarray
    e_cmd: np.ndarray
    fills: FillColumns
    equity: np.ndarray  # per row of the batch: the instrument's equity after it (NaN: not run)


DECISION_COLUMNS = DecideColumns.__slots__[:16]
EVENT_COLUMNS = ("e_row", "e_what", "e_cmd")


@kernel()
def _decide(
    clean, emit, inst, kind, ts, price, bid, ask,
    m_score, m_routed, m_move, m_band, m_fraction, m_model,
    # execution state and settings
    x_started, acct, x_ts, x_day, n_fills, o_due, o_ts, o_buy, o_qty, o_id, o_head, o_len,
    x_cfg, day_offset_ns, latency_ns,
    # risk state and settings
    mkt, last_ts, lim, dd_stop, daily_stop, held_since, r_orders, r_head, r_len,
    mult, rule_edge, cost_args, entry_mult, exit_mult, min_hold_ns, windows,
    # the model's signal: the task
    regression,
    # commands: control view (all) and model stage (promote, rollback)
    c_kind, c_scope, c_model, c_eff, applied,
    mc_scope, mc_eff, mc_next,
    # what the audit chain holds back per instrument, and its last trading state
    pend_fills, pend_controls, chain_state, next_order,
    # outputs
    d_row, d_vec, d_score, d_side, d_conf, d_held, d_dd, d_pnl, d_out, d_order, d_halted,
    d_demoted, d_plain, d_changed, d_net, d_acct_ts,
    e_row, e_what, e_cmd,
    f_row, f_id, f_price, f_fee, f_qty, f_buy, f_pos, f_cash, f_realized,
    r_equity, stop, cursor,
    # scratch: the command in force per key, the fill count (the kernel allocates nothing)
    best, n_out,
):  # pragma: no cover - compiled  # fmt: skip
    """Rows ``cursor[C_ROW]`` to ``stop``; returns 0 when done, or ``FULL_*`` bits with the
    cursor at the row that needs room (nothing of it done yet)."""
    r_cap, o_cap, e_cap = r_orders.shape[1], o_due.shape[1], e_row.shape[0]
    n_mc = mc_scope.shape[0]
    for i in range(cursor[C_ROW], stop):
        if not clean[i]:
            continue
        k = inst[i]
        full = 0
        if r_len[k] == r_cap:
            full |= FULL_RISK
        if o_len[k] == o_cap:
            full |= FULL_ORDERS
        if cursor[C_EVENT] + n_mc + N_KEYS > e_cap:
            full |= FULL_EVENTS
        if full:
            cursor[C_ROW] = i
            return full
        # 1. fills and marks, the market risk reads (monitor: on_tick, on_fill)
        n_out[0] = cursor[C_FILL]
        trade = kind[i] == KIND_TRADE
        ex.on_tick(
            x_started, acct, x_ts, x_day, n_fills, o_due, o_ts, o_buy, o_qty, o_id, o_head,
            o_len, x_cfg, day_offset_ns, k, ts[i], trade, price[i], bid[i], ask[i],
            f_row, f_id, f_price, f_fee, f_qty, f_buy, f_pos, f_cash, f_realized, n_out, i,
        )  # fmt: skip
        row_fills = n_out[0] - cursor[C_FILL]
        cursor[C_FILL] = n_out[0]
        rk.on_tick(mkt, last_ts, lim, k, ts[i], trade, price[i], bid[i], ask[i])
        r_equity[i] = ex.equity(acct, k, x_cfg[ex.MULT])  # nothing below moves it
        if not emit[i]:
            pend_fills[k] += row_fills
            continue
        # 2. the model stage's commands due at this row, in arrival order
        j = cursor[C_VEC]
        cursor[C_VEC] = j + 1
        row_controls = 0
        while mc_next[k] < n_mc:
            c = mc_next[k]
            if mc_scope[c] != -1 and mc_scope[c] != k:
                mc_next[k] = c + 1
                continue
            if mc_eff[c] != NONE and ts[i] < mc_eff[c]:
                break
            e = cursor[C_EVENT]
            e_row[e], e_what[e], e_cmd[e] = i, E_STAGE, c
            cursor[C_EVENT] = e + 1
            row_controls += 1
            mc_next[k] = c + 1
        if not m_routed[j]:  # no signal goes to risk: nothing decided
            pend_fills[k] += row_fills
            pend_controls[k] += row_controls
            continue
        score, band = m_score[j], m_band[j]
        if regression:
            if not math.isfinite(score):
                score = 0.0
            edge = score
            den = abs(score) + band
            conf = abs(score) / (den if den != 0.0 else 1.0)
            expected = score
        else:
            edge = score - 0.5
            conf = abs(edge) * 2.0
            expected = (2.0 * score - 1.0) * m_move[j]
        conf = conf if conf < 1.0 else 1.0
        side = rk.BUY if edge > band else rk.SELL if edge < -band else rk.SIDE_FLAT
        # the account after this row's fills
        position = acct[k, ex.POSITION]
        pending = ex.pending_quantity(o_buy, o_qty, o_head, o_len, k)
        eq = ex.equity(acct, k, x_cfg[ex.MULT])
        peak = eq if np.isnan(acct[k, ex.PEAK]) else acct[k, ex.PEAK]
        day_start = eq if np.isnan(acct[k, ex.DAY_START]) else acct[k, ex.DAY_START]
        trading_day = x_day[k] if x_day[k] != ex.NO_DAY else 0
        # the control view at the row's event time: the newest command in force per key
        best[:] = -1
        for c in range(c_kind.shape[0]):
            if c_eff[c] != NONE and c_eff[c] > ts[i]:
                continue
            kill = c_kind[c] == KILL_ON or c_kind[c] == KILL_OFF
            if c_scope[c] != -1 and c_scope[c] != k:
                continue
            here = 0 if c_scope[c] == -1 else 1
            if kill:
                best[here] = c
            elif c_model[c] == m_model[j]:
                best[2 + here] = c
            elif c_model[c] == MODEL_ANY:
                best[4 + here] = c
        halted = demoted = -1
        cleared = False
        for s in range(N_KEYS):
            c = best[s]
            if c < 0:
                continue
            if c_kind[c] == KILL_ON and halted < 0:
                halted = c
            if c_kind[c] == DEMOTE and demoted < 0:
                demoted = c
            if applied[k, s] != c:
                applied[k, s] = c
                e = cursor[C_EVENT]
                e_row[e], e_what[e], e_cmd[e] = i, E_VIEW, c
                cursor[C_EVENT] = e + 1
                row_controls += 1
                cleared = cleared or c_kind[c] == KILL_OFF
        d = cursor[C_DEC]
        out = d_out[d]
        out[:] = 0.0
        rk.evaluate(
            mkt, lim, dd_stop, daily_stop, held_since, r_orders, r_head, r_len,
            mult, rule_edge, cost_args, entry_mult, exit_mult, min_hold_ns, windows,
            k, side, expected, conf, m_fraction[j], ts[i], price[i],
            position, pending, eq, peak - eq, eq - day_start, trading_day, True,
            halted >= 0, demoted >= 0, cleared, out,
        )  # fmt: skip
        delta = out[rk.O_DELTA]
        order = -1
        if out[rk.O_APPROVED] == 1.0 and delta != 0.0:
            order = next_order[0]
            next_order[0] = order + 1
            ex.submit(
                x_started, acct, x_cfg, o_due, o_ts, o_buy, o_qty, o_id, o_head, o_len,
                k, ts[i], latency_ns, delta > 0.0, abs(delta), order,
            )  # fmt: skip
        state = int(out[rk.O_STATE])
        plain = (
            delta == 0.0
            and row_fills == 0
            and pend_fills[k] == 0
            and row_controls == 0
            and pend_controls[k] == 0
            and state == chain_state[k]
        )
        d_row[d], d_vec[d], d_score[d], d_side[d], d_conf[d] = i, j, score, side, conf
        d_held[d], d_dd[d], d_pnl[d] = position + pending, peak - eq, eq - day_start
        d_order[d], d_halted[d], d_demoted[d] = order, halted, demoted
        d_plain[d], d_changed[d] = plain, state != chain_state[k]
        unrealized = 0.0
        if acct[k, ex.POSITION]:
            mark_gain = acct[k, ex.MARK] - acct[k, ex.AVG]
            unrealized = acct[k, ex.POSITION] * mark_gain * x_cfg[ex.MULT]
        d_net[d] = acct[k, ex.REALIZED] + unrealized - acct[k, ex.FEES]
        d_acct_ts[d] = x_ts[k]
        chain_state[k] = state
        if not plain:
            pend_fills[k] = 0
            pend_controls[k] = 0
        cursor[C_DEC] = d + 1
        # (monitor: on_signal, on_account, then its policies: Engine.run, after the kernel)
    cursor[C_ROW] = stop
    return 0


@dataclass(slots=True)
class HoldStretches:
    """The plain HOLDs among a batch's decisions, in stretches: consecutive plain HOLDs of one
    instrument (no other decision of it between them), one event-time period, one position and
    one model version routed.

    ``stretch``: each decision's stretch (-1: not a plain HOLD); ``first_of``: the decisions
    that open one; ``last``: each stretch's last decision; ``reasons``: each stretch's HOLDs by
    their ``reason_key``.
    """

    stretch: np.ndarray
    first_of: np.ndarray
    last: np.ndarray
    reasons: list[dict[str, int]] = field(default_factory=list)


@kernel()
def _cut_stretches(inst, period, held, plain, version, stretch, first_of, last, open_at,
                   open_period, open_held, open_version):  # pragma: no cover  # fmt: skip
    """``hold_stretches`` in one pass: each instrument's open stretch, and what it is cut by."""
    n_open = 0
    open_at[:] = -1
    for d in range(inst.size):
        k = inst[d]
        if not plain[d]:
            open_at[k] = -1
            stretch[d] = -1
            first_of[d] = False
            continue
        s = open_at[k]
        if (
            s < 0
            or period[d] != open_period[k]
            or held[d] != open_held[k]
            or version[d] != open_version[k]
        ):
            s = n_open
            n_open += 1
            open_at[k], open_period[k], open_held[k], open_version[k] = (
                s, period[d], held[d], version[d]
            )  # fmt: skip
            first_of[d] = True
        else:
            first_of[d] = False
        stretch[d] = s
        last[s] = d
    return n_open


def hold_stretches(
    instrument: np.ndarray,
    period: np.ndarray,
    held: np.ndarray,
    plain: np.ndarray,
    version: np.ndarray,
) -> HoldStretches:
    """Cut the plain HOLDs of decisions in row order into stretches, numbered as they open
    (``reasons`` left empty).

    Nothing a run of holds is cut by (another decision of the instrument, a new period, a new
    position, another model version routed: ``version``, a code per decision) happens inside a
    stretch, so ``AuditChain.count_stretches`` counts each as a whole.

    Examples
    --------
    >>> s = hold_stretches(np.array([0, 1, 0, 0, 0]), np.array([7, 7, 7, 8, 8]),
    ...                    np.zeros(5), np.array([True, True, True, True, False]), np.zeros(5))
    >>> s.stretch.tolist(), s.first_of.tolist(), s.last.tolist()
    ([0, 1, 0, 2, -1], [True, True, False, True, False], [2, 1, 3])
    """
    n = instrument.size
    inst = np.ascontiguousarray(instrument, np.int64)
    k = int(inst.max()) + 1 if n else 0
    stretch, first_of, last = np.empty(n, np.int64), np.empty(n, np.bool_), np.empty(n, np.int64)
    n_open = _cut_stretches(
        inst, np.ascontiguousarray(period, np.int64), np.ascontiguousarray(held, np.float64),
        np.ascontiguousarray(plain, np.bool_), np.ascontiguousarray(version, np.int64),
        stretch, first_of, last, np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k),
        np.empty(k, np.int64),
    )  # fmt: skip
    return HoldStretches(stretch, first_of, last[:n_open])


@kernel()
def _count_reasons(stretch, out, held, n_stretches, keys, counts, some, odd, cur,
                   cur_at):  # pragma: no cover - compiled  # fmt: skip
    """The plain HOLDs (``stretch`` >= 0) by stretch and reason code: ``keys`` (stretch times
    ``_N_CODES`` plus code) with their ``counts``, a key again wherever a stretch's code
    changes; ``some`` decision of each code; ``odd``: the HOLDs whose cost or edge is not
    finite, whose text keeps its numbers. Returns the numbers of keys and of odd HOLDs.

    A code is the rule's reason, long or not, cost and edge finite: a HOLD's ``reason_key``
    when its numbers are finite (they all read '#')."""
    n_keys = n_odd = 0
    cur[:n_stretches] = -1
    for d in range(stretch.size):
        s = stretch[d]
        if s < 0:
            continue
        c = int(out[d, rk.O_REASON]) * 8 + (4 if held[d] > 0.0 else 0)
        if not (math.isfinite(out[d, rk.O_COST]) and math.isfinite(out[d, rk.O_EDGE])):
            odd[n_odd] = d
            n_odd += 1
            continue
        c += 3
        some[c] = d
        if cur[s] == c:
            counts[cur_at[s]] += 1
        else:
            cur[s], cur_at[s] = c, n_keys
            keys[n_keys], counts[n_keys] = s * _N_CODES + c, 1
            n_keys += 1
    return n_keys, n_odd


@dataclass
class Rendered:
    """A batch's published objects: what the decide stage publishes."""

    decisions: list[Decision] = field(default_factory=list)  # those with an audit record
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    audit: list[tuple[Entry, bytes]] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)  # model stage commands applied


@dataclass(slots=True)
class _Buffers:
    """A run's output columns (``DecideColumns`` before they are cut to what was decided)."""

    decisions: list[np.ndarray]
    events: list[np.ndarray]
    fills: FillColumns
    equity: np.ndarray


@dataclass(slots=True)
class _LastRun:
    """What a run to the end of a batch leaves for a run that goes back into it: the batch,
    row and model columns it ran over, the snapshot taken before it, its marks (row, cursor,
    state) and its buffers."""

    batch: TickBatch
    start: int
    model: ModelColumns
    snapshot: dict[str, np.ndarray] | None
    marks: list[tuple[int, np.ndarray, dict[str, np.ndarray]]]
    buffers: _Buffers


@dataclass(slots=True)
class _StretchColumns:
    """A batch's stretches of plain HOLDs (``hold_stretches``), in the order they open, as what
    ``AuditChain.count_stretches`` reads: the row each opens at, its instrument (numbers), the
    trading state through it, the model version routed, its ends and its position."""

    rows: list[int]
    instrument: np.ndarray
    state: list[TradingState]
    model_ids: list[str]
    versions: list[int]
    first_ts: list[int]
    first_tick_ids: list[str | None]
    last_ts: list[int]
    last_tick_ids: list[str | None]
    positions: list[float]
    reasons: list[dict[str, int]]

    def groups(self, visited: np.ndarray) -> dict[int, tuple[int, int, int]]:
        """Runs of stretches that follow one another among the ``visited`` rows (sorted), one
        instrument each, nothing between them: by the position in ``visited`` a run opens
        at, its stretches ``s0:s1`` and the position after it.

        One ``count_stretches`` counts such a run: no entry of another instrument or other
        record comes between its summaries."""
        n = len(self.rows)
        if n == 0:
            return {}
        at = np.searchsorted(visited, np.asarray(self.rows, np.int64))
        opens = np.ones(n, np.bool_)
        opens[1:] = (np.diff(at) != 1) | (self.instrument[1:] != self.instrument[:-1])
        s0 = np.flatnonzero(opens)
        s1 = np.append(s0[1:], n)
        after = at[s1 - 1] + 1
        return {
            int(p): (a, b, c)
            for p, a, b, c in zip(
                at[s0].tolist(), s0.tolist(), s1.tolist(), after.tolist(), strict=True
            )
        }

    def count(
        self, audit: AuditChain, names: Sequence[str], s0: int, s1: int
    ) -> list[tuple[Entry, bytes]]:
        """Count stretches ``s0:s1`` (one of ``groups``) into their instrument's chain."""
        return audit.count_stretches(
            names[int(self.instrument[s0])], self.state[s0], self.model_ids[s0:s1],
            self.versions[s0:s1], self.first_ts[s0:s1],
            self.first_tick_ids[s0:s1],  # type: ignore[arg-type]  # a decided row's tick has one
            self.last_ts[s0:s1], self.last_tick_ids[s0:s1],  # type: ignore[arg-type]
            self.positions[s0:s1], self.reasons[s0:s1],
        )  # fmt: skip


class BatchDecide:
    """The decide stage over batches, for one partition's instruments, with its audit chain."""

    def __init__(
        self, config: TickwiseConfig, symbols: SymbolTable, models: SymbolTable | None = None
    ) -> None:
        """``models``: the engine's table of model ids, the slots ``ModelColumns.slot`` and the
        commands naming a model are read by (the configured model's alone by default)."""
        self.config, self.symbols = config, symbols
        self.model = config.model
        self.models = models if models is not None else SymbolTable([config.model.model_id])
        self.risk = RiskKernel(
            config.risk, config.execution, config.decision, config.label.horizon_s, symbols
        )
        self.execution = BatchExecution(config.execution, symbols)
        self.audit = AuditChain(config.audit)
        self.regression = config.label.task == "regression"
        self.key = version_key(self.model.model_id, self.model.model_version)
        self.names = list(config.features.feature_set)
        self.commands: list[ControlCommand] = []  # what the control view reads
        self.model_commands: list[ControlCommand] = []  # what the model stage applies
        self._seen: set[str] = set()
        self._arrays = _command_arrays([], [], symbols, self.models)
        self.applied = np.zeros((0, N_KEYS), np.int64)
        self.mc_next = np.zeros(0, np.int64)
        self.pend_fills = np.zeros(0, np.int64)
        self.pend_controls = np.zeros(0, np.int64)
        self.chain_state = np.zeros(0, np.int64)
        self.next_order = np.zeros(1, np.int64)
        self.events_capacity = 64
        self.pending_orders: dict[int, Order] = {}  # by order number, until filled
        self._reason_keys: dict[tuple[int, bool, bool, bool], str] = {}
        self._wire: SignalWire | None = None  # the configured version's signal encoder
        # the last run's buffers and marks (see ``run``): what a run to a row after going back
        # to the snapshot taken before that run takes up again
        self._last: _LastRun | None = None
        self._snapshot: dict[str, np.ndarray] | None = None  # the one ``snapshot`` took last
        self._restored: dict[str, np.ndarray] | None = None  # the one ``restore`` went back to

    # --- commands ------------------------------------------------------------------------

    @property
    def seen(self) -> frozenset[str]:
        """The ids of the commands taken so far (``ControlBook`` ignores one seen before)."""
        return frozenset(self._seen)

    def on_control(self, commands: Iterable[ControlCommand]) -> None:
        """Take operator commands (between batches), in arrival order."""
        self._last = None  # a run decided under other commands cannot be taken up again
        for cmd in commands:
            if cmd.command_id in self._seen:
                continue
            if cmd.command in MODEL_COMMANDS:
                self.model_commands.append(cmd)
            if cmd.command in KILL_COMMANDS + STAGE_COMMANDS:
                self.commands.append(cmd)
            self._seen.add(cmd.command_id)
        self._arrays = _command_arrays(
            self.commands, self.model_commands, self.symbols, self.models
        )

    def _model_detail(self, cmd: ControlCommand, instrument: str, model: ModelColumns) -> str:
        """What ``ModelStage._apply`` said the command did on ``instrument`` (``StagedModel``
        records it), or, under the compiled kernel's one version, says it would."""
        if model.details is not None:  # none: the stage raised at that tick (OPERATOR_ERROR)
            return model.details.get((cmd.command_id, instrument), "at a tick the stage raised on")
        if cmd.command == "rollback":
            return "nothing to roll back to"
        key = version_key(cmd.model_id or "", cmd.model_version or 0)
        if key != self.key:
            return f"unknown version {key}: ignored"
        return f"{key} -> {Stage.PRODUCTION}"

    # --- the kernel ----------------------------------------------------------------------

    def _sync(self) -> None:
        self.risk.sync()
        self.execution.state.grow(len(self.symbols))
        extra = len(self.symbols) - self.mc_next.size
        if extra > 0:
            self.applied = np.concatenate([self.applied, np.full((extra, N_KEYS), -1, np.int64)])
            for name in ("mc_next", "pend_fills", "pend_controls", "chain_state"):
                a = getattr(self, name)
                setattr(self, name, np.concatenate([a, np.zeros(extra, np.int64)]))

    def run(
        self,
        batch: TickBatch,
        clean: np.ndarray,
        emit: np.ndarray,
        model: ModelColumns,
        start: int = 0,
        stop: int | None = None,
    ) -> DecideColumns:
        """Decide the clean rows ``start:stop`` of ``batch`` (``emit``: the rows with a vector,
        scored in ``model``), carrying the state across batches and row ranges.

        A run to the end of the batch keeps a mark of the state every ``MARK_EVERY`` rows. When
        ``restore`` has gone back to the snapshot taken just before it and the same rows are
        decided again up to ``stop`` (the monitor stopped there for a policy's command), the
        run goes back to the last mark at or before ``stop`` instead and decides from there:
        the rows before it would come out the same, and their columns are still in the
        buffers."""
        self._sync()
        last, self._last = self._last, None
        anchor, self._snapshot = self._snapshot, None  # the state this run starts from
        resume = (
            last is not None
            and stop is not None
            and last.snapshot is not None
            and self._restored is last.snapshot
            and last.batch is batch
            and last.start == start
            and last.model is model
        )
        stop = len(batch) if stop is None else stop
        if resume:
            assert last is not None
            mark = max((m for m in last.marks if m[0] <= stop), key=lambda m: m[0])
            self.restore(mark[2])
            buffers, cursor = last.buffers, mark[1].copy()
            buffers.equity[mark[0] :] = np.nan  # rows after ``stop`` are not decided now
        else:
            buffers = self._buffers(len(batch), model.score.size)
            cursor = np.zeros(5, np.int64)
            cursor[C_ROW] = start
            cursor[C_VEC] = np.count_nonzero(emit[:start] & clean[:start])
        self._restored = None
        marks: list[tuple[int, np.ndarray, dict[str, np.ndarray]]] = []
        full_run = not resume and stop == len(batch)
        row = int(cursor[C_ROW])
        while True:
            if full_run:
                marks.append((row, cursor.copy(), self.snapshot(keep=False)))
            row = min(row + self.MARK_EVERY, stop) if full_run else stop
            self._decide_to(batch, clean, emit, model, buffers, cursor, row)
            if row >= stop:
                break
        if full_run:
            self._last = _LastRun(batch, start, model, anchor, marks, buffers)
        n_d, n_f, n_e = int(cursor[C_DEC]), int(cursor[C_FILL]), int(cursor[C_EVENT])
        fills, events = buffers.fills, buffers.events
        return DecideColumns(
            *(a[:n_d] for a in buffers.decisions),
            *(a[:n_e] for a in events),
            FillColumns(*(getattr(fills, name)[:n_f] for name in FillColumns.__slots__)),
            buffers.equity,
        )

    MARK_EVERY = 16_384  # rows between the marks of a run (see ``run``)

    def _buffers(self, n_rows: int, n_vec: int) -> _Buffers:
        """Output columns with room for every decision and fill a batch can make."""
        fill_bound = int(self.execution.state.o_len.sum()) + n_vec
        fills = FillColumns(
            np.empty(fill_bound, np.int64), np.empty(fill_bound, np.int64),
            np.empty(fill_bound), np.empty(fill_bound), np.empty(fill_bound),
            np.empty(fill_bound, np.bool_), np.empty(fill_bound), np.empty(fill_bound),
            np.empty(fill_bound),
        )  # fmt: skip
        d = [
            np.empty(n_vec, np.int64), np.empty(n_vec, np.int64), np.empty(n_vec),
            np.empty(n_vec, np.int8), np.empty(n_vec), np.empty(n_vec), np.empty(n_vec),
            np.empty(n_vec), np.empty((n_vec, rk.N_OUT)), np.empty(n_vec, np.int64),
            np.empty(n_vec, np.int64), np.empty(n_vec, np.int64), np.empty(n_vec, np.bool_),
            np.empty(n_vec, np.bool_), np.empty(n_vec), np.empty(n_vec, np.int64),
        ]  # fmt: skip
        events = [np.empty(self.events_capacity, np.int64) for _ in EVENT_COLUMNS]
        return _Buffers(d, events, fills, np.full(n_rows, np.nan))

    def _decide_to(
        self,
        batch: TickBatch,
        clean: np.ndarray,
        emit: np.ndarray,
        model: ModelColumns,
        buffers: _Buffers,
        cursor: np.ndarray,
        stop: int,
    ) -> None:
        """The kernel from ``cursor`` to row ``stop``, growing rings and buffers as it asks."""
        x, r = self.execution.state, self.risk.state
        c = self._arrays
        ks, rule = self.risk, self.config.decision
        fills = buffers.fills
        while True:
            full = _decide(
                clean, emit, batch.instrument, batch.kind, batch.ts, batch.price, batch.bid,
                batch.ask, model.score, model.routed, model.move_bps, model.band,
                model.fraction, model.slot,
                x.started, x.acct, x.ts, x.day, x.n_fills, x.o_due, x.o_ts, x.o_buy, x.o_qty,
                x.o_id, x.o_head, x.o_len, self.execution.cfg, self.execution.day_offset_ns,
                self.execution.latency_ns,
                r.mkt, r.last_ts, ks.lim, r.drawdown_stop, r.daily_stop_day, r.held_since,
                r.orders, r.orders_head, r.orders_len, ks.mult, ks.rule_edge, ks.cost_args,
                rule.entry_cost_multiple, rule.exit_cost_multiple, ks.min_hold_ns, ks.windows,
                self.regression,
                c["kind"], c["scope"], c["model"], c["eff"], self.applied,
                c["mc_scope"], c["mc_eff"], self.mc_next,
                self.pend_fills, self.pend_controls, self.chain_state, self.next_order,
                *buffers.decisions, *buffers.events,
                fills.row, fills.order_id, fills.price, fills.fee, fills.quantity, fills.buy,
                fills.position_after, fills.cash_after, fills.realized_pnl_after,
                buffers.equity, stop, cursor, np.empty(N_KEYS, np.int64), np.empty(1, np.int64),
            )  # fmt: skip
            if not full:
                return
            if full & FULL_RISK:
                self.risk.widen()
            if full & FULL_ORDERS:
                x.widen()
            if full & FULL_EVENTS:
                self.events_capacity *= 2
                wider = [np.empty(self.events_capacity, np.int64) for _ in EVENT_COLUMNS]
                for old, new in zip(buffers.events, wider, strict=True):
                    new[: old.size] = old
                buffers.events = wider

    def snapshot(self, keep: bool = True) -> dict[str, np.ndarray]:
        """A copy of the kernel's state, for ``restore``: the engine runs a batch ahead of the
        monitor and goes back when a policy of the monitor changes control mid-batch
        (``keep``: the one the next run starts from, which ``run`` can take up again)."""
        x, r = self.execution.state, self.risk.state
        snap = {f"x.{name}": getattr(x, name).copy() for name in x.__slots__}
        snap |= {f"r.{name}": getattr(r, name).copy() for name in r.__slots__}
        for name in ("applied", "mc_next", "pend_fills", "pend_controls", "chain_state"):
            snap[name] = getattr(self, name).copy()
        snap["next_order"] = self.next_order.copy()
        if keep:
            self._snapshot = snap
        return snap

    def restore(self, snap: dict[str, np.ndarray]) -> None:
        """Back to the state ``snapshot`` took (arrays replaced, so widened rings go too)."""
        x, r = self.execution.state, self.risk.state
        for key, value in snap.items():
            owner, _, name = key.rpartition(".")
            setattr({"x": x, "r": r, "": self}[owner], name, value.copy())
        self._restored, self._snapshot = snap, None

    def state_arrays(self) -> list[np.ndarray]:
        """Every array of the state, rings laid out oldest first (what invariance compares)."""
        x, r = self.execution.state, self.risk.state
        out = [x.started, x.acct, x.ts, x.day, x.n_fills, x.o_len, self.next_order]
        out += [r.mkt, r.last_ts, r.drawdown_stop, r.daily_stop_day, r.held_since, r.orders_len]
        for k in range(x.o_len.size):
            for ring, head, size in (
                (x.o_due, x.o_head, x.o_len), (x.o_qty, x.o_head, x.o_len),
                (x.o_id, x.o_head, x.o_len), (x.o_buy, x.o_head, x.o_len),
                (r.orders, r.orders_head, r.orders_len),
            ):  # fmt: skip
                cap = ring.shape[1]
                out.append(ring[k, (head[k] + np.arange(size[k])) % cap])
        out += [self.applied, self.mc_next, self.pend_fills, self.pend_controls]
        return [*out, self.chain_state]

    # --- rendering -----------------------------------------------------------------------

    def render(
        self, batch: TickBatch, cols: DecideColumns, vectors: np.ndarray, model: ModelColumns
    ) -> Rendered:
        """The decisions, orders, fills and audit entries of ``cols``, as contracts and bytes.

        Python visits only the rows with something to publish or hold back (a fill, an
        applied control, a decision other than a plain HOLD) and, under ``holds = "summary"``,
        the first HOLD of each run of stretches of plain HOLDs that follow one another, which
        counts the whole run of stretches.
        """
        out = Rendered()
        instrument_names = self.symbols.names
        f, e = cols.fills, cols
        routed = model.routed_signals  # None: the compiled kernel's one version
        groups: dict[int, tuple[int, int, int]] = {}
        if self.config.audit.holds == "summary":
            stretches = self._stretch_columns(batch, cols, model)
            visit = np.flatnonzero(~cols.plain)
        else:
            stretches, visit = None, np.arange(cols.row.size)
        # the visited decisions' columns as Python values, position by position in ``visit``
        decided = dict(zip(cols.row[visit].tolist(), range(visit.size), strict=True))
        v_state = cols.out[visit, rk.O_STATE].astype(np.int64).tolist()
        fill_rows, event_rows = f.row.tolist(), e.e_row.tolist()
        opens = stretches.rows if stretches is not None else []
        rows = sorted({*fill_rows, *event_rows, *decided, *opens})
        at = np.array(rows, np.int64)  # the visited rows' columns as Python numbers at once
        if stretches is not None:
            groups = stretches.groups(at)
        fi = ei = 0
        row_ts, row_price = batch.ts[at].tolist(), batch.price[at].tolist()
        row_inst = batch.instrument[at].tolist()
        p, n_rows = 0, len(rows)
        while p < n_rows:
            group = groups.get(p)
            if group is not None:  # stretches of plain HOLDs of one instrument, in a row
                assert stretches is not None
                s0, s1, p = group
                out.audit += stretches.count(self.audit, instrument_names, s0, s1)
                continue
            i, k, ts, price = rows[p], row_inst[p], row_ts[p], row_price[p]
            p += 1
            name = instrument_names[k]
            tick_id = batch.tick_ids[i]
            assert tick_id is not None
            fills: list[Fill] = []
            while fi < len(fill_rows) and fill_rows[fi] == i:
                fills.append(self._fill(f, fi, tick_id, ts, price))
                fi += 1
            out.fills += fills
            controls: list[AppliedControl] = []
            while ei < len(event_rows) and event_rows[ei] == i:
                controls.append(self._applied(e, ei, name, tick_id, ts, out, model))
                ei += 1
            v = decided.get(i)
            if v is None:  # no decision: fills and stage changes wait for the next record
                self.audit.hold_fills(name, fills)
                self.audit.hold_controls(name, controls)
                continue
            d = int(visit[v])
            if routed is None:
                signal = self._signal(cols, d, model, vectors, name, tick_id, ts)
            else:
                routed_signal = routed[int(cols.vec[d])]
                assert routed_signal is not None
                signal = routed_signal
            decision, checks, order = self._decision(cols, d, signal, price)
            if order is not None:
                out.orders.append(order)
            vector = vectors[int(cols.vec[d])]
            features = self._features(vector, name, tick_id, ts, price)
            entries = self.audit.on_decision(
                features, signal, checks, decision, order=order, fills=fills,
                trading_state=_STATES[v_state[v]], controls=controls,
            )  # fmt: skip
            out.audit += entries
            out.decisions += [x.decision for x, _ in entries if isinstance(x, AuditRecord)]
        return out

    def _stretch_columns(
        self, batch: TickBatch, cols: DecideColumns, model: ModelColumns
    ) -> _StretchColumns:
        """What ``AuditChain.count_stretches`` reads of each stretch of plain HOLDs, as Python
        values at once."""
        holds = self._hold_stretches(batch, cols, model)
        first = np.flatnonzero(holds.first_of)  # stretches are numbered as they open
        first_rows, last_rows = cols.row[first], cols.row[holds.last]
        tick_ids = batch.tick_ids
        opens = first_rows.tolist()
        routed = model.routed_signals
        if routed is None:
            n = len(opens)
            model_ids, versions = [self.model.model_id] * n, [self.model.model_version] * n
        else:  # the version routed at each stretch
            held_by = [routed[j] for j in cols.vec[first].tolist()]
            model_ids = [s.model_id for s in held_by]  # type: ignore[union-attr]
            versions = [s.model_version for s in held_by]  # type: ignore[union-attr]
        return _StretchColumns(
            rows=opens,
            instrument=batch.instrument[first_rows],
            state=[_STATES[c] for c in cols.out[first, rk.O_STATE].astype(np.int64).tolist()],
            model_ids=model_ids,
            versions=versions,
            first_ts=batch.ts[first_rows].tolist(),
            first_tick_ids=[tick_ids[i] for i in opens],
            last_ts=batch.ts[last_rows].tolist(),
            last_tick_ids=[tick_ids[i] for i in last_rows.tolist()],
            positions=cols.held[first].tolist(),
            reasons=holds.reasons,
        )

    def _hold_stretches(
        self, batch: TickBatch, cols: DecideColumns, model: ModelColumns
    ) -> HoldStretches:
        """The batch's plain HOLDs in stretches, each what ``count_stretches`` counts as a whole."""
        rows = cols.row
        period = batch.ts[rows] // self.audit.period_ns
        version = (model.slot[cols.vec] << 32) + model.version[cols.vec]  # model id and version
        stretches = hold_stretches(batch.instrument[rows], period, cols.held, cols.plain, version)
        stretch, out, held = stretches.stretch, cols.out, cols.held
        n = stretch.size
        keys, counts, odd = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
        some = np.empty(_N_CODES, np.int64)
        n_keys, n_odd = _count_reasons(
            stretch, out, held, stretches.last.size, keys, counts, some, odd,
            np.empty(stretches.last.size, np.int64), np.empty(stretches.last.size, np.int64),
        )  # fmt: skip
        # dicts, not Counters: a Counter is built by a Python call, and there is one a stretch
        reasons: list[dict[str, int]] = [{} for _ in range(stretches.last.size)]
        texts: dict[int, str] = {}
        for key, count in zip(keys[:n_keys].tolist(), counts[:n_keys].tolist(), strict=True):
            c = key % _N_CODES
            text = texts.get(c)
            if text is None:
                d = int(some[c])
                text = texts[c] = self._reason_key(out[d], float(held[d]))
            into = reasons[key // _N_CODES]
            into[text] = into.get(text, 0) + count
        for d in odd[:n_odd].tolist():  # texts that keep their numbers
            text = self._reason_key(out[d], float(held[d]))
            into = reasons[stretch[d]]
            into[text] = into.get(text, 0) + 1
        stretches.reasons = reasons
        return stretches

    def finish(self) -> list[tuple[Entry, bytes]]:
        """At the end of a finite input: a summary of each run of holds still open."""
        return self.audit.close_runs()

    def _reason_key(self, row_out: np.ndarray, held: float) -> str:
        cost, edge = float(row_out[rk.O_COST]), float(row_out[rk.O_EDGE])
        key = (int(row_out[rk.O_REASON]), held > 0.0, math.isfinite(cost), math.isfinite(edge))
        text = self._reason_keys.get(key)
        if text is None:
            text = reason_key(rk.rule_reasons(self.risk, row_out, held))
            if key[2] and key[3]:  # finite numbers all read as '#': one key per reason
                self._reason_keys[key] = text
        return text

    def _fill(self, f: FillColumns, n: int, tick_id: str, ts: int, reference: float) -> Fill:
        order = self.pending_orders.pop(int(f.order_id[n]))
        return Fill(
            fill_id=f"fill-{order.order_id}",
            order_id=order.order_id,
            decision_id=order.decision_id,
            instrument=order.instrument,
            tick_id=tick_id,
            ts_event_ns=ts,
            order_ts_event_ns=order.ts_event_ns,
            side=order.side,
            quantity=float(f.quantity[n]),
            price=float(f.price[n]),
            reference_price=reference,
            fee=float(f.fee[n]),
            position_after=float(f.position_after[n]),
            cash_after=float(f.cash_after[n]),
            realized_pnl_after=float(f.realized_pnl_after[n]),
            model_id=order.model_id,
            model_version=order.model_version,
        )

    def _applied(
        self,
        e: DecideColumns,
        n: int,
        instrument: str,
        tick_id: str,
        ts: int,
        out: Rendered,
        model: ModelColumns,
    ) -> AppliedControl:
        c = int(e.e_cmd[n])
        if int(e.e_what[n]) == E_STAGE:
            cmd = self.model_commands[c]
            detail = self._model_detail(cmd, instrument, model)
            applied = Applied.of(cmd, instrument, tick_id, ts, detail)
            out.applied.append(applied)
            return applied.audited()
        cmd = self.commands[c]
        return AppliedControl(
            command_id=cmd.command_id,
            command=cmd.command,
            scope=cmd.scope,
            reason=cmd.reason,
            applied_ts_event_ns=ts,
            model_id=cmd.model_id,
            operator=cmd.operator,
        )

    def _features(
        self, vector: np.ndarray, instrument: str, tick_id: str, ts: int, price: float
    ) -> FeatureVector:
        """The feature vector a row was scored on (its audit record; live, the ``features``
        topic)."""
        return FeatureVector(
            instrument=instrument, tick_id=tick_id, ts_event_ns=ts, price=price,
            values=dict(zip(self.names, vector.tolist(), strict=True)),
        )  # fmt: skip

    def _signal(
        self,
        cols: DecideColumns,
        d: int,
        model: ModelColumns,
        vectors: np.ndarray,
        instrument: str,
        tick_id: str,
        ts: int,
    ) -> Signal:
        j = int(cols.vec[d])
        cfg = self.model
        x = vectors[j].tolist()  # Python floats at once: a numpy scalar a field is dear
        feature, weights, terms = (a[0].tolist() for a in model.explanation(np.array([j])))
        names = self.names
        # as mappings: the signal's validator builds them in one call, not one call each
        explanation = [
            {"feature": names[fc], "value": x[fc], "weight": weights[t], "contribution": terms[t]}
            for t, fc in enumerate(feature)
            if fc >= 0
        ]
        return Signal(
            signal_id=f"sig-{tick_id}-{cfg.model_id}-v{cfg.model_version}",
            instrument=instrument,
            tick_id=tick_id,
            ts_event_ns=ts,
            model_id=cfg.model_id,
            model_version=cfg.model_version,
            score=float(cols.score[d]),
            side=_SIDES[int(cols.side[d])],
            confidence=float(cols.confidence[d]),
            n_trained=int(model.n_trained[j]),
            explanation=explanation,  # type: ignore[arg-type]
            task="regression" if self.regression else "classification",
            stage=Stage.PRODUCTION,
            capital_fraction=1.0,
        )

    def signal_wire(
        self,
        batch: TickBatch,
        cols: DecideColumns,
        chosen: np.ndarray,
        model: ModelColumns,
        vectors: np.ndarray,
    ) -> list[bytes]:
        """The bytes of the signals ``_signal`` makes at the ``chosen`` decisions, in bulk:
        the columns read as Python numbers once, no ``Signal`` built (a replay writes these).
        """
        if chosen.size == 0:
            return []
        if self._wire is None:
            cfg = self.model
            task = "regression" if self.regression else "classification"
            self._wire = SignalWire(
                cfg.model_id, cfg.model_version, task, Stage.PRODUCTION, 1.0, self.names
            )
        suffix = f"-{self.model.model_id}-v{self.model.model_version}"
        rows, vec = cols.row[chosen], cols.vec[chosen]
        feature, weight, contribution = model.explanation(vec)
        value = np.take_along_axis(vectors[vec], np.maximum(feature, 0), axis=1)
        names, tick_ids = self.symbols.names, batch.tick_ids
        ticks = [tick_ids[i] for i in rows.tolist()]
        return self._wire.lines(
            [f"sig-{t}{suffix}" for t in ticks],
            [names[k] for k in batch.instrument[rows].tolist()],
            ticks,  # type: ignore[arg-type]  # a decided row's tick has an id
            batch.ts[rows].tolist(),
            cols.score[chosen].tolist(),
            [_SIDES[s] for s in cols.side[chosen].tolist()],
            cols.confidence[chosen].tolist(),
            model.n_trained[vec].tolist(),
            feature.tolist(),
            value.tolist(),
            weight.tolist(),
            contribution.tolist(),
        )

    def _decision(
        self, cols: DecideColumns, d: int, signal: Signal, price: float
    ) -> tuple[Decision, list[RiskCheckResult], Order | None]:
        row_out = cols.out[d]
        held = float(cols.held[d])
        halted, demoted = int(cols.halted_by[d]), int(cols.demoted_by[d])
        rows = rk.check_details(
            self.risk, signal.instrument, row_out, held,
            (float(cols.drawdown[d]), float(cols.day_pnl[d])), signal.model_id,
            self.commands[halted] if halted >= 0 else None,
            self.commands[demoted] if demoted >= 0 else None,
        )  # fmt: skip
        checks = [_shared_check(*r) for r in rows]
        delta = float(row_out[rk.O_DELTA])
        approved = bool(row_out[rk.O_APPROVED] == 1.0)
        reasons = rk.rule_reasons(self.risk, row_out, held)
        decision = decision_of(signal, delta, approved, price, held, checks, reasons)
        order = None
        number = int(cols.order[d])
        if number >= 0:
            order = Order(
                order_id=f"ord-{decision.decision_id}",
                decision_id=decision.decision_id,
                instrument=decision.instrument,
                ts_event_ns=decision.ts_event_ns,
                due_ts_event_ns=decision.ts_event_ns + self.execution.latency_ns,
                side=decision.action,
                quantity=decision.quantity,
                model_id=decision.model_id,
                model_version=decision.model_version,
            )
            self.pending_orders[number] = order
        return decision, checks, order


def _command_arrays(
    commands: Sequence[ControlCommand],
    model_commands: Sequence[ControlCommand],
    symbols: SymbolTable,
    models: SymbolTable,
) -> dict[str, np.ndarray]:
    """The commands as the kernel reads them, in arrival order."""

    def scope(cmd: ControlCommand) -> int:
        return -1 if cmd.scope == GLOBAL else symbols.index(cmd.scope)

    def eff(cmd: ControlCommand) -> int:
        return NONE if cmd.effective_ts_event_ns is None else cmd.effective_ts_event_ns

    def which(cmd: ControlCommand) -> int:
        return MODEL_ANY if cmd.model_id is None else models.index(cmd.model_id)

    return {
        "kind": np.array([_KINDS[c.command] for c in commands], np.int64),
        "scope": np.array([scope(c) for c in commands], np.int64),
        "model": np.array([which(c) for c in commands], np.int64),
        "eff": np.array([eff(c) for c in commands], np.int64),
        "mc_scope": np.array([scope(c) for c in model_commands], np.int64),
        "mc_eff": np.array([eff(c) for c in model_commands], np.int64),
    }

"""The report collector's compiled kernels: the report's figures over columns, row by row.

Arrays in, arrays out, no objects; ``replay.columnar`` owns the arrays and names the outputs.
Every function keeps the floating-point operations of the per-tick code it mirrors in the same
order (``CurveAccumulator``, ``SegmentedCurve``, ``Baselines``, ``SignalOutcomes``,
the tests' ``BacktestCollector``), so the figures are those of the per-tick collector bit for
bit.

Growth: ``rows`` checks, before it touches a row, that every buffer the row may append to has
room; when one has not it returns that row and the reason, the wrapper grows the buffer and
calls again from the same row (nothing of the row was done yet).
"""

from __future__ import annotations

import math

import numpy as np

from tickwise.replay.metrics import NS_PER_DAY
from tickwise.streams.engine.execution import POSITION, pending_quantity, submit
from tickwise.streams.engine.execution import equity as account_equity
from tickwise.streams.engine.execution import on_tick as broker_on_tick
from tickwise.streams.engine.jit import kernel
from tickwise.streams.operators.labels import direction_nb, forward_bps_nb

# the curves kept live: the run's, the two baselines', the open walk-forward segment's
WHOLE, BUY_AND_HOLD, RANDOM, SEGMENT = range(4)
N_CURVES = 4
# a curve's float scalars (``cf``) ...
FIRST, LAST, UNITS, NOTIONAL, FEES, SLIPPAGE, LOG_LOSS, PEAK, MAX_DD, RS_LAST = range(10)
N_CF = 10
# ... and its integer scalars (``ci``); RS_*: the resampler, its closed periods kept as runs
(ON, START_NS, END_NS, N_POINTS, N_TRADES, WINS, ROUND_TRIPS, HELD_NS, OUTCOMES, CORRECT,
 HOLDING, RS_ORIGIN, RS_BUCKET, RS_N) = range(14)  # fmt: skip
N_CI = 14
# the collector's integer state (``g``)
(LAST_TS, HAS_LAST_TS, LATE, WARM_SET, WARM_END, UNTIL_SET, UNTIL, WARM_TICKS, HAS_EQ,
 EQ_HOLDING, N_PNL, WIN_LEN, WIN_HEAD, WIN_CORRECT, BL_ON, BL_DECISIONS, BL_MODEL, BL_RANDOM,
 WORD, N_WORDS, SEG_HAS_ORIGIN, SEG_ORIGIN, SEG_HAS_INDEX, SEG_INDEX, N_CLOSED, CLOSED_RUNS,
 ) = range(26)  # fmt: skip
N_G = 26
# the collector's float state (``gf``)
EQ_LAST = 0
N_GF = 1
# settings, integers (``p``) and floats (``pf``)
HORIZON, RET_PERIOD, WF_PERIOD, LATENCY, DAY_OFFSET, WARMUP = range(6)
CAPITAL, MULT, SIZE, DEAD_ZONE, FEEDBACK = range(5)
# why ``rows`` stopped
DONE, NEED_RUNS, NEED_CLOSED, NEED_SIGNALS, NEED_ORDERS, NEED_WORDS, BACKWARDS, NO_WORDS = range(8)
# each live curve takes at most this many runs a row; the random baseline at most this many words
RUNS_PER_ROW = 4
WORDS_PER_DECISION = 130  # two for random(), then getrandbits(2) until below 2: 2^-128 to run out


@kernel()
def _resample(cf, ci, rv, rc, c, ts, value, period) -> bool:  # pragma: no cover - compiled
    """``metrics.Resampler.add``; False when time went back."""
    if ci[c, RS_N] < 0:  # the first observation
        origin = ts - ts % NS_PER_DAY
        ci[c, RS_ORIGIN] = origin
        ci[c, RS_BUCKET] = (ts - origin) // period
        ci[c, RS_N] = 0
    bucket = (ts - ci[c, RS_ORIGIN]) // period
    if bucket < ci[c, RS_BUCKET]:
        return False
    if bucket > ci[c, RS_BUCKET]:
        j = ci[c, RS_N]
        rv[c, j] = cf[c, RS_LAST]
        rc[c, j] = bucket - ci[c, RS_BUCKET]
        ci[c, RS_N] = j + 1
        ci[c, RS_BUCKET] = bucket
    cf[c, RS_LAST] = value
    return True


@kernel()
def on_equity(cf, ci, rv, rc, c, ts, equity, holding, period):  # pragma: no cover - compiled
    """``CurveAccumulator.on_equity``: the drawdown, and False when time went back."""
    if not ci[c, ON]:
        ci[c, ON] = 1
        ci[c, START_NS] = ts
        cf[c, FIRST] = equity
    elif ci[c, HOLDING]:
        ci[c, HELD_NS] += ts - ci[c, END_NS]
    ok = _resample(cf, ci, rv, rc, c, ts, equity, period)
    ci[c, END_NS] = ts
    cf[c, LAST] = equity
    ci[c, HOLDING] = holding
    ci[c, N_POINTS] += 1
    if equity > cf[c, PEAK]:  # max(peak, equity)
        cf[c, PEAK] = equity
    dd = equity / cf[c, PEAK] - 1.0
    if dd < cf[c, MAX_DD]:  # min(max_drawdown, dd)
        cf[c, MAX_DD] = dd
    return dd, ok


@kernel()
def fresh_curve(cf, ci, tr, c) -> None:  # pragma: no cover - compiled
    """A ``CurveAccumulator`` as constructed, and no round trips under way."""
    cf[c, :] = 0.0
    cf[c, FIRST] = np.nan
    cf[c, LAST] = np.nan
    cf[c, PEAK] = -np.inf
    cf[c, RS_LAST] = np.nan
    ci[c, :] = 0
    ci[c, RS_N] = -1
    tr[c, :, :] = 0.0


@kernel()
def on_fill(
    cf, ci, tr, c, k, qty, price, fee, ref, realized, after, before, mult
):  # pragma: no cover - compiled
    """``CurveAccumulator.on_fill``."""
    ci[c, N_TRADES] += 1
    cf[c, UNITS] += qty
    cf[c, NOTIONAL] += qty * price * mult
    cf[c, FEES] += fee
    cf[c, SLIPPAGE] += qty * abs(price - ref) * mult
    tr[c, k, 1] += realized - tr[c, k, 0] - fee
    tr[c, k, 0] = realized
    flipped = (after > 0.0) != (before > 0.0)
    if before != 0.0 and (after == 0.0 or flipped):
        ci[c, ROUND_TRIPS] += 1
        ci[c, WINS] += tr[c, k, 1] > 0.0
        tr[c, k, 1] = 0.0


@kernel()
def _route(
    g, p, cf, ci, rv, rc, tr, kf, ki, kseg, koff, kv, kc, ts
) -> int:  # pragma: no cover - compiled
    """``SegmentedCurve._route``: the segment slot, or -1 without walk-forward segments."""
    period = p[WF_PERIOD]
    if period == 0:
        return -1
    if not g[SEG_HAS_ORIGIN]:
        g[SEG_HAS_ORIGIN] = 1
        g[SEG_ORIGIN] = ts - ts % NS_PER_DAY
    index = (ts - g[SEG_ORIGIN]) // period
    had = g[SEG_HAS_INDEX]
    if had and index < g[SEG_INDEX]:
        index = g[SEG_INDEX]  # a late event belongs to the open segment
    if had and index == g[SEG_INDEX]:
        return SEGMENT
    last, holding = cf[SEGMENT, LAST], ci[SEGMENT, HOLDING]
    if had:  # close the open segment: keep its scalars and runs for the report
        s = g[N_CLOSED]
        for j in range(N_CF):  # a slice copy would allocate (the arrays might overlap)
            kf[s, j] = cf[SEGMENT, j]
        for j in range(N_CI):
            ki[s, j] = ci[SEGMENT, j]
        kseg[s] = g[SEG_INDEX]
        koff[s] = g[CLOSED_RUNS]
        for j in range(max(ci[SEGMENT, RS_N], 0)):
            kv[g[CLOSED_RUNS] + j] = rv[SEGMENT, j]
            kc[g[CLOSED_RUNS] + j] = rc[SEGMENT, j]
        g[CLOSED_RUNS] += max(ci[SEGMENT, RS_N], 0)
        g[N_CLOSED] = s + 1
    fresh_curve(cf, ci, tr, SEGMENT)
    g[SEG_HAS_INDEX], g[SEG_INDEX] = 1, index
    if had:  # each segment starts where the previous one ended
        start = g[SEG_ORIGIN] + index * period
        on_equity(cf, ci, rv, rc, SEGMENT, start, last, holding, p[RET_PERIOD])
    return SEGMENT


@kernel()
def _sum_pnl(pnl, order, n) -> float:  # pragma: no cover - compiled
    """``sum(pnl.values())`` in insertion order, as CPython 3.11 adds floats."""
    total = 0.0
    for j in range(n):
        total += pnl[order[j]]
    return total


@kernel()
def _random(words, g) -> float:  # pragma: no cover - compiled
    """``random.Random.random`` from two of its 32-bit outputs."""
    a = words[g[WORD]] >> np.uint32(5)
    b = words[g[WORD] + 1] >> np.uint32(6)
    g[WORD] += 2
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0)


@kernel()
def _below_two(words, g) -> int:  # pragma: no cover - compiled
    """``random.Random._randbelow(2)``: ``getrandbits(2)`` until below 2; -1 when out of words."""
    while g[WORD] < g[N_WORDS]:
        r = words[g[WORD]] >> np.uint32(30)
        g[WORD] += 1
        if r < 2:
            return int(r)
    return -1


@kernel()
def rows(
    clean,
    ts,
    inst,
    ref,
    trade,
    bid,
    ask,
    signal,
    score,
    sprice,
    decision,
    ordered,
    equity,
    f_row,
    f_qty,
    f_price,
    f_fee,
    f_pos,
    f_realized,
    start,
    fill0,
    p,
    pf,
    xcfg,
    g,
    gf,
    cf,
    ci,
    rv,
    rc,
    tr,
    kf,
    ki,
    kseg,
    koff,
    kv,
    kc,
    pos,
    pnl,
    mark,
    has_mark,
    has_pnl,
    pnl_order,
    bpnl,
    bhas,
    border,
    bcount,
    bmark,
    bhas_mark,
    bought,
    x_started,
    x_acct,
    x_ts,
    x_day,
    x_fills,
    o_due,
    o_ts,
    o_buy,
    o_qty,
    o_id,
    o_head,
    o_len,
    s_row,
    s_id,
    s_price,
    s_fee,
    s_qty,
    s_buy,
    s_pos,
    s_cash,
    s_realized,
    s_n,
    q_ts,
    q_px,
    q_sc,
    q_head,
    q_len,
    last_px,
    has_last_px,
    win,
    words,
    e_ts,
    e_val,
    e_dd,
    e_inst,
    e_pos,
    a_ts,
    a_val,
    b_ts,
    b_val,
    counts,
):  # pragma: no cover - compiled
    """``before_decide`` then ``after_decide`` for rows ``start..``; returns the row it stopped
    before (-1 when done), the fill it had reached, and why it stopped."""
    period = p[RET_PERIOD]
    capital, mult = pf[CAPITAL], pf[MULT]
    cap_runs, cap_closed, cap_q, cap_o = rv.shape[1], kf.shape[0], q_ts.shape[1], o_due.shape[1]
    f = fill0
    for i in range(start, ts.size):
        if not clean[i]:
            continue
        k = inst[i]
        # -- room for everything this row may append, before touching anything
        for c in range(N_CURVES):
            if ci[c, RS_N] + RUNS_PER_ROW > cap_runs:
                return i, f, NEED_RUNS
        if p[WF_PERIOD] and (
            g[N_CLOSED] + 2 > cap_closed
            or g[CLOSED_RUNS] + max(ci[SEGMENT, RS_N], 0) + RUNS_PER_ROW > kv.size
        ):
            return i, f, NEED_CLOSED
        if signal[i] and q_len[k] == cap_q:
            return i, f, NEED_SIGNALS
        if decision[i]:
            if o_len[2 * k] == cap_o or o_len[2 * k + 1] == cap_o:
                return i, f, NEED_ORDERS
            if g[N_WORDS] - g[WORD] < WORDS_PER_DECISION:
                return i, f, NEED_WORDS
        t = ts[i]
        if p[WARMUP] and not g[UNTIL_SET]:  # an event-time warm-up runs from the first tick
            g[UNTIL_SET], g[UNTIL] = 1, t + p[WARMUP]
        # -- before_decide: the clock, the baselines' fills and marks, resolved signals
        if g[HAS_LAST_TS] and t < g[LAST_TS]:
            g[LATE] += 1
        else:
            g[LAST_TS], g[HAS_LAST_TS] = t, 1
        now = g[LAST_TS]
        if not g[WARM_SET]:
            g[WARM_TICKS] += 1
        unchanged = bhas_mark[k] and bmark[k] == ref[i]
        bmark[k], bhas_mark[k] = ref[i], True
        for b in range(2):
            x = 2 * k + b
            before = x_acct[x, POSITION]
            s_n[0] = 0
            broker_on_tick(
                x_started, x_acct, x_ts, x_day, x_fills, o_due, o_ts, o_buy, o_qty, o_id,
                o_head, o_len, xcfg, p[DAY_OFFSET], x, t, trade[i], ref[i], bid[i], ask[i],
                s_row, s_id, s_price, s_fee, s_qty, s_buy, s_pos, s_cash, s_realized, s_n, i,
            )  # fmt: skip
            c = BUY_AND_HOLD + b
            for j in range(s_n[0]):
                if g[BL_ON]:
                    on_fill(
                        cf, ci, tr, c, k, s_qty[j], s_price[j], s_fee[j], ref[i],
                        s_realized[j], s_pos[j], before, mult,
                    )  # fmt: skip
                before = s_pos[j]
            if not g[BL_ON] or (unchanged and s_n[0] == 0 and bhas[b, k]):
                continue
            if not bhas[b, k]:
                bhas[b, k] = True
                border[b, bcount[b]] = k
                bcount[b] += 1
            bpnl[b, k] = account_equity(x_acct, x, mult) - capital
            holding = False
            for j in range(bcount[b]):
                if x_acct[2 * border[b, j] + b, POSITION] != 0.0:
                    holding = True
                    break
            eq = capital + _sum_pnl(bpnl[b], border[b], bcount[b])
            if eq != cf[c, LAST] or holding != ci[c, HOLDING]:
                _, ok = on_equity(cf, ci, rv, rc, c, now, eq, holding, period)
                if not ok:
                    return i, f, BACKWARDS
                n_b = counts[2 + b]
                b_ts[b, n_b], b_val[b, n_b] = now, eq
                counts[2 + b] = n_b + 1
        if has_last_px[k]:
            while q_len[k] > 0 and q_ts[k, q_head[k]] + p[HORIZON] < t:
                h = q_head[k]
                ts0, entry, sc = q_ts[k, h], q_px[k, h], q_sc[k, h]
                q_head[k] = (h + 1) % cap_q
                q_len[k] -= 1
                sign = direction_nb(forward_bps_nb(entry, last_px[k]), pf[DEAD_ZONE])
                if sign == 0 or not g[WARM_SET] or ts0 < g[WARM_END]:
                    continue
                up = sign > 0
                correct = (sc > 0.5) == up
                pr = min(max(sc, 1e-15), 1.0 - 1e-15)
                loss = -math.log(pr if up else 1.0 - pr)
                seg = _route(g, p, cf, ci, rv, rc, tr, kf, ki, kseg, koff, kv, kc, t)
                for c in (seg, WHOLE):
                    if c >= 0:
                        ci[c, OUTCOMES] += 1
                        ci[c, CORRECT] += correct
                        cf[c, LOG_LOSS] += loss
                w = win.size
                if g[WIN_LEN] == w:
                    g[WIN_CORRECT] -= win[g[WIN_HEAD]]
                    win[g[WIN_HEAD]] = correct
                    g[WIN_HEAD] = (g[WIN_HEAD] + 1) % w
                else:
                    win[(g[WIN_HEAD] + g[WIN_LEN]) % w] = correct
                    g[WIN_LEN] += 1
                g[WIN_CORRECT] += correct
                n_a = counts[1]
                a_ts[n_a], a_val[n_a] = t, g[WIN_CORRECT] / g[WIN_LEN]
                counts[1] = n_a + 1
        last_px[k], has_last_px[k] = ref[i], True
        # -- after_decide: warm-up, the row's fills, its signal and decision, the equity
        if decision[i] and not g[WARM_SET] and (not g[UNTIL_SET] or t >= g[UNTIL]):
            g[WARM_SET], g[WARM_END] = 1, t
        started = g[WARM_SET]
        n_fills = 0
        while f < f_row.size and f_row[f] == i:
            before = pos[k]
            pos[k] = f_pos[f]
            if started:
                seg = _route(g, p, cf, ci, rv, rc, tr, kf, ki, kseg, koff, kv, kc, t)
                for c in (seg, WHOLE):
                    if c >= 0:
                        on_fill(
                            cf, ci, tr, c, k, f_qty[f], f_price[f], f_fee[f], ref[i],
                            f_realized[f], f_pos[f], before, mult,
                        )  # fmt: skip
            f += 1
            n_fills += 1
        if signal[i]:
            tail = (q_head[k] + q_len[k]) % cap_q
            q_ts[k, tail], q_px[k, tail], q_sc[k, tail] = t, sprice[i], score[i]
            q_len[k] += 1
        if decision[i] and started:
            if not g[BL_ON]:  # the baselines' curves start with the model's, flat
                g[BL_ON] = 1
                for c in (BUY_AND_HOLD, RANDOM):
                    on_equity(cf, ci, rv, rc, c, t, capital, False, period)
            if not bought[k]:
                bought[k] = True
                x = 2 * k
                held = x_acct[x, POSITION] + pending_quantity(o_buy, o_qty, o_head, o_len, x)
                delta = pf[SIZE] - held
                if abs(delta) > 0.0:
                    submit(
                        x_started, x_acct, xcfg, o_due, o_ts, o_buy, o_qty, o_id, o_head, o_len,
                        x, t, p[LATENCY], delta > 0, abs(delta), 0,
                    )  # fmt: skip
            g[BL_DECISIONS] += 1
            g[BL_MODEL] += ordered[i]
            gap = g[BL_MODEL] - g[BL_RANDOM]
            rate = g[BL_MODEL] / g[BL_DECISIONS] + gap / pf[FEEDBACK]
            if _random(words, g) < rate:
                g[BL_RANDOM] += 1
                x = 2 * k + 1
                held = x_acct[x, POSITION] + pending_quantity(o_buy, o_qty, o_head, o_len, x)
                if held:
                    target = -held
                else:
                    pick = _below_two(words, g)
                    if pick < 0:
                        return i, f, NO_WORDS
                    target = pf[SIZE] if pick == 0 else -pf[SIZE]
                delta = target - held
                if abs(delta) > 0.0:
                    submit(
                        x_started, x_acct, xcfg, o_due, o_ts, o_buy, o_qty, o_id, o_head, o_len,
                        x, t, p[LATENCY], delta > 0, abs(delta), 0,
                    )  # fmt: skip
        if not started:
            continue
        if n_fills == 0 and has_mark[k] and mark[k] == ref[i] and has_pnl[k]:
            continue  # neither a fill nor a new mark: the account cannot have changed
        mark[k], has_mark[k] = ref[i], True
        if not has_pnl[k]:
            has_pnl[k] = True
            pnl_order[g[N_PNL]] = k
            g[N_PNL] += 1
        pnl[k] = equity[i] - capital
        eq = capital + _sum_pnl(pnl, pnl_order, g[N_PNL])
        holding = False
        for j in range(pos.size):
            if pos[j] != 0.0:
                holding = True
                break
        if g[HAS_EQ] and gf[EQ_LAST] == eq and g[EQ_HOLDING] == holding:
            continue
        if not point(
            g,
            gf,
            p,
            cf,
            ci,
            rv,
            rc,
            tr,
            kf,
            ki,
            kseg,
            koff,
            kv,
            kc,
            now,
            eq,
            holding,
            e_ts,
            e_val,
            e_dd,
            counts,
        ):
            return i, f, BACKWARDS
        n_e = counts[0] - 1
        e_inst[n_e], e_pos[n_e] = k, pos[k]
    return -1, f, DONE


@kernel()
def point(
    g,
    gf,
    p,
    cf,
    ci,
    rv,
    rc,
    tr,
    kf,
    ki,
    kseg,
    koff,
    kv,
    kc,
    now,
    eq,
    holding,
    e_ts,
    e_val,
    e_dd,
    counts,
) -> bool:  # pragma: no cover - compiled
    """``BacktestCollector._point``: one row of equity.csv, the curves and the plots."""
    g[HAS_EQ], gf[EQ_LAST], g[EQ_HOLDING] = 1, eq, holding
    seg = _route(g, p, cf, ci, rv, rc, tr, kf, ki, kseg, koff, kv, kc, now)
    if seg >= 0:
        _, ok = on_equity(cf, ci, rv, rc, seg, now, eq, holding, p[RET_PERIOD])
        if not ok:
            return False
    dd, ok = on_equity(cf, ci, rv, rc, WHOLE, now, eq, holding, p[RET_PERIOD])
    n_e = counts[0]
    e_ts[n_e], e_val[n_e], e_dd[n_e] = now, eq, dd
    counts[0] = n_e + 1
    return ok


@kernel()
def finish(
    g, gf, p, cf, ci, rv, rc, tr, kf, ki, kseg, koff, kv, kc, e_ts, e_val, e_dd, e_inst, counts
) -> bool:  # pragma: no cover - compiled
    """``BacktestCollector.finish``: every curve carried to the last tick's event time."""
    if not g[HAS_LAST_TS]:
        return True
    last = g[LAST_TS]
    for c in (BUY_AND_HOLD, RANDOM):
        if ci[c, ON] and ci[c, END_NS] < last:
            _, ok = on_equity(cf, ci, rv, rc, c, last, cf[c, LAST], ci[c, HOLDING], p[RET_PERIOD])
            if not ok:
                return False
    if not g[HAS_EQ] or not ci[WHOLE, ON] or ci[WHOLE, END_NS] == last:
        return True
    holding = g[EQ_HOLDING] != 0
    ok = point(
        g,
        gf,
        p,
        cf,
        ci,
        rv,
        rc,
        tr,
        kf,
        ki,
        kseg,
        koff,
        kv,
        kc,
        last,
        gf[EQ_LAST],
        holding,
        e_ts,
        e_val,
        e_dd,
        counts,
    )
    e_inst[counts[0] - 1] = -1
    return ok

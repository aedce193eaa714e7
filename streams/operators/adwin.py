"""ADWIN, the adaptive-window change detector (Bifet and Gavaldà, 2007), as river computes it.

The monitor feeds it one mean error per block of event time (``streams.operators.monitor``).
It gives river's ``drift.ADWIN`` answers bit for bit: the same detections at the same inputs
and the same ``width``, ``total``, ``variance`` and ``estimation`` after each, which an oracle
test holds over random streams. It is ours because importing ``river.drift`` runs its package,
which loads scipy's statistics for another detector: most of a second before a backtest's
first tick, for a detector that takes a few hundred operations a block.

The window is river's exponential histogram: row ``r`` of ``totals`` and ``variances`` holds up
to ``max_buckets + 1`` buckets of ``2 ** r`` inputs each (their sum and their sum of squared
deviations), newest last; a row that fills merges its two oldest buckets into one of the next
row. Every ``clock`` inputs past ``grace_period``, each split of the window between buckets is
tested, oldest first, and while one differs by more than the Hoeffding-style bound at
confidence ``delta`` the oldest bucket is dropped. The arithmetic keeps river's order of
operations, which is what makes the floats equal.

A window's state is five arrays (``AdwinArrays``), and several windows stack into one set of
them, a window a row: the engine's monitor keeps one per instrument and model and feeds the
blocks a pass closed in one compiled call (``adwin_feed_many``), where ``Adwin`` is one
window for a caller that feeds it a value at a time. Both apply the monitor's drift rule
(``adwin_feed``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

ROWS = 64  # rows of 2 ** r inputs: more than any window can reach
# The state's scalars: floats in ``f``, integers in ``i`` (``I_DRIFT``: the last input
# revealed a change, so the next starts afresh).
F_DELTA, F_MIN_LENGTH, F_GRACE, F_TOTAL, F_VARIANCE, F_WIDTH, F_TOTAL_WIDTH = range(7)
I_CLOCK, I_MAX_BUCKETS, I_N_BUCKETS, I_MAX_N_BUCKETS, I_TICK, I_DETECTIONS, I_ROWS = range(7)
I_DRIFT = 7
N_F, N_I = 7, 8


class AdwinArrays(NamedTuple):
    """The states of ``n`` windows, a window a row: its scalars, and its histogram's rows
    of buckets (sums, sums of squared deviations, buckets held)."""

    f: np.ndarray  # float64 [n, N_F]
    i: np.ndarray  # int64 [n, N_I]
    totals: np.ndarray  # float64 [n, ROWS, max_buckets + 1]
    variances: np.ndarray  # float64 [n, ROWS, max_buckets + 1]
    fill: np.ndarray  # int64 [n, ROWS]


def adwin_arrays(
    n: int,
    delta: float = 0.002,
    clock: int = 32,
    max_buckets: int = 5,
    min_window_length: int = 5,
    grace_period: int = 10,
) -> AdwinArrays:
    """``n`` empty windows with river's parameters (its defaults)."""
    f = np.zeros((n, N_F))
    f[:, F_DELTA], f[:, F_MIN_LENGTH], f[:, F_GRACE] = delta, min_window_length, grace_period
    i = np.zeros((n, N_I), np.int64)
    i[:, I_CLOCK], i[:, I_MAX_BUCKETS], i[:, I_ROWS] = clock, max_buckets, 1
    buckets = (n, ROWS, max_buckets + 1)
    return AdwinArrays(f, i, np.zeros(buckets), np.zeros(buckets), np.zeros((n, ROWS), np.int64))


@njit(cache=True)
def _drop_oldest(totals, variances, fill, r, n) -> None:  # pragma: no cover - compiled
    """Remove the ``n`` oldest buckets of row ``r``, the rest moving to its front."""
    kept = fill[r] - n
    for j in range(kept):
        totals[r, j] = totals[r, j + n]
        variances[r, j] = variances[r, j + n]
    for j in range(kept, fill[r]):
        totals[r, j] = 0.0
        variances[r, j] = 0.0
    fill[r] = kept


@njit(cache=True)
def _append(totals, variances, fill, r, total, variance) -> None:  # pragma: no cover
    """A bucket at the newest end of row ``r``."""
    totals[r, fill[r]] = total
    variances[r, fill[r]] = variance
    fill[r] += 1


@njit(cache=True)
def _insert(f, i, totals, variances, fill, x) -> None:  # pragma: no cover - compiled
    """One input as a bucket of row 0, the window's sums moved, full rows merged upwards."""
    _append(totals, variances, fill, 0, x, 0.0)
    i[I_N_BUCKETS] += 1
    i[I_MAX_N_BUCKETS] = max(i[I_MAX_N_BUCKETS], i[I_N_BUCKETS])
    f[F_WIDTH] += 1.0
    width = f[F_WIDTH]
    step = 0.0
    if width > 1.0:
        d = x - f[F_TOTAL] / (width - 1.0)
        step = (width - 1.0) * d * d / width
    f[F_VARIANCE] += step
    f[F_TOTAL] += x
    full = i[I_MAX_BUCKETS] + 1
    r = 0
    while fill[r] == full:
        size = float(1 << r)
        t0, t1 = totals[r, 0], totals[r, 1]
        mu0, mu1 = t0 / size, t1 / size
        merged = variances[r, 0] + variances[r, 1] + size * 0.5 * (mu0 - mu1) * (mu0 - mu1)
        if r + 1 >= i[I_ROWS]:
            i[I_ROWS] = r + 2
        _append(totals, variances, fill, r + 1, t0 + t1, merged)
        i[I_N_BUCKETS] += 1
        _drop_oldest(totals, variances, fill, r, 2)
        if fill[r + 1] < full:
            break
        r += 1


@njit(cache=True)
def _delete_oldest(f, i, totals, variances, fill) -> None:  # pragma: no cover - compiled
    """Drop the window's oldest bucket and take its inputs out of the window's sums."""
    last = i[I_ROWS] - 1
    size = float(1 << last)
    u, v = totals[last, 0], variances[last, 0]
    mu = u / size
    f[F_WIDTH] -= size
    f[F_TOTAL] -= u
    width = f[F_WIDTH]
    mu_window = f[F_TOTAL] / width
    f[F_VARIANCE] -= v + size * width * (mu - mu_window) * (mu - mu_window) / (size + width)
    _drop_oldest(totals, variances, fill, last, 1)
    i[I_N_BUCKETS] -= 1
    if fill[last] == 0:
        i[I_ROWS] = last


@njit(cache=True)
def _cut(f, n0, n1, gap) -> bool:  # pragma: no cover - compiled
    """Whether two sub-windows of ``n0`` and ``n1`` inputs whose means differ by ``gap``
    differ by more than the bound at confidence ``delta``."""
    width, min_length = f[F_WIDTH], f[F_MIN_LENGTH]
    delta_prime = math.log(2.0 * math.log(width) / f[F_DELTA])
    m_recip = 1.0 / (n0 - min_length + 1.0) + 1.0 / (n1 - min_length + 1.0)
    epsilon = (
        math.sqrt(2.0 * m_recip * (f[F_VARIANCE] / width) * delta_prime)
        + 2.0 / 3.0 * delta_prime * m_recip
    )
    return abs(gap) > epsilon


@njit(cache=True)
def _shrink_once(f, i, totals, variances, fill) -> bool:  # pragma: no cover - compiled
    """Test the window's splits, oldest first; at the first that differs, drop the oldest
    bucket and return True (the window is tested again); False when none does."""
    n0, n1, u0, u1 = 0.0, f[F_WIDTH], 0.0, f[F_TOTAL]
    min_length = f[F_MIN_LENGTH]
    found = False
    for r in range(i[I_ROWS] - 1, -1, -1):
        size = float(1 << r)
        for k in range(fill[r]):
            n0 += size
            n1 -= size
            u0 += totals[r, k]
            u1 -= totals[r, k]
            if r == 0 and k == fill[r] - 1:
                return found  # the newest bucket: no split after it
            gap = (u0 / n0) - (u1 / n1)
            if n1 >= min_length and n0 >= min_length and _cut(f, n0, n1, gap):
                found = True
                if f[F_WIDTH] > 0.0:
                    _delete_oldest(f, i, totals, variances, fill)
                    return True
    return found


@njit(cache=True)
def _restart(f, i, totals, variances, fill) -> None:  # pragma: no cover - compiled
    """Empty the window, its parameters kept (river's ``_reset``)."""
    f[F_TOTAL], f[F_VARIANCE], f[F_WIDTH], f[F_TOTAL_WIDTH] = 0.0, 0.0, 0.0, 0.0
    i[I_N_BUCKETS], i[I_MAX_N_BUCKETS], i[I_TICK], i[I_DETECTIONS] = 0, 0, 0, 0
    i[I_ROWS], i[I_DRIFT] = 1, 0
    for r in range(fill.shape[0]):
        fill[r] = 0
        for j in range(totals.shape[1]):
            totals[r, j] = 0.0
            variances[r, j] = 0.0


@njit(cache=True)
def adwin_update(f, i, totals, variances, fill, x) -> bool:  # pragma: no cover - compiled
    """One input into the window; whether a change was detected (the window then cut). The
    input after a detection starts afresh, as river's does."""
    if i[I_DRIFT]:
        _restart(f, i, totals, variances, fill)
    _insert(f, i, totals, variances, fill, x)
    i[I_TICK] += 1
    detected = False
    if i[I_TICK] % i[I_CLOCK] == 0 and f[F_WIDTH] > f[F_GRACE]:
        while _shrink_once(f, i, totals, variances, fill):
            detected = True
    f[F_TOTAL_WIDTH] += f[F_WIDTH]
    if detected:
        i[I_DETECTIONS] += 1
    i[I_DRIFT] = 1 if detected else 0
    return detected


@njit(cache=True)
def adwin_feed(f, i, totals, variances, fill, x, min_increase):  # pragma: no cover - compiled
    """One block's mean error into the window: (alarm, error rate before, error rate now);
    the drift rule both monitors apply (``operators.monitor``, ``engine.monitor``).

    An alarm needs a detected change that cut old inputs and an error rate that went up by
    ``min_increase``; "before" is the mean of the inputs ADWIN cut (a window started afresh
    after the last detection counts as cut).
    """
    width, window_sum = f[F_WIDTH], f[F_TOTAL]
    total = (0.0 if width == 0 else window_sum / width) * width
    detected = adwin_update(f, i, totals, variances, fill, x)
    now_width, now_sum = f[F_WIDTH], f[F_TOTAL]
    now = 0.0 if now_width == 0 else now_sum / now_width
    dropped = width + 1 - now_width  # ADWIN cut this many of its oldest inputs
    old = (total + x - now * now_width) / dropped if dropped > 0 else x
    fire = detected and dropped > 0 and now - old >= min_increase
    return fire, old, now


@njit(cache=True, nogil=True)  # the engine's monitor calls it: a replay's other threads go on
def adwin_feed_many(
    windows, xs, f, i, totals, variances, fill, min_increase, fire, old, now
) -> int:  # pragma: no cover - compiled
    """``xs[q]`` into window ``windows[q]`` of the stacked arrays, in order, by
    ``adwin_feed``, up to the first that alarms; its place in ``xs``, or -1. Each input fed
    leaves its answer in ``fire`` (1.0 or 0.0), ``old`` and ``now`` at its place."""
    for q in range(xs.size):
        p = windows[q]
        alarm, before, after = adwin_feed(
            f[p], i[p], totals[p], variances[p], fill[p], xs[q], min_increase
        )
        fire[q], old[q], now[q] = 1.0 if alarm else 0.0, before, after
        if alarm:
            return q
    return -1


class Adwin:
    """river's ``drift.ADWIN``: its parameters, its answers, its reset after a detection.

    Examples
    --------
    >>> adwin = Adwin(clock=1)
    >>> alarms = [i for i, x in enumerate([0.0] * 60 + [1.0] * 60) if adwin.update(x)]
    >>> alarms[0], adwin.estimation
    (78, 1.0)
    """

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        stack = adwin_arrays(1, delta, clock, max_buckets, min_window_length, grace_period)
        self._state = tuple(a[0] for a in stack)

    @classmethod
    def of(cls, stack: AdwinArrays, p: int) -> Adwin:
        """Window ``p`` of ``stack``, read and fed in place."""
        adwin = cls.__new__(cls)
        adwin._state = tuple(a[p] for a in stack)
        return adwin

    def update(self, x: float) -> bool:
        """Add ``x``; whether it revealed a change. The input after a change starts afresh,
        as river's does."""
        return bool(adwin_update(*self._state, float(x)))

    @property
    def drift_detected(self) -> bool:
        """Whether the last input revealed a change."""
        return bool(self._state[1][I_DRIFT])

    @property
    def width(self) -> float:
        """Inputs in the window."""
        return float(self._state[0][F_WIDTH])

    @property
    def total(self) -> float:
        """Sum of the window's inputs."""
        return float(self._state[0][F_TOTAL])

    @property
    def variance(self) -> float:
        """Sum of the window's squared deviations from its mean (river's ``variance``)."""
        return float(self._state[0][F_VARIANCE])

    @property
    def n_detections(self) -> int:
        """Changes detected since the last reset."""
        return int(self._state[1][I_DETECTIONS])

    @property
    def estimation(self) -> float:
        """Mean of the window's inputs (0 when empty)."""
        width = self.width
        return 0.0 if width == 0 else self.total / width


def feed_adwin(adwin: Adwin, x: float, min_increase: float) -> tuple[bool, float, float]:
    """One block's mean error into ``adwin`` by ``adwin_feed``: (alarm, error rate before,
    error rate now)."""
    fire, old, now = adwin_feed(*adwin._state, float(x), float(min_increase))
    return bool(fire), old, now

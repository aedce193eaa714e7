"""Compiled online linear learners that take the same steps as river's, over plain arrays.

Two models, each river's pipeline ``preprocessing.StandardScaler() | linear_model.X`` step for
step, with an optional clip of the standardised inputs in between (the zoo's ``clip_z``):

* ``LOG``: ``LogisticRegression`` (log loss, the score is the sigmoid of the raw sum);
* ``SQUARED``: ``LinearRegression`` (squared loss, the score is the raw sum).

Both learn by river's plain SGD: the intercept moves by ``intercept_lr`` times the clipped loss
gradient, then each weight of a feature present in the row by ``learning_rate`` times its
gradient (input times loss gradient, plus ``l2`` times the weight when ``l2`` is not 0). The
scaler learns a row before it is transformed for learning (river's pipeline order), with
Welford's running mean and population variance, and a feature whose variance is 0 scales to 0.

State is arrays with one row per model (an instrument, a model version, or both), so a batch of
rows for many models runs in one call. ``m`` is the model's row; ``F`` features in a fixed order:

* ``hyper`` float64 ``(M, N_HYPER)``: the columns ``LOSS`` (``LOG`` or ``SQUARED``), ``LR``,
  ``INTERCEPT_LR``, ``L2``, ``CLIP_GRADIENT`` and ``Z_CLIP`` (``inf``: no clip);
* ``weights``, ``means``, ``variances`` float64 ``(M, F)``; ``counts`` int64 ``(M, F)``;
* ``intercept`` float64 ``(M,)``.

A feature value of NaN means "absent from this row", as a key missing from river's dict: the
scaler does not count it and its weight does not move (no L2 either).

Examples
--------
>>> import numpy as np
>>> st = new_state(1, 2, LOG, learning_rate=0.1)
>>> x = np.array([1.0, 2.0])
>>> predict_one(*st.predictor(), 0, x)     # nothing learned: P(up) = 0.5
0.5
>>> learn_one(*st.learner(), 0, x, 1.0)
>>> float(st.intercept[0])                  # moved by intercept_lr (0.01) x the log gradient
0.005
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

LOG = 0.0  # LogisticRegression: log loss, sigmoid mean
SQUARED = 1.0  # LinearRegression: squared loss, identity mean
LOSS, LR, INTERCEPT_LR, L2, CLIP_GRADIENT, Z_CLIP = range(6)
N_HYPER = 6


class LinearState(NamedTuple):
    """The arrays of ``M`` models over ``F`` features (see the module docstring)."""

    hyper: np.ndarray
    weights: np.ndarray
    intercept: np.ndarray
    counts: np.ndarray
    means: np.ndarray
    variances: np.ndarray

    def predictor(self) -> tuple[np.ndarray, ...]:
        """The arguments ``predict_one`` and ``transform_one`` take before ``m``."""
        return self.hyper, self.weights, self.intercept, self.means, self.variances

    def learner(self) -> tuple[np.ndarray, ...]:
        """The arguments ``learn_one`` and ``predict_learn`` take before the rows."""
        return self.hyper, self.weights, self.intercept, self.counts, self.means, self.variances


def new_state(
    n_models: int,
    n_features: int,
    loss: float,
    *,
    learning_rate: float = 0.01,
    l2: float = 0.0,
    intercept_lr: float = 0.01,
    intercept_init: float = 0.0,
    clip_gradient: float = 1e12,
    z_clip: float = math.inf,
) -> LinearState:
    """Fresh state for ``n_models`` models; the defaults are river's."""
    hyper = np.empty((n_models, N_HYPER))
    hyper[:, LOSS] = loss
    hyper[:, LR] = learning_rate
    hyper[:, INTERCEPT_LR] = intercept_lr
    hyper[:, L2] = l2
    hyper[:, CLIP_GRADIENT] = clip_gradient
    hyper[:, Z_CLIP] = z_clip
    shape = (n_models, n_features)
    return LinearState(
        hyper,
        np.zeros(shape),
        np.full(n_models, float(intercept_init)),
        np.zeros(shape, dtype=np.int64),
        np.zeros(shape),
        np.zeros(shape),
    )


def widen(state: LinearState, n_features: int) -> LinearState:
    """``state`` over ``n_features`` features: new features (last) start unseen, weight 0."""
    extra = n_features - state.weights.shape[1]
    if extra <= 0:
        return state
    pad = ((0, 0), (0, extra))
    return LinearState(
        state.hyper,
        np.pad(state.weights, pad),
        state.intercept,
        np.pad(state.counts, pad),
        np.pad(state.means, pad),
        np.pad(state.variances, pad),
    )


@intrinsic
def _libm_pow(typingctx, x, y):  # type: ignore[no-untyped-def]
    """The C library's ``pow``, as Python's ``v ** 0.5`` calls it.

    LLVM rewrites ``pow(v, 0.5)`` into ``sqrt(v)``, correctly rounded, while glibc's ``pow``
    is not: the two differ in the last bit for about one value in 1,200, and river scales by
    ``v ** 0.5``. Declared as a plain external call, LLVM leaves it alone.
    """
    sig = types.float64(types.float64, types.float64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fnty = ir.FunctionType(ir.DoubleType(), [ir.DoubleType(), ir.DoubleType()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "pow")
        return builder.call(fn, args)

    return sig, codegen


@njit(cache=True)
def _check(weights: np.ndarray, x: np.ndarray) -> None:
    """The arrays are read unchecked: a row wider than the state would read past its end."""
    if x.shape[0] != weights.shape[1]:
        raise ValueError("the row and the state have different numbers of features")


@njit(cache=True)
def _scaled(x: float, mean: float, sd: float, z_clip: float) -> float:
    """One standardised, clipped input given its scale ``sd`` (``var ** 0.5``, which is 0 exactly
    when ``var`` is, and NaN when it is negative or NaN): ``_z`` with the power taken."""
    z = (x - mean) / sd if sd != 0.0 else 0.0
    return max(-z_clip, min(z_clip, z))


@njit(cache=True)
def _z(x: float, mean: float, var: float, z_clip: float) -> float:
    """One standardised, clipped input (river: ``(x - mean) / var ** 0.5 if var else 0.0``)."""
    return _scaled(x, mean, _libm_pow(var, 0.5), z_clip)


@njit(cache=True)
def _mean(hyper: np.ndarray, intercept: np.ndarray, m: int, dot: float) -> float:
    """The score of a weighted sum of inputs: the link of model ``m``'s loss."""
    raw = dot + intercept[m]
    return _sigmoid(raw) if hyper[m, LOSS] == LOG else raw


@njit(cache=True)
def _sigmoid(raw: float) -> float:
    if raw < -30.0:
        return 0.0
    if raw > 30.0:
        return 1.0
    return 1.0 / (1.0 + math.exp(-raw))


@njit(cache=True)
def _loss_gradient(loss: float, y: float, raw: float) -> float:
    """d loss / d raw, as river's ``Log.gradient`` (labels 0/1) or ``Squared.gradient``."""
    if loss == SQUARED:
        return 2.0 * (raw - y)
    sign = -1.0 if y == 0.0 else 1.0
    z = raw * sign
    if z > 18.0:
        return math.exp(-z) * -sign
    if z < -18.0:
        return -sign
    return -sign / (math.exp(z) + 1.0)


@njit(cache=True)
def transform_one(
    hyper: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    m: int,
    x: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write the inputs model ``m`` sees for ``x`` into ``out`` (NaN where ``x`` is absent)."""
    _check(weights, x)
    z_clip = hyper[m, Z_CLIP]
    for j in range(x.shape[0]):
        if math.isnan(x[j]):
            out[j] = np.nan
        else:
            out[j] = _z(x[j], means[m, j], variances[m, j], z_clip)


@njit(cache=True)
def predict_one(
    hyper: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    m: int,
    x: np.ndarray,
) -> float:
    """Model ``m``'s score for ``x``: P(y = 1) under ``LOG``, the forecast under ``SQUARED``."""
    _check(weights, x)
    z_clip = hyper[m, Z_CLIP]
    dot = 0.0
    for j in range(x.shape[0]):
        if not math.isnan(x[j]):
            dot += weights[m, j] * _z(x[j], means[m, j], variances[m, j], z_clip)
    return _mean(hyper, intercept, m, dot)


@njit(cache=True)
def score_scaled(
    hyper: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    means: np.ndarray,
    sd: np.ndarray,
    m: int,
    x: np.ndarray,
    z: np.ndarray,
) -> float:
    """``transform_one`` into ``z`` and ``predict_one``'s score in one pass, from the inputs'
    scales ``sd`` (``variances[m] ** 0.5``, as ``_learn`` leaves them): the power, the costly
    part, is taken once per learned input instead of twice more per scored row."""
    _check(weights, x)
    z_clip = hyper[m, Z_CLIP]
    dot = 0.0
    for j in range(x.shape[0]):
        if math.isnan(x[j]):
            z[j] = np.nan
        else:
            z[j] = _scaled(x[j], means[m, j], sd[j], z_clip)
            dot += weights[m, j] * z[j]
    return _mean(hyper, intercept, m, dot)


@njit(cache=True)
def _learn(
    hyper: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    counts: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    m: int,
    x: np.ndarray,
    y: float,
    z: np.ndarray,
    sd: np.ndarray,
) -> None:
    """Teach model ``m`` the row; ``z`` and ``sd``: scratch, left holding the standardised
    inputs and their scales (``variances[m] ** 0.5`` after the scaler learned) where ``x`` is
    present."""
    n = x.shape[0]
    for j in range(n):  # the scaler learns first, then transforms (river's pipeline)
        if math.isnan(x[j]):
            continue
        counts[m, j] += 1
        old = means[m, j]
        means[m, j] = old + (x[j] - old) / counts[m, j]
        variances[m, j] += ((x[j] - old) * (x[j] - means[m, j]) - variances[m, j]) / counts[m, j]
    z_clip = hyper[m, Z_CLIP]
    dot = 0.0
    for j in range(n):
        if not math.isnan(x[j]):
            sd[j] = _libm_pow(variances[m, j], 0.5)
            z[j] = _scaled(x[j], means[m, j], sd[j], z_clip)
            dot += weights[m, j] * z[j]
    clip = hyper[m, CLIP_GRADIENT]
    g = max(min(_loss_gradient(hyper[m, LOSS], y, dot + intercept[m]), clip), -clip)
    intercept[m] -= hyper[m, INTERCEPT_LR] * g
    lr = hyper[m, LR]
    l2 = hyper[m, L2]
    for j in range(n):
        if math.isnan(x[j]):
            continue
        gj = z[j] * g
        if l2 != 0.0:
            gj += l2 * weights[m, j]
        weights[m, j] -= lr * gj


@njit(cache=True)
def learn_one(
    hyper: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    counts: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    m: int,
    x: np.ndarray,
    y: float,
) -> None:
    """Teach model ``m`` that ``x`` had outcome ``y`` (0 or 1 under ``LOG``)."""
    _check(weights, x)
    z, sd = np.empty(x.shape[0]), np.empty(x.shape[0])
    _learn(hyper, weights, intercept, counts, means, variances, m, x, y, z, sd)


@njit(cache=True)
def predict_learn(
    hyper: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    counts: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    model: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    predict: np.ndarray,
    learn: np.ndarray,
    out: np.ndarray,
) -> None:
    """Run a batch of rows in stream order: a row first scores ``X[i]`` into ``out[i]`` when
    ``predict[i]`` (NaN otherwise), then learns ``(X[i], y[i])`` when ``learn[i]``; ``model[i]``
    is the row's model. The same as ``predict_one``/``learn_one`` called row by row."""
    if X.shape[1] != weights.shape[1]:
        raise ValueError("the batch and the state have different numbers of features")
    z, sd = np.empty(X.shape[1]), np.empty(X.shape[1])
    for i in range(X.shape[0]):
        m = model[i]
        if predict[i]:
            out[i] = predict_one(hyper, weights, intercept, means, variances, m, X[i])
        else:
            out[i] = np.nan
        if learn[i]:
            _learn(hyper, weights, intercept, counts, means, variances, m, X[i], y[i], z, sd)

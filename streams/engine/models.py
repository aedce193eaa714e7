"""Delayed labels and the compiled linear learner over a batch: the model stage as a kernel.

For every clean row in order, as ``ModelStage`` does tick by tick: the labels whose horizon
ended strictly before the row's event time mature (the outcome rule of
``streams.operators.labels``, at the last price before the row) and teach the instrument's
model; then a row that carries a feature vector is scored, its raw feature means move (the
explanation's baseline) and it joins the label queue, and any row's price becomes the latest.
Labels never see a price after their horizon, so nothing looks ahead.

Each matured label also moves the typical absolute move over the horizon (the decision rule's
``MoveEstimate``), and each score keeps what its explanation (``explain_linear``'s top terms of
weight times standardised input) is made of, both as the per-tick stage has them at that
score; the terms are ranked only for the rows rendered (``ModelColumns.explanation``).
Each label learned is first scored against the prediction kept with it in the queue, as
``Prequential`` does (``streams.engine.prequential``): ``metrics`` reports what
``ModelStage.metrics`` reports.

One model version per instrument (the configured one, a row of the learner's arrays each);
the engine hands the stage over to ``streams.engine.staged.StagedModel``, state and all, when
a command deploys another version (shadow, canary, rollback stacks). The label queue
of an instrument is a ring that doubles when a horizon holds more rows than it has room for,
and so is its prequential window (when the labels that may mature at a row would not fit):
the kernel stops before the row that needs room and resumes there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tickwise.schemas.decisions import ControlCommand, Signal, Stage
from tickwise.streams.config import DecisionConfig, EvaluationConfig, LabelConfig, ModelConfig
from tickwise.streams.engine import prequential
from tickwise.streams.engine.batch import SymbolTable, TickBatch
from tickwise.streams.engine.jit import kernel
from tickwise.streams.engine.prequential import N_COUNTS, score_label
from tickwise.streams.operators.labels import (
    NO_DIRECTION,
    UP,
    direction_nb,
    forward_bps_nb,
    horizon_ns,
)
from tickwise.streams.operators.models.linear_kernel import (
    LOG,
    SQUARED,
    LinearState,
    _libm_pow,
    new_state,
    score_scaled,
)
from tickwise.streams.operators.models.linear_kernel import _learn as learn_row
from tickwise.streams.operators.models.shared import Z_CLIP, version_key

START_CAPACITY = 64
NO_TIME = np.iinfo(np.int64).min


@dataclass(slots=True)
class ModelColumns:
    """What the stage says about the rows that carry a vector, in row order: the signal that
    goes to risk (``routed``) and what the decide kernel reads of it."""

    score: np.ndarray  # P(up) for classification, the forecast in bps for regression
    n_trained: np.ndarray  # int64 labels learned before the score
    n_dead_zone: np.ndarray  # int64 labels in the dead zone so far (not learned)
    move_bps: np.ndarray  # typical |forward return| over the horizon at the score, NaN before one
    # what the explanation is made of, as it stood at the score (the weights move after it):
    # per feature, the standardised input and the weight in effect (0.0 before the model
    # learned the feature); ``explanation`` ranks their products for the rows that ask
    explain_inputs: np.ndarray  # [vector, n_features]
    explain_weights: np.ndarray  # [vector, n_features]
    routed: np.ndarray  # bool: a signal goes to risk (the model is warm; a version routes)
    band: np.ndarray  # the routed version's threshold (P(up) - 0.5, or bps for regression)
    fraction: np.ndarray  # the capital fraction it trades (a canary's; 1.0 otherwise)
    slot: np.ndarray  # int64: its model id's slot in the engine's table of model ids
    version: np.ndarray  # int64: its version number
    explain_rank: np.ndarray  # int64 [n_features]: each feature's place by name (breaks ties)
    explain_top: int  # how many terms an explanation names (0: the columns carry none)
    # ``StagedModel`` only (``streams.engine.staged``), per row with a vector: every signal,
    # shadow ones included, and the one routed (None: none); the compiled kernel's signals are
    # rendered from the columns above
    signals: list[tuple[Signal, ...]] | None = None
    routed_signals: list[Signal | None] | None = None
    details: dict[tuple[str, str], str] | None = None  # (command id, instrument): what it did
    # rows where river's stage raised (row, what it raised): no signal there, the tick
    # quarantined as OPERATOR_ERROR, the stream goes on
    errors: list[tuple[int, str]] | None = None

    def explanation(self, vec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The top terms of the vectors ``vec`` (indices into the columns): each row's
        ``explain_top`` largest ``|weight x standardised input|``, ties by feature name, as
        (feature column, weight, contribution), ``[len(vec), explain_top]`` each; feature -1
        past the features.

        Why lazily: a row's explanation is read only when its signal or decision is
        rendered, about one row in a hundred by default, while ranking every scored row took
        about a quarter of the model kernel's time."""
        vec = np.ascontiguousarray(vec, dtype=np.int64)
        shape = (vec.size, self.explain_top)
        feature, weight, contribution = np.empty(shape, np.int64), np.zeros(shape), np.zeros(shape)
        if vec.size and self.explain_top:
            taken = np.zeros(self.explain_inputs.shape[1], np.bool_)
            _top_terms(self.explain_inputs, self.explain_weights, self.explain_rank, vec,
                       feature, weight, contribution, taken)  # fmt: skip
        else:
            feature.fill(-1)
        return feature, weight, contribution


@kernel()
def _move_add(move, move_last, k, ts, move_bps, tau_ns) -> None:  # pragma: no cover - compiled
    """``MoveEstimate.add`` on instrument ``k``'s (total, weight)."""
    if move_last[k] != NO_TIME:
        gap = ts - move_last[k]
        decay = math.exp(-(gap if gap > 0 else 0) / tau_ns)
        move[k, 0] *= decay
        move[k, 1] *= decay
    move[k, 0] += move_bps
    move[k, 1] += 1.0
    if move_last[k] == NO_TIME or ts > move_last[k]:
        move_last[k] = ts


@kernel()
def _top_terms(inputs, weights, rank, vec, ex_f, ex_w, ex_c, taken) -> None:  # pragma: no cover
    """Per row ``vec[r]``, the largest ``|weight x input|`` first, ties by ``rank`` (the
    feature's name), as ``explain_linear`` sorts them; ``taken`` (all False, and left so):
    scratch, the features a row has picked."""
    for r in range(vec.size):
        j = vec[r]
        for t in range(ex_f.shape[1]):
            best = -1
            best_term = 0.0
            for f in range(inputs.shape[1]):
                if taken[f]:
                    continue
                term = weights[j, f] * inputs[j, f]
                if (
                    best < 0
                    or abs(term) > abs(best_term)
                    or (abs(term) == abs(best_term) and rank[f] < rank[best])
                ):
                    best, best_term = f, term
            ex_f[r, t] = best
            if best < 0:
                continue
            taken[best] = True
            ex_w[r, t] = weights[j, best]
            ex_c[r, t] = best_term
        for t in range(ex_f.shape[1]):
            if ex_f[r, t] >= 0:
                taken[ex_f[r, t]] = False


@kernel()
def _model_rows(
    clean, emit, inst, ts, price, X,
    horizon, dead_zone, regression,
    started, last_price, q_ts, q_price, q_x, q_pred, q_head, q_len, x_count, x_mean,
    hyper, weights, intercept, counts, means, variances, n_trained, n_dead,
    move_tau_ns, move, move_last,
    pq_counts, pq_means, w_ts, w_y, w_pred, w_head, w_len, window_ns, two,
    start_row, start_vec, score, trained, dead, move_out, ex_z, ex_w,
    z,  # scratch: a learned label's standardised inputs
    sd, sd_known,  # scratch: inputs' scales per instrument (variances ** 0.5), whether known
):  # pragma: no cover - compiled  # fmt: skip
    """Rows from ``start_row`` on; returns the row that needs a larger queue or window, or
    -1."""
    cap = q_ts.shape[1]
    w_cap = w_ts.shape[1]
    j = start_vec
    for i in range(start_row, inst.size):
        if not clean[i]:
            continue
        k = inst[i]
        if (emit[i] and q_len[k] == cap) or w_len[k] + q_len[k] > w_cap:
            return i
        if started[k]:  # labels whose horizon ended before this row mature first
            t = ts[i]
            while q_len[k] > 0 and q_ts[k, q_head[k]] + horizon < t:
                h = q_head[k]
                forward = forward_bps_nb(q_price[k, h], last_price[k])
                if regression:
                    y = forward
                    learn = True
                else:
                    sign = direction_nb(forward, dead_zone)
                    y = 1.0 if sign == UP else 0.0
                    learn = sign != NO_DIRECTION
                _move_add(move, move_last, k, q_ts[k, h], abs(forward) if learn else 0.0,
                          move_tau_ns)  # fmt: skip
                if learn:
                    p = q_pred[k, h]
                    if not regression or math.isfinite(p):  # as ModelStage: no guess, no score
                        score_label(pq_counts, pq_means, w_ts, w_y, w_pred, w_head, w_len,
                                    k, q_ts[k, h], y, p, regression, window_ns, two)  # fmt: skip
                    learn_row(hyper, weights, intercept, counts, means, variances, k,
                              q_x[k, h], y, z, sd[k])  # fmt: skip
                    for f in range(z.shape[0]):  # the scales it took, of the variances now
                        if not math.isnan(q_x[k, h, f]):
                            sd_known[k, f] = True
                    n_trained[k] += 1
                else:
                    n_dead[k] += 1
                q_head[k] = (h + 1) % cap
                q_len[k] -= 1
        if emit[i]:
            started[k] = True
            x = X[j]
            x_count[k] += 1
            for f in range(x.shape[0]):
                x_mean[k, f] += (x[f] - x_mean[k, f]) / x_count[k]
            for f in range(x.shape[0]):
                if not sd_known[k, f]:
                    sd[k, f] = _libm_pow(variances[k, f], 0.5)
                    sd_known[k, f] = True
            score[j] = score_scaled(hyper, weights, intercept, means, sd[k], k, x, ex_z[j])
            trained[j] = n_trained[k]
            dead[j] = n_dead[k]
            move_out[j] = move[k, 0] / move[k, 1] if move[k, 1] > 0.0 else np.nan
            for f in range(x.shape[0]):
                ex_w[j, f] = weights[k, f] if counts[k, f] > 0 else 0.0
            tail = (q_head[k] + q_len[k]) % cap
            q_ts[k, tail] = ts[i]
            q_price[k, tail] = price[i]
            for f in range(x.shape[0]):  # a slice assignment would allocate
                q_x[k, tail, f] = x[f]
            q_pred[k, tail] = score[j]
            q_len[k] += 1
            j += 1
        if started[k]:
            last_price[k] = price[i]
    return -1


class BatchModel:
    """The model stage over batches: scores for the rows with a vector, labels learned as they
    mature, state carried across batches."""

    def __init__(
        self,
        model: ModelConfig,
        label: LabelConfig,
        features: Sequence[str],
        symbols: SymbolTable,
        decision: DecisionConfig | None = None,
        evaluation: EvaluationConfig | None = None,
    ) -> None:
        """``features``: the names of the vectors' columns, in order (they break ties between
        equal explanation terms); ``decision`` gives the move estimate's time constant and
        ``evaluation`` the prequential window."""
        if model.kind not in ("logistic", "linear") or model.engine != "compiled":
            raise NotImplementedError(
                f"the columnar engine runs the compiled linear learners only, not {model.kind!r}"
            )
        regression = label.task == "regression"
        if (model.kind == "linear") != regression:
            raise ValueError(f"model kind {model.kind!r} does not do {label.task}")
        self.model, self.label, self.symbols = model, label, symbols
        self.horizon = horizon_ns(label.horizon_s)
        self.regression = regression
        self.band = model.threshold_bps if regression else model.threshold
        n_features = len(features)
        self.n_features = n_features
        self.move_tau_ns = (decision or DecisionConfig()).move_tau_s * 1e9
        self.window_ns = int((evaluation or EvaluationConfig()).window_s * 1e9)  # as Prequential
        self.name_rank = np.argsort(np.argsort(np.array(features, dtype=object))).astype(np.int64)
        self.learner: LinearState = self._fresh(0)
        self.started = np.zeros(0, np.bool_)
        self.last_price = np.zeros(0)
        self.q_ts = np.zeros((0, START_CAPACITY), np.int64)
        self.q_price = np.zeros((0, START_CAPACITY))
        self.q_x = np.zeros((0, START_CAPACITY, n_features))
        self.q_pred = np.zeros((0, START_CAPACITY))  # the score each queued label was given
        self.q_head = np.zeros(0, np.int64)
        self.q_len = np.zeros(0, np.int64)
        self.x_count = np.zeros(0, np.int64)
        self.x_mean = np.zeros((0, n_features))
        self.n_trained = np.zeros(0, np.int64)
        self.n_dead = np.zeros(0, np.int64)
        self.move = np.zeros((0, 2))  # MoveEstimate's (total, weight) per instrument
        self.move_last = np.zeros(0, np.int64)
        self.pq_counts = np.zeros((0, N_COUNTS), np.int64)  # the prequential figures' sums
        self.pq_means = np.zeros((0, 4))
        self.w_ts = np.zeros((0, START_CAPACITY), np.int64)  # the window's scored labels
        self.w_y = np.zeros((0, START_CAPACITY))
        self.w_pred = np.zeros((0, START_CAPACITY))
        self.w_head = np.zeros(0, np.int64)
        self.w_len = np.zeros(0, np.int64)

    def _fresh(self, n: int) -> LinearState:
        return new_state(
            n,
            self.n_features,
            SQUARED if self.regression else LOG,
            learning_rate=self.model.learning_rate,
            l2=self.model.l2,
            z_clip=Z_CLIP,
        )

    def _sync(self) -> None:
        extra = len(self.symbols) - self.started.size
        if extra <= 0:
            return
        fresh = self._fresh(extra)
        self.learner = LinearState(
            *(np.concatenate([a, b]) for a, b in zip(self.learner, fresh, strict=True))
        )
        for name in ("started", "last_price", "q_ts", "q_price", "q_x", "q_pred", "q_head",
                     "q_len", "x_count", "x_mean", "n_trained", "n_dead", "move", "move_last",
                     "pq_counts", "pq_means", "w_ts", "w_y", "w_pred", "w_head",
                     "w_len"):  # fmt: skip
            a = getattr(self, name)
            fill = NO_TIME if name == "move_last" else 0
            setattr(self, name, np.concatenate([a, np.full((extra, *a.shape[1:]), fill, a.dtype)]))

    def _grow(self, names: tuple[str, ...], head: np.ndarray, need: int) -> None:
        """Double the rings ``names`` until they hold ``need`` labels, laying each instrument's
        labels out from slot 0."""
        cap = getattr(self, names[0]).shape[1]
        wider = cap
        while wider < need:
            wider *= 2
        order = (head[:, None] + np.arange(cap)[None, :]) % cap
        rows = np.arange(order.shape[0])[:, None]
        for name in names:
            a = getattr(self, name)[rows, order]
            wide = np.zeros((a.shape[0], wider, *a.shape[2:]), a.dtype)
            wide[:, :cap] = a
            setattr(self, name, wide)
        head[:] = 0

    def run(
        self, batch: TickBatch, clean: np.ndarray, emit: np.ndarray, vectors: np.ndarray
    ) -> ModelColumns:
        """Score the rows that carry a vector (``vectors``, in row order) and learn what
        matured on the way."""
        self._sync()
        n, top = vectors.shape[0], min(self.model.top_k_explain, self.n_features)
        out = ModelColumns(
            np.empty(n), np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n),
            np.empty((n, self.n_features)), np.empty((n, self.n_features)),
            np.empty(n, np.bool_), np.full(n, self.band), np.ones(n), np.zeros(n, np.int64),
            np.full(n, self.model.model_version, np.int64), self.name_rank, top,
        )  # fmt: skip
        X = np.ascontiguousarray(vectors, dtype=np.float64)
        sd = np.empty((len(self.symbols), self.n_features))
        sd_known = np.zeros(sd.shape, np.bool_)  # taken afresh each batch: nothing to carry
        row = vec = 0
        while True:
            s = self.learner
            stop = _model_rows(
                clean, emit, batch.instrument, batch.ts, batch.price, X,
                self.horizon, self.label.dead_zone_bps, self.regression,
                self.started, self.last_price, self.q_ts, self.q_price, self.q_x, self.q_pred,
                self.q_head, self.q_len, self.x_count, self.x_mean,
                s.hyper, s.weights, s.intercept, s.counts, s.means, s.variances,
                self.n_trained, self.n_dead, self.move_tau_ns, self.move, self.move_last,
                self.pq_counts, self.pq_means, self.w_ts, self.w_y,
                self.w_pred, self.w_head, self.w_len, self.window_ns, 2.0, row, vec,
                out.score, out.n_trained, out.n_dead_zone, out.move_bps,
                out.explain_inputs, out.explain_weights, np.empty(self.n_features), sd, sd_known,
            )  # fmt: skip
            if stop < 0:
                np.greater_equal(out.n_trained, self.model.warmup_labels, out=out.routed)
                return out
            vec += int(np.count_nonzero(emit[row:stop] & clean[row:stop]))
            row = stop
            k = batch.instrument[stop]
            q_cap, pending = self.q_ts.shape[1], int(self.q_len[k])
            if emit[stop] and pending == q_cap:
                self._grow(("q_ts", "q_price", "q_x", "q_pred"), self.q_head, q_cap + 1)
            need = int(self.w_len[k]) + pending  # every pending label might mature at this row
            if need > self.w_ts.shape[1]:
                self._grow(("w_ts", "w_y", "w_pred"), self.w_head, need)

    def state_arrays(self) -> list[np.ndarray]:
        """Every array of the state (what a checkpoint carries; what invariance compares)."""
        rest = [self.started, self.last_price, self.q_head, self.q_len, self.x_count]
        rest += [self.x_mean, self.n_trained, self.n_dead, self.move, self.move_last]
        rest += [self.pq_counts, self.pq_means, self.w_len]
        queued = self._in_order(("q_ts", "q_price", "q_x", "q_pred"), self.q_head, self.q_len)
        window = self._in_order(("w_ts", "w_y", "w_pred"), self.w_head, self.w_len)
        return [*self.learner, *rest, *queued, *window]

    def _in_order(self, names: tuple[str, ...], head: np.ndarray, length: np.ndarray) -> list:
        """The labels of the rings ``names`` in order, whatever their capacity and head."""
        return [
            _ring(getattr(self, name), head, length, k) for name in names for k in range(head.size)
        ]

    def metrics(self, instrument: str) -> dict[str, dict[str, Any]]:
        """What ``ModelStage.metrics`` reports for the one version on ``instrument`` (nothing
        before its first score): its stage, labels learned and prequential figures, overall
        and over the window of label event time."""
        if instrument not in self.symbols.names:
            return {}
        k = self.symbols.index(instrument)
        if k >= self.started.size or not self.started[k]:
            return {}
        ys = _ring(self.w_y, self.w_head, self.w_len, k)
        predictions = _ring(self.w_pred, self.w_head, self.w_len, k)
        report = {
            "n": int(self.pq_counts[k, prequential.N]),
            "overall": prequential.overall(self.regression, self.pq_counts[k], self.pq_means[k]),
            "window_n": int(self.w_len[k]),
            "window": prequential.window(self.regression, ys, predictions),
        }
        key = version_key(self.model.model_id, self.model.model_version)
        return {key: {"stage": Stage.PRODUCTION, "n_trained": int(self.n_trained[k]), **report}}


def one_version_cannot(cmd: ControlCommand, model: ModelConfig) -> str | None:
    """Why the compiled kernel's one version cannot carry out a model command (it deploys
    another version, or a shadow or canary stage), or None: rolling back with nothing to roll
    back to, promoting the version in production and naming an unknown one only say so."""
    if cmd.command != "promote":
        return None
    key = version_key(cmd.model_id or "", cmd.model_version or 0)
    if key != version_key(model.model_id, model.model_version):
        return f"{cmd.command_id} deploys {key}" if cmd.model_spec is not None else None
    if cmd.stage not in (None, Stage.PRODUCTION) or cmd.instruments:
        return f"{cmd.command_id} stages {key} as {cmd.stage or 'a canary'}"
    if cmd.capital_fraction is not None:
        return f"{cmd.command_id} gives {key} a capital fraction"
    return None


def _ring(a: np.ndarray, head: np.ndarray, length: np.ndarray, k: int) -> np.ndarray:
    """Instrument ``k``'s labels in ring ``a``, oldest first."""
    return a[k, (head[k] + np.arange(length[k])) % a.shape[1]]

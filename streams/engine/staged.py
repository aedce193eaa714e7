"""The model stage the compiled kernel does not run: several deployed versions and river's zoo.

A deployment (shadow, canary, promotion, rollback, several versions learning side by side) and
river's estimators are ``ModelStage``'s, row by row: ``StagedModel`` runs it over a batch's
clean rows in order (``on_features`` where the features kernel emitted a vector, ``on_price``
elsewhere) and hands the decide kernel the routed signal's columns, and the renderer every
signal, so the engine publishes what the per-tick stage publishes by construction. Nothing the
decide stage or the monitor does feeds back into the model stage (monitor policies issue
control commands, never stage changes), so the whole batch is scored ahead, as the kernel does.

The engine starts on the compiled kernel (``models.BatchModel``) and hands over to this stage
when a command deploys what the kernel cannot run, live or in a backtest: ``from_kernel``
carries every instrument's state across (queued labels with their predictions, the learner's
arrays, prequential sums and window, feature means, the typical move, the commands applied),
and the decisions go on as if this stage had run from the start. It costs what river's
per-tick stage costs per decided row (docs/MODELS.md); the cadence bounds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tickwise.schemas.decisions import ControlCommand, FeatureVector
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.engine.batch import SymbolTable, TickBatch
from tickwise.streams.engine.models import NO_TIME, BatchModel, ModelColumns, _ring
from tickwise.streams.engine.prequential import CarriedPrequential
from tickwise.streams.operators.decision import MoveEstimate
from tickwise.streams.operators.labels import LabelQueue
from tickwise.streams.operators.models.linear_kernel import LinearState
from tickwise.streams.operators.models.shared import version_key
from tickwise.streams.operators.models.stage import ModelStage
from tickwise.streams.operators.models.zoo import build_estimator


class StagedModel:
    """``ModelStage`` over batches, for the engine."""

    def __init__(
        self,
        config: TickwiseConfig,
        symbols: SymbolTable,
        models: SymbolTable,
        stage: ModelStage | None = None,
    ) -> None:
        """``models``: the engine's table of model ids (``ModelColumns.slot`` indexes it)."""
        self.config, self.symbols, self.models = config, symbols, models
        self.stage = stage or ModelStage(
            config.model, config.label, config.evaluation, config.decision
        )
        self.names = tuple(config.features.feature_set)
        self.regression = config.label.task == "regression"
        self.details: dict[tuple[str, str], str] = {}  # (command id, instrument): what it did

    def submit(self, command: ControlCommand) -> None:
        """Queue a stage command (``promote``, ``rollback``); others are not the stage's."""
        self.stage.submit(command)

    def run(
        self, batch: TickBatch, clean: np.ndarray, emit: np.ndarray, vectors: np.ndarray
    ) -> ModelColumns:
        """Score the rows with a vector, learn what matured on the way, in row order."""
        n = vectors.shape[0]
        out = ModelColumns(
            np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, math.nan),
            np.zeros((n, 0)), np.zeros((n, 0)),
            np.zeros(n, np.bool_), np.zeros(n), np.ones(n), np.zeros(n, np.int64),
            np.zeros(n, np.int64), np.zeros(0, np.int64), 0,
            signals=[], routed_signals=[], details=self.details, errors=[],
        )  # fmt: skip
        stage, names, features = self.stage, self.symbols.names, self.names
        rows = np.flatnonzero(clean)
        instruments = batch.instrument[rows].tolist()
        ts_all, prices = batch.ts[rows].tolist(), batch.price[rows].tolist()
        emitted, tick_ids = emit[rows].tolist(), batch.tick_ids
        values = vectors.tolist()
        j = 0
        for i, k, ts, price, has_vector in zip(
            rows.tolist(), instruments, ts_all, prices, emitted, strict=True
        ):
            name = names[k]
            try:
                if not has_vector:
                    stage.on_price(name, ts, price)
                    continue
                fv = FeatureVector(
                    instrument=name,
                    tick_id=tick_ids[i],
                    ts_event_ns=ts,
                    price=price,
                    values=dict(zip(features, values[j], strict=True)),
                )
                scored = stage.on_features(fv)
            except Exception as exc:  # a model's bug must not stop the stream (as per tick)
                out.errors.append((i, repr(exc)))  # type: ignore[union-attr]
                if has_vector:
                    out.signals.append(())  # type: ignore[union-attr]
                    out.routed_signals.append(None)  # type: ignore[union-attr]
                    j += 1
                continue
            for applied in scored.applied:
                self.details[(applied.command_id, name)] = applied.detail
            out.signals.append(scored.signals)  # type: ignore[union-attr]
            out.routed_signals.append(scored.routed)  # type: ignore[union-attr]
            out.move_bps[j] = stage.move_bps(name)
            routed = scored.routed
            if routed is not None:
                key = version_key(routed.model_id, routed.model_version)
                model = stage.deployment(name, key).model
                out.routed[j] = True
                out.score[j] = routed.score
                out.n_trained[j] = routed.n_trained
                out.band[j] = model.threshold_bps if self.regression else model.threshold
                out.fraction[j] = routed.capital_fraction
                out.slot[j] = self.models.index(routed.model_id)
                out.version[j] = routed.model_version
            j += 1
        return out

    def metrics(self, instrument: str) -> dict[str, dict[str, Any]]:
        """Every version's prequential figures on ``instrument`` (``ModelStage.metrics``)."""
        return self.stage.metrics(instrument)

    @classmethod
    def from_kernel(
        cls,
        kernel: BatchModel,
        config: TickwiseConfig,
        models: SymbolTable,
        commands: Sequence[ControlCommand],
        applied_upto: np.ndarray,
    ) -> StagedModel:
        """This stage going on from the compiled kernel's state: ``commands`` are the stage
        commands taken so far in arrival order, of which instrument ``k`` has gone past the
        first ``applied_upto[k]`` (the decide kernel's ``mc_next``)."""
        staged = cls(config, kernel.symbols, models)
        stage = staged.stage
        for command in commands:
            stage.submit(command)
        regression, names = kernel.regression, staged.names
        key = version_key(config.model.model_id, config.model.model_version)
        learner = kernel.learner
        for k, name in enumerate(kernel.symbols.names[: kernel.started.size]):
            if not kernel.started[k]:
                continue
            labels = LabelQueue(stage.horizon_ns, config.label.dead_zone_bps, config.label.task)
            queued = [_ring(getattr(kernel, a), kernel.q_head, kernel.q_len, k) for a in Q_RINGS]
            for ts, price, x, p in zip(*(a.tolist() for a in queued), strict=True):
                labels.pending.append(
                    (ts, price, dict(zip(names, x, strict=True)), {key: _prediction(p, regression)})
                )
            labels.last_price = float(kernel.last_price[k])
            estimator = build_estimator(config.model, config.label.task)
            estimator._names = names  # type: ignore[attr-defined]  # the vectors' columns
            estimator._index = {n: f for f, n in enumerate(names)}  # type: ignore[attr-defined]
            estimator._state = LinearState(*(a[k : k + 1].copy() for a in learner))  # type: ignore[attr-defined]
            window = [
                _ring(getattr(kernel, a), kernel.w_head, kernel.w_len, k).tolist() for a in W_RINGS
            ]
            prequential = CarriedPrequential(
                regression,
                kernel.window_ns,
                kernel.pq_counts[k],
                kernel.pq_means[k],
                list(zip(*window, strict=True)),
            )
            count = int(kernel.x_count[k])
            means = {n: (count, m) for n, m in zip(names, kernel.x_mean[k].tolist(), strict=True)}
            move = None
            if kernel.move_last[k] != NO_TIME:
                move = MoveEstimate(stage.move_tau_ns)
                move.total, move.weight = (float(v) for v in kernel.move[k])
                move.last_ns = int(kernel.move_last[k])
            scope = ("global", name)
            done = [c.command_id for c in commands[: int(applied_upto[k])] if c.scope in scope]
            stage.take_over(
                name,
                labels,
                estimator,
                prequential,
                (int(kernel.n_trained[k]), int(kernel.n_dead[k])),
                means,
                move,
                done,
            )
        return staged


Q_RINGS = ("q_ts", "q_price", "q_x", "q_pred")
W_RINGS = ("w_ts", "w_y", "w_pred")


def _prediction(p: float, regression: bool) -> Any:
    """A kernel score as ``ModelStage`` keeps it with a label (the compiled learners' own)."""
    if regression:
        return p if math.isfinite(p) else None
    return {False: 1.0 - p, True: p}


__all__ = ["StagedModel"]

"""The model zoo: river estimators chosen by ``ModelConfig.kind``, behind one interface.

Every kind is built as a river estimator (``learn_one``, ``predict_one``/``predict_proba_one``),
so ``river.evaluate.progressive_val_score`` can check our prequential figures on the very same
object. Linear kinds (and the MLP) see standardised, clipped inputs; trees and forests see raw
values, which keeps their split thresholds readable in an explanation. ``logistic`` and
``linear`` are compiled learners that take river's steps (``models.linear``) unless
``engine = "river"`` asks for river's own pipeline.
"""

from __future__ import annotations

from typing import Any, Literal

from river import base, compose, forest, linear_model, optim, preprocessing, tree

from tickwise.streams.config import ModelConfig
from tickwise.streams.operators.models.mlp import MLPClassifier, MLPRegressor
from tickwise.streams.operators.models.shared import Z_CLIP

Task = Literal["classification", "regression"]
LINEAR_KINDS = frozenset({"logistic", "linear", "svm", "pa"})
SCALED_KINDS = LINEAR_KINDS | {"mlp"}
# Every (task, kind) pair the zoo builds: what tests and benchmarks iterate over.
ZOO: tuple[tuple[str, str], ...] = (
    ("classification", "logistic"),
    ("classification", "svm"),
    ("classification", "pa"),
    ("classification", "hoeffding_tree"),
    ("classification", "arf"),
    ("classification", "mlp"),
    ("regression", "linear"),
    ("regression", "svm"),
    ("regression", "pa"),
    ("regression", "hoeffding_tree"),
    ("regression", "arf"),
    ("regression", "mlp"),
)


def clip_z(x: dict[str, float]) -> dict[str, float]:
    """Clamp standardised values into ``[-Z_CLIP, Z_CLIP]`` (module level: it must pickle)."""
    return {k: max(-Z_CLIP, min(Z_CLIP, v)) for k, v in x.items()}


def _sgd(cfg: ModelConfig) -> optim.SGD:
    return optim.SGD(cfg.learning_rate)


def _core(cfg: ModelConfig, task: Task) -> base.Estimator:
    """The bare estimator for ``cfg.kind`` and ``task``; raise if the pair makes no sense."""
    cls = task == "classification"
    kind = cfg.kind
    if kind == "logistic" and cls:
        return linear_model.LogisticRegression(optimizer=_sgd(cfg), l2=cfg.l2)
    if kind == "linear" and not cls:
        return linear_model.LinearRegression(optimizer=_sgd(cfg), l2=cfg.l2)
    if kind == "svm":
        if cls:  # a linear SVM trained by SGD: hinge loss plus L2
            return linear_model.LogisticRegression(
                optimizer=_sgd(cfg), loss=optim.losses.Hinge(), l2=cfg.l2 or 1e-4
            )
        return linear_model.LinearRegression(
            optimizer=_sgd(cfg), loss=optim.losses.EpsilonInsensitiveHinge(), l2=cfg.l2 or 1e-4
        )
    if kind == "pa":
        return (
            linear_model.PAClassifier(C=cfg.pa_c) if cls else linear_model.PARegressor(C=cfg.pa_c)
        )
    if kind == "hoeffding_tree":
        params: dict[str, Any] = {"grace_period": cfg.grace_period, "max_depth": cfg.max_depth}
        if cls:
            return tree.HoeffdingTreeClassifier(**params)
        return tree.HoeffdingTreeRegressor(**params)
    if kind == "arf":
        params = {
            "n_models": cfg.n_models,
            "grace_period": cfg.grace_period,
            "max_depth": cfg.max_depth,
            "seed": cfg.seed,
        }
        return forest.ARFClassifier(**params) if cls else forest.ARFRegressor(**params)
    if kind == "mlp":
        net = MLPClassifier if cls else MLPRegressor
        return net(hidden=cfg.hidden, learning_rate=cfg.learning_rate, seed=cfg.seed)
    raise ValueError(f"model kind {kind!r} does not do {task}; see docs/MODELS.md")


def _compiled(cfg: ModelConfig, task: Task) -> base.Estimator | None:
    """The compiled learner that stands for river's pipeline of ``cfg``, if there is one."""
    if cfg.engine != "compiled":
        return None
    # imported here: numba's import (about 0.4 s) is paid only by processes that use it
    from tickwise.streams.operators.models.linear import (
        CompiledLinearRegression,
        CompiledLogisticRegression,
    )

    params = {"learning_rate": cfg.learning_rate, "l2": cfg.l2, "z_clip": Z_CLIP}
    if cfg.kind == "logistic" and task == "classification":
        return CompiledLogisticRegression(**params)
    if cfg.kind == "linear" and task == "regression":
        return CompiledLinearRegression(**params)
    return None


def build_estimator(cfg: ModelConfig, task: Task) -> base.Estimator:
    """Return a fresh river estimator for ``cfg`` (scaled and clipped inputs for linear kinds).

    Examples
    --------
    >>> est = build_estimator(ModelConfig(kind="hoeffding_tree"), "classification")
    >>> type(est).__name__
    'HoeffdingTreeClassifier'
    >>> type(build_estimator(ModelConfig(kind="linear"), "regression")).__name__
    'CompiledLinearRegression'
    >>> list(build_estimator(ModelConfig(kind="linear", engine="river"), "regression").steps)[-1]
    'LinearRegression'
    >>> build_estimator(ModelConfig(kind="linear"), "classification")
    Traceback (most recent call last):
    ...
    ValueError: model kind 'linear' does not do classification; see docs/MODELS.md
    """
    compiled = _compiled(cfg, task)
    if compiled is not None:
        return compiled
    core = _core(cfg, task)
    if cfg.kind in SCALED_KINDS:
        return compose.Pipeline(
            preprocessing.StandardScaler(), compose.FuncTransformer(clip_z), core
        )
    return core


def final_step(estimator: base.Estimator) -> base.Estimator:
    """The estimator at the end of a pipeline (or the estimator itself)."""
    if isinstance(estimator, compose.Pipeline):
        return list(estimator.steps.values())[-1]
    return estimator


def scales_inside(estimator: base.Estimator) -> bool:
    """True for the compiled learners: they standardise inside, so they score raw ``x``."""
    return getattr(estimator, "standardises_inside", False) is True


def model_inputs(estimator: base.Estimator, x: dict[str, float]) -> dict[str, float]:
    """What the final estimator sees for ``x`` (standardised and clipped for linear kinds)."""
    if scales_inside(estimator):
        return estimator.transform_one(x)  # type: ignore[attr-defined]
    if isinstance(estimator, compose.Pipeline):
        for step in list(estimator.steps.values())[:-1]:
            x = step.transform_one(x)
    return x


def is_classifier(estimator: base.Estimator) -> bool:
    """True for classifiers (their score is P(up)), False for regressors (forecast in bps)."""
    return isinstance(final_step(estimator), base.Classifier)

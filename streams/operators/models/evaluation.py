"""Prequential (test-then-train) validation per model and instrument, in event time.

Each tick is predicted when it arrives; the prediction is kept with the tick and scored when
its label matures, just before the model learns that label. This is what
``river.evaluate.progressive_val_score`` does with a delay, and a test checks that both give
the same figures on the same stream. Figures are kept overall and over a rolling window of
event time (the window holds the last ``window_s`` seconds of *label* timestamps).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from river import metrics

CLASSIFIER_METRICS = ("Accuracy", "Precision", "Recall", "F1", "LogLoss")
REGRESSOR_METRICS = ("MAE", "RMSE")


def _fresh(names: tuple[str, ...]) -> dict[str, metrics.base.Metric]:
    # river.metrics imports scipy.stats (0.7 s): loaded by the first metric, not with the names
    from river import metrics

    return {name: getattr(metrics, name)() for name in names}


def predicted_label(proba: dict[Any, float]) -> Any:
    """river's ``predict_one`` for a classifier: the most probable class (None before any)."""
    return max(proba, key=proba.get) if proba else None


def _feed(task: str, ms: dict[str, metrics.base.Metric], y: Any, pred: Any) -> None:
    if task == "classification":
        label = predicted_label(pred)
        for name, metric in ms.items():
            metric.update(y, pred if name == "LogLoss" else label)
    else:
        for metric in ms.values():
            metric.update(y, pred)


def figures(task: str, labels: Iterable[tuple[Any, Any]]) -> dict[str, float]:
    """The task's figures over ``(y, prediction)`` pairs in order, by fresh river metrics: the
    rolling window's report, which the compiled engine's window shares."""
    ms = _fresh(CLASSIFIER_METRICS if task == "classification" else REGRESSOR_METRICS)
    for y, pred in labels:
        _feed(task, ms, y, pred)
    return {k: m.get() for k, m in ms.items()}


class Prequential:
    """Overall and rolling-window metrics of one model on one instrument.

    Examples
    --------
    >>> p = Prequential("classification", window_s=10.0)
    >>> p.update(0, True, {False: 0.2, True: 0.8})
    >>> p.update(10**9, False, {False: 0.4, True: 0.6})
    >>> p.report()["overall"]["Accuracy"]
    0.5
    """

    def __init__(self, task: str, window_s: float) -> None:
        self.task = task
        self.window_ns = int(window_s * 1e9)
        self.names = CLASSIFIER_METRICS if task == "classification" else REGRESSOR_METRICS
        self.overall = _fresh(self.names)
        self.window: deque[tuple[int, Any, Any]] = deque()
        self.n = 0

    def update(self, ts_ns: int, y: Any, prediction: Any) -> None:
        """Score one matured label against the prediction made when its tick arrived."""
        self.n += 1
        _feed(self.task, self.overall, y, prediction)
        self.window.append((ts_ns, y, prediction))
        cutoff = ts_ns - self.window_ns
        while self.window and self.window[0][0] <= cutoff:
            self.window.popleft()

    def report(self) -> dict[str, Any]:
        """Figures overall and over the rolling window (recomputed from the window's labels)."""
        return {
            "n": self.n,
            "overall": {k: m.get() for k, m in self.overall.items()},
            "window_n": len(self.window),
            "window": figures(self.task, ((y, pred) for _, y, pred in self.window)),
        }

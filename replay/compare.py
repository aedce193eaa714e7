"""Walk-forward comparison of model configurations over one recorded stream.

Each configuration runs the columnar engine over the same records, in batches and through
``Engine.run`` and ``finish`` as the backtest and the worker run it; its models are
validated prequentially (predict on arrival, score when the label matures), so the figures
are what the model would have shown live. Per-instrument figures are pooled across
instruments weighted by the number of scored labels.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tickwise.replay.engine import record_batches
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.engine.run import BatchOutput, Engine
from tickwise.streams.operators.models.shared import version_key
from tickwise.streams.progress import Progress, utc_second
from tickwise.streams.sources import RawRecord

# The figure each task is ranked by, and whether larger is better.
RANK_BY = {"classification": ("LogLoss", False), "regression": ("RMSE", False)}


@dataclass
class Evaluated:
    """Prequential figures of one configuration over one stream."""

    name: str
    task: str
    kind: str
    n: int
    metrics: dict[str, float]
    ticks_per_second: float
    decisions: int
    per_instrument: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None


def evaluate_config(
    records: Sequence[RawRecord], config: TickwiseConfig, name: str, progress: bool = False
) -> Evaluated:
    """Run ``config`` over ``records`` and pool its production model's prequential figures.

    With ``progress``, a bar named ``name`` counts the records against their total.
    """
    engine = Engine(config)
    decisions = 0
    instruments: set[int] = set()
    first = last = None

    def count(out: BatchOutput) -> None:
        nonlocal decisions, first, last
        decisions += len(out.decided.decisions)
        if out.batch is None or not out.accepted.any():
            return
        instruments.update(np.unique(out.batch.instrument[out.accepted]).tolist())
        ts = out.batch.ts[out.accepted]
        first = int(ts.min()) if first is None else min(first, int(ts.min()))
        last = int(ts.max()) if last is None else max(last, int(ts.max()))

    def fields() -> dict[str, object]:
        return {"decisions": decisions, "event_time": utc_second(last)}

    started = time.perf_counter()
    max_bytes = config.validation.max_message_bytes
    with Progress(progress, name, total=len(records)) as bar:
        done = 0
        for batch in record_batches(records, engine.symbols, max_bytes):
            count(engine.run(batch))
            done += len(batch)
            bar.update(done, **fields())
        count(engine.finish())
        bar.close(len(records), **fields())
    seconds = time.perf_counter() - started
    key = version_key(config.model.model_id, config.model.model_version)
    names = sorted(engine.symbols.names[k] for k in instruments)
    per = {i: engine.model.metrics(i).get(key, {}) for i in names}
    n = sum(r.get("n", 0) for r in per.values())
    pooled: dict[str, float] = {}
    for report in per.values():
        for metric, value in report.get("overall", {}).items():
            pooled[metric] = pooled.get(metric, 0.0) + value * report["n"] / max(n, 1)
    return Evaluated(
        name=name,
        task=config.label.task,
        kind=config.model.kind,
        n=n,
        metrics=pooled,
        ticks_per_second=len(records) / seconds if seconds else 0.0,
        decisions=decisions,
        per_instrument=per,
        first_ts_ns=first,
        last_ts_ns=last,
    )


def rank(results: list[Evaluated]) -> list[Evaluated]:
    """Best first within each task (classifiers by log loss, regressors by RMSE)."""

    def key(r: Evaluated) -> tuple[str, float]:
        metric, larger_better = RANK_BY[r.task]
        value = r.metrics.get(metric, float("inf"))
        return (r.task, -value if larger_better else value)

    return sorted(results, key=key)


def table(results: list[Evaluated]) -> str:
    """A plain-text ranked table.

    Examples
    --------
    >>> row = Evaluated("a", "regression", "linear", 10, {"MAE": 1.0, "RMSE": 2.0}, 1e4, 3)
    >>> print(table([row]).splitlines()[2])
    1     a                    linear         regression            10  MAE=1  RMSE=2  10000 ticks/s
    """
    lines = [
        f"{'rank':<5} {'config':<20} {'kind':<14} {'task':<14} {'labels':>9}  figures",
        "-" * 100,
    ]
    for i, r in enumerate(rank(results), 1):
        figures = "  ".join(f"{k}={v:.4g}" for k, v in r.metrics.items())
        lines.append(
            f"{i:<5} {r.name:<20} {r.kind:<14} {r.task:<14} {r.n:>9}  {figures}  "
            f"{r.ticks_per_second:.0f} ticks/s"
        )
    return "\n".join(lines)

"""What one decision costs the default model: river's linear pipeline against the compiled one.

    python -m benchmarks.linear_kernel --ticks 20000

On the feature vectors the pipeline computes from synthetic ES ticks (made before any clock
starts), each row times one prediction and one learning step per tick, as the model stage does
once warm, for:

* ``river``: ``StandardScaler | clip | LogisticRegression`` (or ``LinearRegression``), the zoo's
  pipeline with ``engine = "river"``;
* ``compiled, dicts``: the zoo's compiled learner through river's dict protocol, as today's
  per-tick model stage calls it;
* ``kernel, per row``: the compiled ``predict_one`` and ``learn_one`` called from Python on
  array rows (no dicts; what is left is numba's call overhead);
* ``kernel, batch``: ``predict_learn`` over the whole stream in one call, the columnar engine's
  way;
* ``stage``: ``ModelStage.on_features`` per tick (labels, prequential scoring, the signal and
  its explanation included), for both engines.

Then numba's own costs, each in a fresh process: importing numba and the kernel module, and the
first calls of every entry point with an empty cache (compilation) and again with the cache that
run left on disk (loading). CPU time (``process_time``): these machines are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import command_line, run_child, table, write_results

KINDS = (("classification", "logistic"), ("regression", "linear"))


def vectors(ticks: int, seed: int) -> list[Any]:
    """The pipeline's feature vectors for ``ticks`` synthetic ES ticks."""
    from tickwise.schemas.ticks import TICK_ADAPTER
    from tickwise.streams.config import FeatureConfig
    from tickwise.streams.operators import FeatureEngine
    from tickwise.streams.sources import synthetic

    engine = FeatureEngine(FeatureConfig())
    out = []
    for record in synthetic(seed, ticks, instruments=["ES"]):
        fv = engine.on_tick(TICK_ADAPTER.validate_json(record.payload))
        if fv is not None:
            out.append(fv)
    return out


def _best(fn: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def _timings(task: str, kind: str, fvs: list[Any], repeat: int) -> dict[str, float]:
    """CPU seconds of each implementation over ``fvs``: a prediction and a label per tick."""
    from tickwise.streams.config import LabelConfig, ModelConfig
    from tickwise.streams.operators.models import ModelStage, build_estimator
    from tickwise.streams.operators.models.linear_kernel import (
        LOG,
        SQUARED,
        learn_one,
        new_state,
        predict_learn,
        predict_one,
    )
    from tickwise.streams.operators.models.zoo import Z_CLIP

    xs = [fv.values for fv in fvs]
    X = np.array([list(x.values()) for x in xs])
    n, width = X.shape
    # the label of a tick: the next price's move (what matters here is the work, not the fit)
    move = np.append(np.diff([fv.price for fv in fvs]), 0.0)
    y = (move > 0.0).astype(np.float64) if task == "classification" else move * 1e4
    targets = [bool(v) for v in y] if task == "classification" else y.tolist()
    loss = LOG if task == "classification" else SQUARED

    def dicts(engine: str) -> None:
        est = build_estimator(ModelConfig(kind=kind, engine=engine), task)  # type: ignore[arg-type]
        score = est.predict_proba_one if task == "classification" else est.predict_one
        for x, target in zip(xs, targets, strict=True):
            score(x)
            est.learn_one(x, target)

    def per_row() -> None:
        s = new_state(1, width, loss, z_clip=Z_CLIP)
        scoring, learning = s.predictor(), s.learner()
        for i in range(n):
            predict_one(*scoring, 0, X[i])
            learn_one(*learning, 0, X[i], y[i])

    def batch() -> None:
        s = new_state(1, width, loss, z_clip=Z_CLIP)
        flags = np.ones(n, dtype=np.bool_)
        predict_learn(*s.learner(), np.zeros(n, np.int64), X, y, flags, flags, np.empty(n))

    def stage(engine: str) -> None:
        model = ModelConfig(kind=kind, engine=engine)  # type: ignore[arg-type]
        st = ModelStage(model, LabelConfig(horizon_s=1.0, task=task))  # type: ignore[arg-type]
        for fv in fvs:
            st.on_features(fv)

    return {
        "river": _best(lambda: dicts("river"), repeat),
        "compiled, dicts": _best(lambda: dicts("compiled"), repeat),
        "kernel, per row": _best(per_row, repeat),
        "kernel, batch": _best(batch, repeat),
        "stage, river": _best(lambda: stage("river"), repeat),
        "stage, compiled": _best(lambda: stage("compiled"), repeat),
    }


def measure(ticks: int, seed: int, repeat: int) -> list[dict[str, Any]]:
    """One row per (task, implementation): CPU microseconds per tick, best of ``repeat``."""
    first_calls()  # load (or compile) every kernel before any clock starts
    fvs = vectors(ticks, seed)
    rows = []
    for task, kind in KINDS:
        timings = _timings(task, kind, fvs, repeat)
        river_us = timings["river"] / len(fvs) * 1e6
        for name, seconds in timings.items():
            us = seconds / len(fvs) * 1e6
            rows.append(
                {
                    "task": task,
                    "kind": kind,
                    "how": name,
                    "us_per_tick": round(us, 3),
                    "ticks_per_s": round(len(fvs) / seconds),
                    "vs_river": None if name.startswith("stage") else round(river_us / us, 1),
                }
            )
    return rows


def first_calls() -> dict[str, float]:
    """In this process: import numba, the models package (river with it) and the kernels, then
    call every entry point once: what a fresh process pays before its first decision."""
    started = time.perf_counter()
    import numba  # noqa: F401

    numba_s = time.perf_counter() - started
    started = time.perf_counter()
    import tickwise.streams.operators.models  # noqa: F401  (the package: river, pydantic and the zoo)

    package_s = time.perf_counter() - started
    started = time.perf_counter()
    from tickwise.streams.operators.models import linear_kernel as k

    module_s = time.perf_counter() - started
    x = np.array([1.0, 2.0, np.nan])
    started = time.perf_counter()
    for loss in (k.LOG, k.SQUARED):
        s = k.new_state(2, 3, loss)
        k.predict_one(*s.predictor(), 0, x)
        k.learn_one(*s.learner(), 1, x, 1.0)
        k.transform_one(*s.predictor(), 0, x, np.empty(3))
        rows = np.ones(2, np.bool_)
        k.predict_learn(
            *s.learner(),
            np.zeros(2, np.int64),
            np.vstack([x, x]),
            np.ones(2),
            rows,
            rows,
            np.empty(2),
        )
    return {
        "import_numba_s": round(numba_s, 3),
        "import_models_package_s": round(package_s, 3),
        "import_kernels_s": round(module_s, 3),
        "first_calls_s": round(time.perf_counter() - started, 3),
    }


def compile_costs() -> dict[str, dict[str, float]]:
    """``first_calls`` in a fresh process with an empty numba cache, then with a warm one."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NUMBA_CACHE_DIR"] = cache  # children inherit it; this process never compiles
        for name in ("cold cache (compile)", "warm cache (load)"):
            out[name] = run_child(["benchmarks.linear_kernel", "--first-calls"], 300).last_json()
        del os.environ["NUMBA_CACHE_DIR"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best counts")
    parser.add_argument("--json", default="benchmarks/results/linear_kernel.json")
    parser.add_argument("--first-calls", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_calls:  # the child of compile_costs
        print(json.dumps(first_calls()))
        return 0
    costs = compile_costs()
    print(
        table([{"cache": k, **v} for k, v in costs.items()], ["cache", *next(iter(costs.values()))])
    )
    rows = measure(args.ticks, args.seed, args.repeat)
    print(table(rows, ["task", "kind", "how", "us_per_tick", "ticks_per_s", "vs_river"]))
    write_results(args.json, command_line(), {"ticks": args.ticks, "numba": costs, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())

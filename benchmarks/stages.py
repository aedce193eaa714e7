"""Where the per-tick time goes: the pipeline measured stage by stage, with the floors beside it.

    python -m benchmarks.stages --ticks 20000

Each row runs the same synthetic ticks (generated before the clock starts) through one more
stage of the shared pipeline, each with a fresh ``Pipeline``, so the difference between two
rows is the cost of the stage added. The floor rows time the pieces no design of ours can
avoid: decoding the JSON payload; decoding it, wrapping it as the ``ticks.clean`` contract and
encoding that (what every tick costs a worker that publishes each clean tick); and the
configured logistic regression (scaler, learn and predict; compiled unless ``model.engine`` is
``river``) on the very feature vectors the pipeline emitted (every tick, or one per bucket with
``features.sample_ms``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import add_config_argument, command_line, table, write_results
from tickwise.schemas.ticks import TICK_ADAPTER, CleanTick, SourceRef
from tickwise.streams.config import TickwiseConfig, load_config
from tickwise.streams.operators.models.zoo import build_estimator
from tickwise.streams.pipeline import Pipeline
from tickwise.streams.sources import synthetic

Step = Callable[[Pipeline, bytes, SourceRef], Any]


def _features(p: Pipeline, raw: bytes, src: SourceRef) -> None:
    for v in p.screen(raw, src):
        if isinstance(v, CleanTick):
            p.features.on_tick(v.tick)


def _model(p: Pipeline, raw: bytes, src: SourceRef) -> None:
    for v in p.screen(raw, src):
        if isinstance(v, CleanTick):
            fv = p.features.on_tick(v.tick)
            if fv is not None:
                p.model.on_features(fv)


def _encoded(p: Pipeline, raw: bytes, src: SourceRef) -> None:
    for output in p.process(raw, src):
        output.message.to_bytes()


def _contract_floor(p: Pipeline, raw: bytes, src: SourceRef) -> None:
    """What every tick costs a worker that publishes it as a contract, before any rule."""
    CleanTick(tick=TICK_ADAPTER.validate_json(raw), source=src).to_bytes()


STAGES: tuple[tuple[str, Step], ...] = (
    ("decode JSON (floor)", lambda p, raw, src: TICK_ADAPTER.validate_json(raw)),
    ("decode, wrap, encode a clean tick (floor)", _contract_floor),
    ("validate", lambda p, raw, src: p.screen(raw, src)),
    ("+ features", _features),
    ("+ model (signal, explanation)", _model),
    ("+ risk, execution, monitor, audit", lambda p, raw, src: p.process(raw, src)),
    ("+ encode every output", _encoded),
)


def river_floor(config: TickwiseConfig, payloads: list[bytes], sources: list[SourceRef]) -> float:
    """Seconds the model alone (river's, or the compiled learner: ``model.engine``) spends
    learning and scoring the pipeline's own feature vectors."""
    pipeline = Pipeline(config)
    vectors = []
    for raw, src in zip(payloads, sources, strict=True):
        for v in pipeline.screen(raw, src):
            if isinstance(v, CleanTick):
                fv = pipeline.features.on_tick(v.tick)
                if fv is not None:
                    vectors.append(fv.values)
    estimator = build_estimator(config.model, config.label.task)
    started = time.process_time()
    previous = None
    for x in vectors:
        estimator.predict_proba_one(x)
        if previous is not None:  # learn one label per tick, as the pipeline does once warm
            estimator.learn_one(previous, next(iter(x.values())) > 0.0)
        previous = x
    return time.process_time() - started


def measure(ticks: int, seed: int, config: TickwiseConfig, repeat: int = 3) -> list[dict[str, Any]]:
    """One row per stage: the best of ``repeat`` runs (CPU seconds: this machine's neighbours
    make wall time swing by half), as microseconds and ticks per second."""
    records = list(synthetic(seed, ticks))
    payloads = [r.payload for r in records]
    sources = [SourceRef(topic="file:bench", partition=0, offset=r.index) for r in records]
    best: dict[str, float] = {}
    for _ in range(repeat):
        for name, step in STAGES:
            pipeline = Pipeline(config)
            started = time.process_time()
            for raw, src in zip(payloads, sources, strict=True):
                step(pipeline, raw, src)
            seconds = time.process_time() - started
            best[name] = min(best.get(name, seconds), seconds)
        name = f"{config.model.engine} {config.model.kind} alone (floor)"
        seconds = river_floor(config, payloads, sources)
        best[name] = min(best.get(name, seconds), seconds)
    return [_row(name, seconds, ticks) for name, seconds in best.items()]


def _row(name: str, seconds: float, ticks: int) -> dict[str, Any]:
    return {
        "stage": name,
        "us_per_tick": round(seconds / ticks * 1e6, 1),
        "ticks_per_s": round(ticks / seconds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage; the best counts")
    add_config_argument(parser)
    parser.add_argument("--json", default="benchmarks/results/stages.json")
    args = parser.parse_args(argv)
    rows = measure(args.ticks, args.seed, load_config(args.config), args.repeat)
    print(table(rows, ["stage", "us_per_tick", "ticks_per_s"]))
    write_results(args.json, command_line(), {"ticks": args.ticks, "stages": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cost per tick of every zoo model, measured in the model stage alone and in the whole engine.

Usage: ``python benchmarks/models.py [--ticks 5000] [--out benchmarks/results/models.json]``

For each kind and task: CPU microseconds per tick of ``ModelStage.on_features`` (learn the
matured labels, predict, explain when warm) on precomputed features, the whole columnar
engine's ticks per CPU second (validation to audit, batches of the bulk decoder; numba's cache
warm), the pickled size of one instrument's state, and the prequential figures. CPU time
(``process_time``) rather than wall time, because these machines are shared.
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import time
from pathlib import Path

import river

from tickwise.replay.engine import record_batches
from tickwise.schemas.ticks import TICK_ADAPTER
from tickwise.streams.config import LabelConfig, ModelConfig, TickwiseConfig
from tickwise.streams.engine.run import Engine
from tickwise.streams.operators import FeatureEngine
from tickwise.streams.operators.models import ModelStage, version_key
from tickwise.streams.operators.models.zoo import ZOO
from tickwise.streams.sources import synthetic


def measure(task: str, kind: str, ticks: int) -> dict[str, object]:
    config = TickwiseConfig(
        model=ModelConfig(kind=kind, model_id=kind), label=LabelConfig(horizon_s=1.0, task=task)
    )
    records = list(synthetic(seed=2, count=ticks, instruments=["ES"]))
    engine = FeatureEngine(config.features)
    fvs = [engine.on_tick(TICK_ADAPTER.validate_json(r.payload)) for r in records]

    stage = ModelStage(config.model, config.label, config.evaluation)
    started = time.process_time()
    for fv in fvs:
        stage.on_features(fv)
    stage_s = time.process_time() - started

    whole = Engine(config)
    max_bytes = config.validation.max_message_bytes
    started = time.process_time()
    for batch in record_batches(records, whole.symbols, max_bytes):
        whole.run(batch)
    whole.finish()
    engine_s = time.process_time() - started

    report = stage.metrics("ES")[version_key(kind, 1)]
    return {
        "task": task,
        "kind": kind,
        "ticks": len(fvs),
        "stage_us_per_tick": round(stage_s / len(fvs) * 1e6, 1),
        "engine_ticks_per_cpu_s": round(len(records) / engine_s),
        "state_bytes": len(pickle.dumps(stage.export_state("ES"))),
        "labels_learned": report["n_trained"],
        "prequential": {k: round(v, 4) for k, v in report["overall"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=5000)
    parser.add_argument("--out", default="benchmarks/results/models.json")
    args = parser.parse_args()
    rows = []
    for task, kind in ZOO:
        row = measure(task, kind, args.ticks)
        print(json.dumps(row))
        rows.append(row)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "river": river.__version__,
        "machine": platform.machine(),
        "command": f"python benchmarks/models.py --ticks {args.ticks}",
    }
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

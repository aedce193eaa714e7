"""The columnar engine's floors: reading a file into batches, and the kernels alone.

    python -m benchmarks.engine --repeat 3

On the real ES trades (``../shared/data``; synthetic trades when absent) it times, in CPU
seconds with the best of ``--repeat`` runs, after imports and a warm-up batch:

- ``read``: pyarrow's CSV reader into tick batches, no JSON (``streams.sources.batches``);
- ``validate``, ``features`` and ``model`` (labels and the compiled logistic regression): the
  numba kernels over those batches, state carried across;
- ``decide``: the fused decide kernel (fills, risk, control, the decision rule, execution)
  over the model's scores, and apart from it the rendering of its columns into the decisions,
  orders, fills and audit entries the pipeline publishes (``streams.engine.decide``);
- ``decode_json``: the bulk decoder over the same rows as the JSON a feed publishes (the live
  worker's floor per message before any rule runs).

numba's cost is reported apart: ``compile_cold_s`` compiles every kernel in a fresh process
with an empty cache directory; ``load_warm_s`` is the same first call with the cache on disk.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ES_TRADES, add_config_argument, command_line, table, write_results
from tickwise.streams.config import load_config
from tickwise.streams.engine.batch import SymbolTable, TickBatch, decode
from tickwise.streams.engine.decide import BatchDecide
from tickwise.streams.engine.features import BatchFeatures
from tickwise.streams.engine.models import BatchModel
from tickwise.streams.engine.validate import BatchValidator
from tickwise.streams.sources import ColumnMap, read_csv
from tickwise.streams.sources.batches import read_batches

ES_COLUMNS = ColumnMap(symbol="ES", tz="America/Chicago")
FIRST_CALL = """
import time
t = time.perf_counter()
from benchmarks.engine import warm_up
warm_up()
print(time.perf_counter() - t)
"""


def _cpu(fn: Any, repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        result = fn()
        best = min(best, time.process_time() - started)
    return best, result


def warm_up() -> None:
    """Call every kernel once on a tiny input (what a process pays before its first batch)."""
    from tickwise.streams.sources import synthetic

    config = load_config()
    symbols = SymbolTable()
    payloads = [r.payload for r in synthetic(1, 50, bad_rate=0.1)]
    batch = decode(payloads, symbols, "t", 0, np.arange(50), 16_384)
    _, verdict, _ = BatchValidator(config.validation, symbols).run(batch)
    emit, vectors = BatchFeatures(config.features, symbols).run(batch, verdict == 0)
    scored = BatchModel(config.model, config.label, config.features.feature_set, symbols).run(
        batch, verdict == 0, emit, vectors
    )
    decide = BatchDecide(config, symbols)
    decide.render(batch, decide.run(batch, verdict == 0, emit, scored), vectors, scored)
    if ES_TRADES.exists():
        next(read_batches(ES_TRADES, ES_COLUMNS, SymbolTable(), 16_384, block_bytes=1 << 12))


def _first_call(cache_dir: str | None) -> float:
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", default=str(ES_TRADES), help="a CSV of trades (ES layout)")
    parser.add_argument("--out", default="benchmarks/results/engine.json")
    parser.add_argument("--skip-compile", action="store_true", help="no cold/warm start runs")
    add_config_argument(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    path = Path(args.data)
    if not path.exists():
        print(f"no data at {path}", file=sys.stderr)
        return 2
    warm_up()

    def read() -> list[TickBatch]:
        symbols = SymbolTable()
        return list(read_batches(path, ES_COLUMNS, symbols, 16_384))

    read_s, batches = _cpu(read, args.repeat)
    ticks = sum(len(b) for b in batches)

    def kernels() -> tuple[float, ...]:
        symbols = SymbolTable(["ES"])
        validator = BatchValidator(config.validation, symbols)
        features = BatchFeatures(config.features, symbols)
        model = BatchModel(
            config.model, config.label, config.features.feature_set, symbols, config.decision
        )
        decide = BatchDecide(config, symbols)
        times = [0.0] * 5
        for batch in batches:
            t = [time.process_time()]
            _, verdict, _ = validator.run(batch)  # no reordering here: the same rows
            t.append(time.process_time())
            emit, vectors = features.run(batch, verdict == 0)
            t.append(time.process_time())
            scored = model.run(batch, verdict == 0, emit, vectors)
            t.append(time.process_time())
            cols = decide.run(batch, verdict == 0, emit, scored)
            t.append(time.process_time())
            decide.render(batch, cols, vectors, scored)
            t.append(time.process_time())
            for n in range(5):
                times[n] += t[n + 1] - t[n]
        decide.finish()
        return tuple(times)

    runs = [kernels() for _ in range(args.repeat)]
    validate_s, features_s, model_s, decide_s, render_s = (
        min(r[n] for r in runs) for n in range(5)
    )
    payloads = [r.payload for r in read_csv(path, ES_COLUMNS)]
    decode_s, _ = _cpu(
        lambda: decode(payloads, SymbolTable(), "t", 0, np.arange(len(payloads)), 16_384),
        args.repeat,
    )
    rows = [
        {"stage": "read (pyarrow CSV -> batches)", "cpu_s": read_s},
        {"stage": "validate kernel", "cpu_s": validate_s},
        {"stage": "features kernel", "cpu_s": features_s},
        {"stage": "labels + model kernel", "cpu_s": model_s},
        {
            "stage": "read + validate + features + model",
            "cpu_s": read_s + validate_s + features_s + model_s,
        },
        {"stage": "decide kernel", "cpu_s": decide_s},
        {"stage": "render decisions, orders, fills, audit", "cpu_s": render_s},
        {
            "stage": "read + validate + features + model + decide + render",
            "cpu_s": read_s + validate_s + features_s + model_s + decide_s + render_s,
        },
        {"stage": "decode_json (wire bytes -> batch)", "cpu_s": decode_s},
    ]
    for row in rows:
        row["ticks_per_cpu_s"] = round(ticks / row["cpu_s"]) if row["cpu_s"] else None
        row["us_per_tick"] = row["cpu_s"] / ticks * 1e6
    results: dict[str, Any] = {"ticks": ticks, "feature_set": list(config.features.feature_set)}
    results["stages"] = rows
    if not args.skip_compile:
        with tempfile.TemporaryDirectory() as cold:
            results["compile_cold_s"] = _first_call(cold)
            results["load_warm_s"] = _first_call(cold)
    print(f"{ticks:,} ticks from {path.name}, best of {args.repeat} (CPU seconds)")
    print(table(rows, ["stage", "cpu_s", "us_per_tick", "ticks_per_cpu_s"]))
    if "compile_cold_s" in results:
        print(
            f"first call of every kernel: {results['compile_cold_s']:.2f} s compiling "
            f"(empty cache), {results['load_warm_s']:.2f} s with the cache on disk"
        )
    write_results(args.out, command_line(), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

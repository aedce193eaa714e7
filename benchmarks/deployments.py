"""What a rollout costs a backtest: the engine on its model kernel, with a second version in
shadow (river's stage inside the engine, handed the kernel's state), and with river's tree.

    python -m benchmarks.deployments                 # the first 20,000 real ES trades
    python -m benchmarks.deployments --limit 5000    # a quick run

Each row is ``run_engine_backtest`` in this process over the same rows (read into memory
first, outside the timing), after a run over the first 2,000 that pays for imports and
numba's cache; CPU seconds (``process_time``), best of ``--repeat``. At every tick (the
built-in config) and at the 1 s cadence (``cadence-1s.toml``): the cadence bounds what river's
stage costs, as it runs per decided tick.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

from benchmarks.common import CADENCE, ES_TRADES, RESULTS, command_line, table, write_results

SHADOW = {"model_id": "v2", "model_version": 2, "learning_rate": 0.05}
ROWS = {
    "kernel (the default)": ({}, None),
    "kernel + a compiled version in shadow": ({}, SHADOW),
    "river's hoeffding_tree configured": ({"kind": "hoeffding_tree"}, None),
}
CADENCES = {"every tick": None, "1 s": CADENCE}


def measure(limit: int, repeat: int) -> list[dict[str, Any]]:
    """Every row at both cadences."""
    from tickwise.replay.engine import record_batches, run_engine_backtest
    from tickwise.schemas.decisions import ControlCommand
    from tickwise.streams.config import ModelConfig, load_config
    from tickwise.streams.sources import ColumnMap, read_file

    records = list(
        islice(read_file(ES_TRADES, ColumnMap(symbol="ES", tz="America/Chicago")), limit)
    )

    def run(config: Any, controls: list[ControlCommand], n: int) -> tuple[int, int, float]:
        with tempfile.TemporaryDirectory(prefix="tickwise-bench-deploy-") as out:
            rows = records[:n]
            started = time.process_time()
            result = run_engine_backtest(
                lambda symbols: record_batches(iter(rows), symbols, 16_384), config, Path(out),
                controls,
            )  # fmt: skip
            return result.ticks, result.decisions, time.process_time() - started

    out = []
    for cadence, path in CADENCES.items():
        for name, (model, shadow) in ROWS.items():
            config = load_config(str(path) if path else None, model=model or None)
            controls = []
            if shadow is not None:
                spec = ModelConfig(**shadow)
                controls = [
                    ControlCommand(
                        command_id="shadow", command="promote", scope="global",
                        reason="benchmark", operator="bench", ts_event_ns=1,
                        model_id=spec.model_id, model_version=spec.model_version,
                        stage="shadow", model_spec=spec.model_dump(),
                    )
                ]  # fmt: skip
            run(config, controls, 2_000)
            ticks, decisions, cpu = min((run(config, controls, limit) for _ in range(repeat)),
                                        key=lambda r: r[2])  # fmt: skip
            out.append(
                {
                    "model stage": name,
                    "cadence": cadence,
                    "ticks": ticks,
                    "decisions": decisions,
                    "cpu_s": round(cpu, 3),
                    "ticks_per_cpu_s": round(ticks / cpu),
                    "cpu_us_per_tick": round(cpu / ticks * 1e6, 2),
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20_000, help="ES trades read")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row (the best counts)")
    parser.add_argument("--out", default=str(RESULTS / "deployments.json"), help="result JSON")
    args = parser.parse_args(argv)
    if not ES_TRADES.exists():
        print(f"the real ES trades are not at {ES_TRADES}")
        return 1
    rows = measure(args.limit, args.repeat)
    columns = ["model stage", "cadence", "ticks", "decisions", "cpu_s", "ticks_per_cpu_s"]
    print(table(rows, [*columns, "cpu_us_per_tick"]))
    write_results(args.out, command_line(), {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmark scripts still run: tiny inputs, their JSON results and their pure helpers.

Why: benchmarks are not tests and nobody runs them on every change, so they rot silently. These
run the broker-free ones end to end on a few hundred ticks (seconds, not minutes) and check the
arithmetic the broker-bound ones rely on. No speed is asserted here; speed lives in benchmarks/.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ES_TRADES = REPO / ".." / "shared" / "data" / "es_trades_2013-09-01T17_to_09-03T09.csv.gz"
if str(REPO) not in sys.path:  # the benchmarks are run from the repo root as modules
    sys.path.insert(0, str(REPO))

from benchmarks import (  # noqa: E402
    common,
    deployments,
    live,
    profile_backtest,
    replay,
    scaleout,
    watch,
)


def _run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(not ES_TRADES.exists(), reason=f"real ES trades absent at {ES_TRADES}")
def test_replay_without_peers_says_so_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "replay.json"
    stdout = _run("benchmarks.replay", "--limit", "400", "--no-peers", "--out", str(out))
    assert "backtrader part skipped: --no-peers" in stdout
    assert "nautilus part skipped: --no-peers" in stdout
    result = json.loads(out.read_text())
    (row,) = result["results"]["rows"]
    assert row["side"] == "tickwise" and row["ticks"] == 400 and row["model"] == "logistic"
    assert row["peak_rss_mb"] > 0 and row["ticks_per_s"] > 0
    assert not any(k.startswith("ratio") for k in result["results"])
    assert result["meta"]["nproc"] >= 1 and "--limit 400" in result["meta"]["command"]


@pytest.mark.skipif(not ES_TRADES.exists(), reason=f"real ES trades absent at {ES_TRADES}")
def test_deployments_measures_each_model_stage_at_both_cadences(tmp_path: Path) -> None:
    out = tmp_path / "deployments.json"
    printed = _run("benchmarks.deployments", "--limit", "1500", "--repeat", "1", "--out", str(out))
    rows = json.loads(out.read_text())["results"]["rows"]
    assert [(r["model stage"], r["cadence"]) for r in rows] == [
        (stage, cadence) for cadence in ("every tick", "1 s") for stage in deployments.ROWS
    ]
    assert all(r["ticks"] == 1_500 and r["ticks_per_cpu_s"] > 0 for r in rows)
    assert "compiled version in shadow" in printed


def test_zoo_plan_runs_every_model_at_both_cadences_and_caps_only_the_slow() -> None:
    from tickwise.streams.operators.models.zoo import ZOO

    plan = replay.zoo_plan(20_000, {"arf"}, 5_000)
    assert {(p["task"], p["kind"], p["cadence"]) for p in plan} == {
        (task, kind, cadence) for task, kind in ZOO for cadence in ("every tick", "1 s")
    }
    assert len(plan) == 2 * len(ZOO)
    capped = {(p["kind"], p["cadence"]) for p in plan if p["limit"] == 5_000}
    assert capped == {("arf", "every tick")}
    assert all(p["limit"] == 20_000 for p in plan if (p["kind"], p["cadence"]) not in capped)
    # a quicker run than the cap keeps its own size; no cap when asked for none
    assert {p["limit"] for p in replay.zoo_plan(300, {"arf"}, 5_000)} == {300}
    assert {p["limit"] for p in replay.zoo_plan(None, set(), 5_000)} == {None}
    assert replay.parse_args(["--zoo"]).out.endswith("replay-zoo.json")
    with pytest.raises(SystemExit):  # the zoo writes its own configs: a --config would be lost
        replay.parse_args(["--zoo", "--config", str(common.CADENCE)])


def test_zoo_config_puts_the_model_and_task_under_each_cadence(tmp_path: Path) -> None:
    from tickwise.streams.config import load_config

    every = load_config(str(replay.zoo_config("arf", "regression", "every tick", tmp_path)))
    cadence = load_config(str(replay.zoo_config("mlp", "classification", "1 s", tmp_path)))
    assert (every.model.kind, every.label.task, every.features.sample_ms) == (
        "arf",
        "regression",
        0.0,
    )
    assert (cadence.model.kind, cadence.label.task, cadence.features.sample_ms) == (
        "mlp",
        "classification",
        1000.0,
    )
    assert cadence.audit == load_config(str(common.CADENCE)).audit


def test_zoo_table_and_json_are_what_the_runs_report() -> None:
    planned = {"kind": "pa", "task": "regression", "cadence": "1 s", "limit": 400}
    report = {"model": "pa", "task": "regression", "model_stage": "river", "ticks": 400}
    report |= {"ticks_per_s": 900, "ticks_per_cpu_s": 1_000, "decisions": 3, "decided_ticks": 40}
    row = replay.zoo_row(planned, report, 123.456)
    assert row == {"kind": "pa", "cadence": "1 s", **report, "peak_rss_mb": 123.5}
    with pytest.raises(RuntimeError, match="asked for"):
        replay.zoo_row({**planned, "kind": "arf"}, report, 1.0)
    other = {**row, "kind": "linear", "model_stage": "compiled", "ticks_per_cpu_s": 8_000}
    peers = [
        {"side": "backtrader", "ticks_per_cpu_s": 4_000},
        {"side": "nautilus", "ticks_per_cpu_s": 500},
    ]
    results = replay.zoo_results([row, other], peers, {"x": "why"})
    assert [r["over_backtrader_cpu"] for r in results["zoo"]] == [0.25, 2.0]
    assert [r["over_nautilus_cpu"] for r in results["zoo"]] == [2.0, 16.0]
    assert results["compiled"] == ["linear/regression"]
    assert results["peers"] == peers and results["skipped"] == {"x": "why"}
    assert "over_backtrader_cpu" not in row  # the reported rows are left as reported
    table = common.table(results["zoo"], replay.ZOO_COLUMNS).splitlines()
    assert table[2].split()[:6] == ["pa", "regression", "1", "s", "river", "400"]
    assert table[3].split()[:5] == ["linear", "regression", "1", "s", "compiled"]


@pytest.mark.skipif(not ES_TRADES.exists(), reason=f"real ES trades absent at {ES_TRADES}")
def test_zoo_run_names_the_model_stage(tmp_path: Path) -> None:
    """Every kind runs through ``tickwise backtest``: the compiled learner on the kernel, a
    river kind on river's stage, each run on the ticks asked for."""
    rows = {}
    for kind, task in (("linear", "regression"), ("pa", "classification")):
        config = replay.zoo_config(kind, task, "every tick", tmp_path)
        rows[kind] = replay.zoo_child(ES_TRADES, 600, str(config))
    assert rows["linear"]["model_stage"] == "compiled" and rows["pa"]["model_stage"] == "river"
    for kind, task in (("linear", "regression"), ("pa", "classification")):
        assert (rows[kind]["model"], rows[kind]["task"], rows[kind]["ticks"]) == (kind, task, 600)
        assert 0 < rows[kind]["decided_ticks"] <= 600


def test_memory_benchmark_samples_and_reports_peak(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    _run("benchmarks.backtest_memory", "--ticks", "600", "--every", "200", "--out", str(out))
    result = json.loads(out.read_text())["results"]
    assert result["ticks"] == 600
    assert [s["ticks"] for s in result["samples"]] == [200, 400, 600]
    assert result["peak_rss_mb"] >= max(s["rss_mb"] for s in result["samples"]) - 1.0


def test_the_cadence_config_reaches_the_backtest_and_is_reported(tmp_path: Path) -> None:
    """``--config`` is what the benchmark runs under: the same ticks decide far less often
    once per second of event time, and the JSON says which cadence the figures belong to."""
    rows = {}
    every_tick = tmp_path / "every.toml"  # every decision published, as the cadence config does
    every_tick.write_text('[audit]\nholds = "each"\n')
    for name, extra in (
        ("every", ["--config", str(every_tick)]),
        ("cadence", ["--config", str(common.CADENCE)]),
    ):
        out = tmp_path / f"{name}.json"
        _run("benchmarks.backtest_memory", "--ticks", "15000", "--out", str(out), *extra)
        rows[name] = json.loads(out.read_text())["results"]
    assert rows["every"]["sample_ms"] == 0.0 and rows["cadence"]["sample_ms"] == 1000.0
    assert 0 < rows["cadence"]["decisions"] < rows["every"]["decisions"] / 5


def test_startup_times_every_help_and_names_the_parser_imports(tmp_path: Path) -> None:
    out = tmp_path / "startup.json"
    _run("benchmarks.startup", "--runs", "2", "--no-backtest", "--top", "5", "--out", str(out))
    result = json.loads(out.read_text())["results"]
    rows = {row["command"]: row for row in result["rows"]}
    assert {"tickwise --help", "tickwise backtest --help", "python -c pass (floor)"} <= set(rows)
    assert "tickwise backtest (one tick)" not in rows
    for row in rows.values():
        assert row["runs"] == 2 and 0 < row["min_s"] <= row["median_s"] <= row["max_s"]
    assert (
        "under_0_5_s" in rows["tickwise --help"]
        and "under_0_5_s" not in rows["import tickwise.streams.cli"]
    )
    assert len(result["build_parser_slowest_imports"]) == 5
    assert result["build_parser_heavy_loaded"] == []


def test_live_arguments_default_to_the_issue_rates() -> None:
    args = live.parse_args([])
    assert [int(r) for r in args.rates.split(",")] == [1000, 5000, 20000]
    quick = live.parse_args(["--ticks", "2000", "--seconds", "2", "--skip-latency"])
    assert quick.ticks == 2000 and quick.seconds == 2.0 and quick.skip_latency


def test_latency_under_a_cadence_waits_only_for_the_ticks_that_decide(tmp_path) -> None:
    every_tick = tmp_path / "every.toml"
    every_tick.write_text('[audit]\nholds = "each"\n')
    assert live.deciding_ticks(str(every_tick), 100, 100) is None  # every tick decides once warm
    deciding = live.deciding_ticks(str(common.CADENCE), 6000, 3000)
    offered = {
        json.loads(r.payload)["tick_id"]
        for r in live.islice(live.synthetic(live.SEED, 9000), 6000, None)
    }
    # one decision per instrument per second of event time: a few percent of the ticks
    assert deciding and deciding <= offered and len(deciding) < len(offered) / 10


def test_nearest_rank_percentiles_and_late_ticks() -> None:
    values = sorted(float(v) for v in range(1, 1001))
    assert live.percentile(values, 50) == 500.0
    assert live.percentile(values, 99) == 990.0
    assert live.percentile(values, 99.9) == 999.0
    # a tick never decided counts as infinitely late, so it shows at the top percentiles
    assert live.percentile([*values[:-1], float("inf")], 99.9) == 999.0
    assert live.percentile([*values[:-2], float("inf"), float("inf")], 99.9) == float("inf")


def test_span_rate_counts_ticks_over_the_output_span() -> None:
    rate, first, last = live.span_rate([2_000, 1_000, 3_000], ticks=500)
    assert (first, last) == (1_000, 3_000) and rate == pytest.approx(250.0)


def test_output_topics_exclude_the_input_control_and_the_registry() -> None:
    names = live.output_topics("p.")
    assert not {"p.ticks.raw", "p.control", "p.registry"} & set(names)
    assert {"p.ticks.clean", "p.decisions", "p.audit"} <= set(names)


def test_watchtower_lag_is_what_was_produced_and_not_yet_checked_at_each_sample() -> None:
    produced = [1_000, 1_000, 2_000, 3_000, 3_500]  # CreateTime, ms
    samples = [
        watch.Sample(0.5, 0),  # nothing produced yet
        watch.Sample(1.5, 1),  # two produced at 1.0 s, one checked: the other 0.5 s old
        watch.Sample(3.2, 2),  # four produced: two behind, the oldest made at 2.0 s
        watch.Sample(4.0, 5),  # all checked, 0.5 s after the last one was made
        watch.Sample(4.5, 5),
    ]
    figures = watch.lag_figures(produced, samples)
    assert [(p["behind"], p["lag_s"]) for p in figures["series"]] == [
        (0, 0.0),
        (1, 0.5),
        (2, 1.2),
        (0, 0.0),
        (0, 0.0),
    ]
    assert (figures["records"], figures["max_behind"], figures["max_lag_s"]) == (5, 2, 1.2)
    assert figures["catch_up_s"] == 0.5
    never = watch.lag_figures(produced, samples[:3])
    assert never["catch_up_s"] is None and never["max_behind"] == 2


def test_watch_benchmark_writes_the_watch_section_itself(tmp_path: Path) -> None:
    path = watch.watch_config(None, tmp_path, "g1", "workers")
    config = tomllib.loads(Path(path).read_text())
    assert config["audit"]["holds"] == "each" and config["decision"]["rule"] == "threshold"
    lookback = watch.LOOKBACK_S
    assert config["watch"] == {
        "group_id": "g1",
        "worker_group": "workers",
        "stale_after_s": lookback,
    }
    defaults = tomllib.loads(Path(watch.watch_config("defaults", tmp_path, "g3", "w")).read_text())
    assert defaults == {"watch": {"group_id": "g3", "worker_group": "w", "stale_after_s": lookback}}
    mine = tmp_path / "mine.toml"
    mine.write_text("[watch]\nstale_after_s = 5\n")
    with pytest.raises(SystemExit, match=r"\[watch\]"):
        watch.watch_config(str(mine), tmp_path, "g2", "workers")


def test_scaleout_instruments_fill_both_partitions_evenly() -> None:
    names = scaleout.balanced_instruments()
    buckets = [zlib.crc32(n.encode()) % scaleout.PARTITIONS for n in names]
    assert sorted(buckets) == [0, 0, 1, 1]


def test_table_and_results_json(tmp_path: Path) -> None:
    text = common.table([{"a": 12345, "b": 0.5}], ["a", "b"])
    assert text.splitlines()[-1].split() == ["12,345", "0.5"]
    path = common.write_results(tmp_path / "x.json", "cmd", {"k": 1})
    data = json.loads(path.read_text())
    assert data["results"] == {"k": 1} and data["meta"]["command"] == "cmd"


def test_profile_summary_counts_only_samples_under_the_backtest() -> None:
    site = "/venv/lib/python3.11/site-packages/pydantic/main.py"
    raw = "\n".join(
        [
            f"main (cli.py:1);run_engine_backtest (replay/engine.py:9);dump ({site}:5) 6",
            "main (cli.py:1);run_engine_backtest (replay/engine.py:9);g (x.py:2);h (x.py:3) 4",
            "main (cli.py:1);import_module (importlib/__init__.py:126) 50",
        ]
    )
    s = profile_backtest.summarise(raw)
    assert s["samples"] == 10
    assert s["self"] == [("dump (pydantic/main.py)", 6), ("h (x.py)", 4)]
    assert dict(s["total"])["run_engine_backtest (replay/engine.py)"] == 10
    assert "main (cli.py)" not in dict(s["total"])
    assert dict(s["files"]) == {"pydantic/main.py": 6, "x.py": 4}


def test_linear_kernel_benchmark_reports_calls_and_numba_costs(tmp_path: Path) -> None:
    out = tmp_path / "linear_kernel.json"
    _run("benchmarks.linear_kernel", "--ticks", "300", "--repeat", "1", "--json", str(out))
    result = json.loads(out.read_text())["results"]
    assert set(result["numba"]) == {"cold cache (compile)", "warm cache (load)"}
    assert all(v["first_calls_s"] > 0 for v in result["numba"].values())
    rows = {(r["kind"], r["how"]): r for r in result["rows"]}
    for kind in ("logistic", "linear"):
        assert rows[(kind, "river")]["vs_river"] == 1.0
        for how in ("compiled, dicts", "kernel, per row", "kernel, batch", "stage, compiled"):
            assert rows[(kind, how)]["us_per_tick"] > 0

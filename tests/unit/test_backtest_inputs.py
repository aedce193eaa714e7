"""Inputs that do not arrive in one global time order still give one sound equity curve."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pandas as pd

from tickwise.replay.engine import run_backtest
from tickwise.schemas.decisions import AUDIT_ADAPTER, Decision
from tickwise.streams.cli import main
from tickwise.streams.config import load_config
from tickwise.streams.sources import synthetic


def by_instrument(out: Path) -> dict[str, list[bytes]]:
    """The audit chain of each instrument: its decisions' records and its summaries of holds."""
    got: dict[str, list[bytes]] = defaultdict(list)
    for line in (out / "audit.jsonl").read_bytes().splitlines():
        got[AUDIT_ADAPTER.validate_json(line).instrument].append(line)
    return dict(got)


def times_never_go_back(out: Path) -> bool:
    times = pd.to_datetime(pd.read_csv(out / "equity.csv")["time"], utc=True, format="ISO8601")
    return bool(times.is_monotonic_increasing)


def test_instruments_slightly_out_of_order_are_marked_at_the_latest_time(tmp_path: Path) -> None:
    records = list(synthetic(seed=8, count=3000))
    shuffled = list(records)
    for i in range(0, len(shuffled) - 1, 7):  # swap neighbours of different instruments
        a, b = shuffled[i], shuffled[i + 1]
        if a.key != b.key:
            shuffled[i], shuffled[i + 1] = b, a
    config = load_config()
    run_backtest(iter(records), config, tmp_path / "ordered")
    run_backtest(iter(shuffled), config, tmp_path / "shuffled")
    # per-instrument state: the interleaving of instruments cannot change a decision
    assert by_instrument(tmp_path / "shuffled") == by_instrument(tmp_path / "ordered")
    report = json.loads((tmp_path / "shuffled" / "report.json").read_text())
    assert report["run"]["late_ticks_marked_at_latest_time"] > 0
    assert times_never_go_back(tmp_path / "shuffled")


def write_csv(path: Path, symbol: str, rows: list[tuple[str, float]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "symbol", "price", "size"])
        for t, p in rows:
            w.writerow([t, symbol, p, 1])


def test_files_per_instrument_are_merged_in_event_time(tmp_path: Path) -> None:
    start = pd.Timestamp("2024-01-02T14:30:00Z")
    path_a, path_b = tmp_path / "es.csv", tmp_path / "nq.csv"
    es = [
        (start + pd.Timedelta(milliseconds=37 * i), 4700.0 + (i * 7 % 11) * 0.25)
        for i in range(1500)
    ]
    nq = [
        (start + pd.Timedelta(milliseconds=41 * i), 16800.0 + (i * 5 % 13) * 0.25)
        for i in range(1500)
    ]
    write_csv(path_a, "ES", [(t.isoformat(), p) for t, p in es])
    write_csv(path_b, "NQ", [(t.isoformat(), p) for t, p in nq])
    out = tmp_path / "out"
    args = ["backtest", "--data", str(path_a), str(path_b), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["ticks"] == 3000
    assert report["run"]["late_ticks_marked_at_latest_time"] == 0  # merged, so none is late
    assert times_never_go_back(out)
    assert set(by_instrument(out)) == {"ES", "NQ"}


def test_event_time_warmup_trades_nothing_and_the_report_starts_after_it(tmp_path: Path) -> None:
    records = list(synthetic(seed=12, count=4000))
    t0 = records[0].ts_event_ns
    assert t0 is not None
    until = t0 + 10 * 10**9
    run_backtest(iter(records), load_config(), tmp_path, warmup_ns=10 * 10**9)
    decisions = [
        Decision.model_validate_json(x)
        for x in (tmp_path / "decisions.jsonl").read_bytes().splitlines()
    ]
    early = [d for d in decisions if d.ts_event_ns < until]
    assert early, "the model must be deciding (learning) during the warm-up"
    assert all(d.position_after == 0.0 for d in early)
    assert any("KILL_SWITCH" in d.reject_reasons for d in early)
    fills = (tmp_path / "fills.jsonl").read_bytes().splitlines()
    assert fills and all(json.loads(f)["order_ts_event_ns"] >= until for f in fills)
    report = json.loads((tmp_path / "report.json").read_text())
    assert pd.Timestamp(report["start"]) >= pd.Timestamp(until, unit="ns", tz="UTC")
    assert report["warmup"]["until"] is not None and report["n_trades"] == len(fills)

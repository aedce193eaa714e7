"""Determinism and causality of ``tickwise backtest``.

Determinism: two runs on the same input write byte-identical outputs. Causality: a run on a
prefix of the input decides exactly as the full run did up to the end of that prefix, so no
decision can depend on data that arrived after it.
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pytest
import stubs

from tickwise.replay.engine import run_backtest
from tickwise.schemas.decisions import Decision
from tickwise.streams.config import load_config
from tickwise.streams.sources import ColumnMap, RawRecord, read_csv, synthetic

ES = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "es_trades_2013-09-01T17_to_09-03T09.csv.gz"
)
DETERMINISTIC_OUTPUTS = ("decisions.jsonl", "audit.jsonl", "fills.jsonl", "equity.csv")


def lines(out: Path, name: str = "decisions.jsonl") -> list[bytes]:
    return (out / name).read_bytes().splitlines()


@pytest.fixture(scope="module")
def records() -> list[RawRecord]:
    return list(synthetic(seed=21, count=5000, bad_rate=0.01))


# the default (HOLDs summarised, signals sampled), and every decided tick published on its own
MODES = {
    "default": {},
    "every-tick": {"audit": {"holds": "each"}, "signals": {"every": "decision"}},
}
MIN_DECISIONS = {"default": 20, "every-tick": 500}


@pytest.fixture(scope="module", params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def full(records: list[RawRecord], mode: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full")
    run_backtest(iter(records), load_config(**MODES[mode]), out)
    return out


def test_two_runs_are_byte_identical(
    records: list[RawRecord], full: Path, mode: str, tmp_path: Path
) -> None:
    run_backtest(iter(records), load_config(**MODES[mode]), tmp_path)
    assert len(lines(full)) > MIN_DECISIONS[mode]
    for name in (*DETERMINISTIC_OUTPUTS, "report.json", "report.html"):
        assert (full / name).read_bytes() == (tmp_path / name).read_bytes(), name


@pytest.mark.parametrize("cut", [1200, 3333])
def test_a_prefix_decides_exactly_like_the_full_run(
    records: list[RawRecord], full: Path, mode: str, tmp_path: Path, cut: int
) -> None:
    run_backtest(iter(records[:cut]), load_config(**MODES[mode]), tmp_path / "prefix")
    whole, prefix = lines(full), lines(tmp_path / "prefix")
    ids = _tick_ids(records[:cut])
    decided_in_prefix = [line for line in whole if _tick_of(line) in ids]
    assert prefix == whole[: len(prefix)]
    assert prefix == decided_in_prefix
    # the paper account's history agrees too: fills and equity rows up to the cut
    for name in ("fills.jsonl", "audit.jsonl"):
        part = lines(tmp_path / "prefix", name)
        if name == "audit.jsonl":  # the runs the prefix's end closed are still open in the whole
            part = stubs.open_at_end(part)
        assert part == lines(full, name)[: len(part)], name


def _tick_of(line: bytes) -> str:
    return Decision.model_validate_json(line).tick_id


def _tick_ids(records: list[RawRecord]) -> set[str]:
    ids = set()
    for rec in records:
        try:
            ids.add(json.loads(rec.payload)["tick_id"])
        except (ValueError, KeyError, TypeError):
            continue  # an injected bad tick: nothing can be decided on it
    return ids


def test_prefix_of_real_es_trades_decides_like_the_full_run(mode: str, tmp_path: Path) -> None:
    if not ES.exists():
        pytest.skip(f"{ES} is absent")
    recs = list(islice(read_csv(ES, ColumnMap(symbol="ES", tz="America/Chicago")), 6000))
    config = load_config(**MODES[mode])
    run_backtest(iter(recs), config, tmp_path / "full")
    run_backtest(iter(recs[:4000]), config, tmp_path / "prefix")
    full, prefix = lines(tmp_path / "full"), lines(tmp_path / "prefix")
    if mode == "every-tick":  # the default trades nothing this early: its audit is summaries
        assert len(prefix) > 100
    audit = stubs.open_at_end(lines(tmp_path / "prefix", "audit.jsonl"))
    assert len(audit) > 10
    assert audit == lines(tmp_path / "full", "audit.jsonl")[: len(audit)]
    assert prefix == full[: len(prefix)]
    cut_ids = _tick_ids(recs[:4000])
    assert all(_tick_of(x) not in cut_ids for x in full[len(prefix) :])

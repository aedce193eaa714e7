"""``tickwise backtest --count N`` on one file: the first N rows through the block reader the
whole file goes through, with the same outcome as a file of those rows alone."""

from __future__ import annotations

import gzip
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stubs import ES_TRADES

from tickwise.replay.backtest import FILES
from tickwise.replay.command import first_rows
from tickwise.streams.cli import main
from tickwise.streams.engine.batch import SymbolTable
from tickwise.streams.sources import ColumnMap
from tickwise.streams.sources.batches import read_batches

COLUMNS = ColumnMap(symbol="ES", tz="America/Chicago")
ROWS = 3_000


@pytest.fixture(scope="module")
def es_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not ES_TRADES.exists():
        pytest.skip(f"real ES trades not found at {ES_TRADES}")
    path = tmp_path_factory.mktemp("es") / "es.csv"
    with gzip.open(ES_TRADES, "rt") as src, open(path, "w") as dst:
        dst.writelines(islice(src, ROWS + 1))
    return path


@settings(max_examples=25, deadline=None)
@given(block=st.integers(64, 1 << 16), count=st.none() | st.integers(0, ROWS + 10))
def test_first_rows_are_the_files_first_rows_whatever_the_blocks(
    es_file: Path, block: int, count: int | None
) -> None:
    whole = list(read_batches(es_file, COLUMNS, SymbolTable(), 16_384, block))
    cut = list(first_rows(read_batches(es_file, COLUMNS, SymbolTable(), 16_384, block), count))
    n = ROWS if count is None else min(count, ROWS)
    assert sum(len(b) for b in cut) == n
    assert all(len(b) for b in cut)  # no empty batch goes on
    for name in ("ts", "price", "size", "offsets"):
        want = np.concatenate([getattr(b, name) for b in whole])[:n]
        got = np.concatenate([getattr(b, name) for b in cut]) if cut else want[:0]
        assert np.array_equal(got, want), name
    ids = [t for b in cut for t in b.tick_ids]
    assert ids == [t for b in whole for t in b.tick_ids][:n]


def test_count_backtests_what_a_file_of_those_rows_backtests(es_file: Path, tmp_path: Path) -> None:
    head = tmp_path / "es.csv"  # the same name: tick ids carry it
    with open(es_file) as src, open(head, "w") as dst:
        dst.writelines(islice(src, 1_801))
    common = ["backtest", "--symbol", "ES", "--tz", "America/Chicago", "--no-progress"]
    cut = ["--data", str(es_file), "--count", "1800", "--out", str(tmp_path / "a")]
    assert main([*common, *cut]) == 0
    assert main([*common, "--data", str(head), "--out", str(tmp_path / "b")]) == 0
    for name in FILES.values():
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    audit = (tmp_path / "a" / FILES["audit"]).read_bytes()
    assert audit.count(b"\n") > 0  # the run decided something (its HOLDs summarised)

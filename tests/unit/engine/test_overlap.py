"""A replay reads a batch ahead and writes a batch behind the engine (``streams.engine.overlap``)
and numbers instruments as if it had not: the threads change when work is done, never what."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_backtest_engine import SETTINGS, TRADING, compare

from tests.oracle.backtest import run_per_tick_backtest
from tickwise.replay.engine import record_batches, run_engine_backtest
from tickwise.schemas.decisions import ControlCommand
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.engine.batch import SymbolTable, decode
from tickwise.streams.engine.decide import Rendered
from tickwise.streams.engine.overlap import WriteBehind, read_ahead
from tickwise.streams.engine.run import BatchOutput, Renumber, Validated
from tickwise.streams.sources import RawRecord, synthetic


class Boom(Exception):
    pass


def failing(items: list[int], fail_at: int | None) -> Iterator[int]:
    for i, item in enumerate(items):
        if i == fail_at:
            raise Boom(i)
        yield item


@given(st.lists(st.integers(), max_size=30), st.integers(0, 30) | st.none(), st.integers(1, 4))
def test_reading_ahead_gives_what_reading_gives(
    items: list[int], fail_at: int | None, depth: int
) -> None:
    got: list[int] = []
    fails = fail_at is not None and fail_at < len(items)
    with pytest.raises(Boom) if fails else nullcontext():
        got.extend(read_ahead(failing(items, fail_at), depth))
    assert got == (items[:fail_at] if fails else items)


def test_closing_early_stops_the_reader() -> None:
    taken: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            taken.append(n)
            yield n
            n += 1

    before = threading.active_count()
    ahead = read_ahead(endless(), depth=2)
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert threading.active_count() == before
    assert len(taken) <= 5 + 3  # read no further than its queue and the item in hand


@given(st.lists(st.integers(), max_size=30), st.integers(0, 30) | st.none())
def test_writing_behind_takes_each_item_once_in_order(
    items: list[int], fail_at: int | None
) -> None:
    taken: list[int] = []

    def take(item: int) -> None:
        if len(taken) == fail_at:
            raise Boom(item)
        taken.append(item)

    fails = fail_at is not None and fail_at < len(items)
    with pytest.raises(Boom) if fails else nullcontext(), WriteBehind(take) as behind:
        for item in items:
            behind.put(item)
    assert taken == (items[:fail_at] if fails else items)


def test_an_error_in_the_caller_still_writes_what_was_put() -> None:
    taken: list[int] = []
    with pytest.raises(Boom), WriteBehind(taken.append) as behind:
        behind.put(1)
        behind.put(2)
        raise Boom
    assert taken == [1, 2]


names = st.sampled_from(["ES", "NQ", "CL", "GC", "ZN", "6E"])


@given(
    st.lists(
        st.tuples(st.lists(names, min_size=1, max_size=6), st.lists(names, max_size=2)),
        max_size=8,
    )
)
def test_renumbering_numbers_as_the_engine_reading_itself_would(
    steps: list[tuple[list[str], list[str]]],
) -> None:
    """Each step: a batch's instruments, then the instruments commands name while it is
    decided. Read by the engine itself, a batch registers its names just before it is
    decided; read ahead, every batch is read before any is decided."""
    alone = SymbolTable()
    for rows, commands in steps:
        for name in rows:
            alone.index(name)
        for name in commands:
            alone.index(name)

    reading, symbols = SymbolTable(), SymbolTable()
    read = []
    for rows, _ in steps:  # all read first, the reader as far ahead as it can be
        instrument = np.array([reading.index(n) for n in rows], np.int32)
        read.append((instrument, len(reading)))
    renumber = Renumber(reading, symbols)
    for (rows, commands), (instrument, n) in zip(steps, read, strict=True):
        got = renumber(_validated(instrument, n)).batch.instrument
        assert [symbols.names[k] for k in got.tolist()] == rows
        for name in commands:
            symbols.index(name)
    assert symbols.names == alone.names


def _validated(instrument: np.ndarray, symbols: int) -> Validated:
    """A validated batch of clean rows of ``instrument``, no vectors (all ``Renumber`` reads)."""
    n = instrument.size
    batch = replace(EMPTY, instrument=instrument)
    return Validated(
        batch, np.ones(n, np.bool_), {}, np.zeros(n, np.bool_), np.zeros((0, 1)), symbols
    )


EMPTY = decode([], SymbolTable(), "t", 0, np.zeros(0, np.int64), 1_000)


def test_a_command_naming_an_instrument_before_its_ticks_replays_as_the_pipeline_does(
    tmp_path: Path,
) -> None:
    """A kill switch on CL from the start, and CL's ticks only later: the engine numbers CL
    before the instruments read ahead of it, and writes what the per-tick runner writes."""
    early = list(synthetic(4, 3_000, instruments=["ES", "NQ"]))
    late = list(synthetic(5, 3_000, instruments=["ES", "NQ", "CL"]))
    shift = early[-1].ts_event_ns + 1_000_000 - late[0].ts_event_ns
    records: list[RawRecord] = [*early, *(_later(r, shift, i) for i, r in enumerate(late))]
    kill = ControlCommand(
        command_id="cl-off", command="kill_switch_on", scope="CL", reason="test", operator="q",
        ts_event_ns=1, effective_ts_event_ns=records[0].ts_event_ns,
    )  # fmt: skip
    config: TickwiseConfig = TRADING
    want = run_per_tick_backtest(records, config, tmp_path / "tick", [kill], settings=SETTINGS)
    got = run_engine_backtest(
        lambda symbols: record_batches(iter(records), symbols, 16_384, size=700),
        config,
        tmp_path / "engine",
        [kill],
        settings=SETTINGS,
    )
    compare(tmp_path / "engine", tmp_path / "tick")
    assert got.decisions == want.decisions > 0
    assert b'"instrument":"CL"' in (tmp_path / "engine" / "decisions.jsonl").read_bytes()


def _later(record: RawRecord, shift: int, i: int) -> RawRecord:
    """``record`` ``shift`` ns later, with an id of its own."""
    message = json.loads(record.payload)
    message["ts_event_ns"] += shift
    message["tick_id"] = f"late-{i}"
    return replace(
        record,
        payload=json.dumps(message).encode(),
        index=record.index + 1_000_000,
        ts_event_ns=message["ts_event_ns"],
    )


@given(st.lists(st.integers(0, 3), min_size=1, max_size=12), st.data())
def test_deferred_outputs_render_in_order_whoever_asks(
    steps: list[int], data: st.DataObject
) -> None:
    """Outputs left to render (``take(defer=True)``), each linked to the one before: asking
    any of them renders every earlier one first, each step once, in order."""
    done: list[tuple[int, int]] = []
    outputs: list[BatchOutput] = []
    for i, n in enumerate(steps):
        out = BatchOutput({}, Rendered())
        out.pending = [partial(done.append, (i, j)) for j in range(n)]
        out.before = outputs[-1] if outputs else None
        outputs.append(out)
    asked = data.draw(st.permutations(range(len(outputs))))
    threads = [threading.Thread(target=outputs[a].render) for a in asked[: len(asked) // 2]]
    for t in threads:
        t.start()
    for a in asked[len(asked) // 2 :]:
        outputs[a].render()
    for t in threads:
        t.join()
    assert done == [(i, j) for i, n in enumerate(steps) for j in range(n)]
    assert all(not o.pending and o.before is None for o in outputs)  # nothing kept alive

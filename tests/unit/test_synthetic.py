"""The synthetic feed: reproducible per seed, and every injected bad tick earns its reason."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import stubs

from tickwise.schemas.quarantine import ReasonCode
from tickwise.schemas.topics import TICKS_CLEAN, TICKS_QUARANTINE
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.sources import SYNTHETIC_INSTRUMENTS, synthetic


def test_same_seed_same_stream() -> None:
    a = list(synthetic(seed=11, count=500, bad_rate=0.05))
    b = list(synthetic(seed=11, count=500, bad_rate=0.05))
    assert a == b


def test_different_seeds_differ() -> None:
    a = [r.payload for r in synthetic(seed=1, count=200)]
    b = [r.payload for r in synthetic(seed=2, count=200)]
    assert a != b


def test_a_shorter_run_is_a_prefix_of_a_longer_one() -> None:
    short = list(synthetic(seed=3, count=300, bad_rate=0.1))
    assert list(synthetic(seed=3, count=1000, bad_rate=0.1))[:300] == short


def test_count_instruments_and_order() -> None:
    records = list(synthetic(seed=4, count=900))
    assert len(records) == 900
    assert [r.index for r in records] == list(range(900))
    assert {r.key for r in records} == set(SYNTHETIC_INSTRUMENTS)
    stamps = [r.ts_event_ns for r in records]
    assert stamps == sorted(stamps)  # one event-time ordered stream across instruments
    for r in records:
        msg = json.loads(r.payload)
        assert (msg["instrument"], msg["ts_event_ns"]) == (r.key, r.ts_event_ns)
        assert r.injected is None and r.origin == "synthetic"


def test_instruments_can_be_chosen() -> None:
    records = list(synthetic(seed=4, count=100, instruments=["ES", "ZZ"]))
    assert {r.key for r in records} == {"ES", "ZZ"}


def test_no_bad_ticks_without_a_bad_rate() -> None:
    assert all(r.injected is None for r in synthetic(seed=5, count=1000))


@pytest.mark.parametrize("impl", stubs.IMPLS)
@pytest.mark.parametrize(("seed", "bad_rate"), [(1, 0.1), (2, 0.3), (9, 0.02)])
def test_every_injected_tick_is_quarantined_with_its_reason(
    impl: str, seed: int, bad_rate: float
) -> None:
    records = list(synthetic(seed=seed, count=1500, bad_rate=bad_rate))
    injected = Counter(r.injected for r in records if r.injected)
    assert injected, "no bad ticks were injected"
    stream = stubs.decide(impl, records, TickwiseConfig())
    clean = {c.source.offset: c for c in stream.messages(TICKS_CLEAN.name)}
    quarantined = {q.source.offset: q for q in stream.messages(TICKS_QUARANTINE.name)}
    assert len(clean) + len(quarantined) == len(records)
    for rec in records:
        if rec.injected is None:
            verdict = clean.get(rec.index)
            assert verdict is not None, (rec.index, quarantined[rec.index].detail)
            assert verdict.tick.tick_id == json.loads(rec.payload)["tick_id"]
        else:
            record = quarantined.get(rec.index)
            assert record is not None, (rec.index, rec.injected)
            assert record.reason == ReasonCode(rec.injected), (rec.index, record.detail)
            assert stubs.quarantined_bytes(record) == rec.payload


def test_all_kinds_of_bad_tick_are_injected() -> None:
    kinds = {r.injected for r in synthetic(seed=1, count=3000, bad_rate=0.2)} - {None}
    assert kinds <= set(ReasonCode)
    assert kinds == {
        "DUPLICATE",
        "MALFORMED_JSON",
        "INVALID_PRICE",
        "CROSSED_QUOTE",
        "SCHEMA_VIOLATION",
    }


def test_bad_rate_is_roughly_honoured() -> None:
    records = list(synthetic(seed=8, count=4000, bad_rate=0.1))
    share = sum(r.injected is not None for r in records) / len(records)
    assert 0.07 < share < 0.13

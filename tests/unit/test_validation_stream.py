"""Property tests over streams: conservation, reordering, state handover, synthetic injection."""

from __future__ import annotations

import pickle
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from stubs import MS, T0_NS, src, trade

from tests.oracle.validator import Validator
from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import CleanTick
from tickwise.streams.config import ValidationConfig
from tickwise.streams.sources import BAD_KINDS, REGIMES, synthetic

FULL = ValidationConfig(reject_locked_quotes=True, instruments=("ES", "NQ", "CL"))


def run(
    v: Validator, payloads: list[bytes], flush: bool = True
) -> list[CleanTick | QuarantineRecord]:
    out = []
    for i, raw in enumerate(payloads):
        out += v.on_raw(raw, src(i))
    return out + (v.flush() if flush else [])


messages = st.one_of(
    st.binary(max_size=60),
    st.builds(
        lambda i, ts, price, name: trade(
            tick_id=f"t{i}", ts_event_ns=ts, price=price, instrument=name
        ),
        st.integers(0, 30),
        st.integers(T0_NS - 10**9, T0_NS + 10**9),
        st.floats(min_value=-1.0, max_value=200.0, allow_nan=False),
        st.sampled_from(["ES", "NQ"]),
    ),
)


@given(st.lists(messages, max_size=80), st.sampled_from(["quarantine", "reorder"]))
def test_every_message_ends_exactly_once(payloads: list[bytes], policy: str) -> None:
    v = Validator(ValidationConfig(out_of_order_policy=policy, reorder_window_ms=100.0))
    out = run(v, payloads)
    assert sorted(o.source.offset for o in out) == list(range(len(payloads)))


@given(st.lists(st.integers(0, 50), min_size=1, max_size=60, unique=True), st.randoms())
def test_reorder_window_puts_late_ticks_back_in_event_time_order(
    offsets_ms: list[int], rnd: random.Random
) -> None:
    shuffled = offsets_ms[:]
    rnd.shuffle(shuffled)
    config = ValidationConfig(out_of_order_policy="reorder", reorder_window_ms=100.0)
    payloads = [trade(tick_id=f"t{ms}", ts_event_ns=T0_NS + ms * MS) for ms in shuffled]
    out = run(Validator(config), payloads)
    assert all(isinstance(o, CleanTick) for o in out)
    assert [o.tick.ts_event_ns for o in out] == sorted(T0_NS + ms * MS for ms in offsets_ms)


@settings(deadline=None, max_examples=20)
@given(st.integers(101, 10_000))
def test_reorder_quarantines_a_tick_later_than_the_window(late_ms: int) -> None:
    config = ValidationConfig(out_of_order_policy="reorder", reorder_window_ms=100.0)
    v = Validator(config)
    payloads = [trade(tick_id=f"t{i}", ts_event_ns=T0_NS + i * 10 * MS) for i in range(1000)]
    payloads.append(trade(tick_id="late", ts_event_ns=T0_NS + (9990 - late_ms) * MS))
    out = run(v, payloads)
    late = [o for o in out if o.source.offset == 1000]
    assert isinstance(late[0], QuarantineRecord) and late[0].reason is ReasonCode.OUT_OF_ORDER


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(sorted(REGIMES)), st.floats(0.01, 0.2))
def test_synthetic_injections_get_exactly_their_reason(seed: int, regime: str, rate: float) -> None:
    records = list(synthetic(seed, 3000, bad_rate=rate, regime=regime, bad_kinds=BAD_KINDS))
    v = Validator(FULL)
    for rec in records:
        (out,) = v.on_raw(rec.payload, src(rec.index))
        got = out.reason.value if isinstance(out, QuarantineRecord) else None
        assert got == rec.injected, (rec, out)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 2999), st.sampled_from(["quarantine", "reorder"]))
def test_state_moves_between_workers_without_changing_a_verdict(
    seed: int, cut: int, policy: str
) -> None:
    config = FULL.model_copy(update={"out_of_order_policy": policy})
    records = list(synthetic(seed, 3000, bad_rate=0.05, bad_kinds=BAD_KINDS))
    payloads = [r.payload for r in records]
    whole = [o.to_bytes() for o in run(Validator(config), payloads)]

    first = Validator(config)
    before = run(first, payloads[:cut], flush=False)
    moved = pickle.dumps({i: first.export_state(i) for i in ("ES", "NQ", "CL")})
    second = Validator(config)
    for instrument, state in pickle.loads(moved).items():
        if state is not None:
            second.import_state(instrument, state)
    after = []
    for i, raw in enumerate(payloads[cut:], start=cut):
        after += second.on_raw(raw, src(i))
    after += second.flush()
    assert [o.to_bytes() for o in before + after] == whole

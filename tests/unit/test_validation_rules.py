"""Property tests: each validation rule catches what it must, with its stable reason code."""

from __future__ import annotations

import json
import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from stubs import MS, T0_NS, S, quote, src, trade

from tests.oracle.validator import Validator
from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import CleanTick
from tickwise.streams.config import InstrumentRules, ValidationConfig
from tickwise.streams.operators.validation.records import raw_bytes

prices = st.floats(min_value=1.0, max_value=1e5)


def one(v: Validator, raw: bytes, offset: int = 0) -> CleanTick | QuarantineRecord:
    outputs = v.on_raw(raw, src(offset))
    assert len(outputs) == 1
    return outputs[0]


def reason(v: Validator, raw: bytes, offset: int = 0) -> ReasonCode | None:
    out = one(v, raw, offset)
    return out.reason if isinstance(out, QuarantineRecord) else None


@given(st.binary(max_size=300))
def test_any_bytes_give_one_verdict_and_are_kept_byte_for_byte(raw: bytes) -> None:
    out = one(Validator(ValidationConfig()), raw)
    if isinstance(out, QuarantineRecord):
        assert raw_bytes(out) == raw
        assert out.detail
    else:
        assert out.tick.instrument


@given(st.text(max_size=200).filter(lambda t: not t.lstrip().startswith(("{", "[", '"'))))
def test_junk_text_is_malformed_json(text: str) -> None:
    try:
        json.loads(text)
        assume(False)
    except ValueError:
        pass  # not JSON: exactly the input this rule is about
    assert reason(Validator(ValidationConfig()), text.encode()) is ReasonCode.MALFORMED_JSON


@given(st.integers(min_value=1, max_value=5000), st.integers(min_value=0, max_value=3000))
def test_oversized_messages_are_rejected_before_parsing(limit: int, extra: int) -> None:
    raw = trade(note="x" * (limit + extra))
    v = Validator(ValidationConfig(max_message_bytes=limit))
    assert reason(v, raw) is (
        ReasonCode.OVERSIZED if len(raw) > limit else ReasonCode.SCHEMA_VIOLATION
    )


@given(
    st.sampled_from(["price", "size"]),
    st.floats(max_value=0.0, allow_infinity=False).map(repr)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]),
)
def test_non_positive_nan_or_infinite_price_or_size(field: str, value: str) -> None:
    if field == "size":
        raw = trade(size=0.0).replace(b'"size": 0.0', f'"size": {value}'.encode())
    else:
        raw = trade(price=0.0).replace(b'"price": 0.0', f'"price": {value}'.encode())
    expected = ReasonCode.INVALID_PRICE if field == "price" else ReasonCode.INVALID_SIZE
    assert reason(Validator(ValidationConfig()), raw) is expected


@given(prices, st.floats(min_value=1e-6, max_value=100.0))
def test_crossed_quotes_are_rejected(bid: float, gap: float) -> None:
    ask = bid - gap
    assume(0 < ask < bid)
    assert (
        reason(Validator(ValidationConfig()), quote(bid=bid, ask=ask)) is ReasonCode.CROSSED_QUOTE
    )


@given(prices, st.booleans(), st.sampled_from(["ES", "CL"]))
def test_locked_quotes_follow_the_instruments_rule(price: float, strict: bool, name: str) -> None:
    config = ValidationConfig(
        reject_locked_quotes=strict,
        per_instrument={"CL": InstrumentRules(reject_locked_quotes=not strict)},
    )
    rejects = strict if name == "ES" else not strict
    got = reason(Validator(config), quote(bid=price, ask=price, instrument=name))
    assert got is (ReasonCode.LOCKED_QUOTE if rejects else None)


@given(st.from_regex(r"[A-Z]{1,6}", fullmatch=True))
def test_unknown_instruments(name: str) -> None:
    v = Validator(ValidationConfig(instruments=("ES",)))
    assert reason(v, trade(instrument=name)) is (
        None if name == "ES" else ReasonCode.UNKNOWN_INSTRUMENT
    )


@given(st.integers(min_value=2, max_value=20), st.booleans())
def test_duplicates_by_tick_id_or_sequence(n: int, by_seq: bool) -> None:
    v = Validator(ValidationConfig())
    for i in range(n):
        assert reason(v, trade(tick_id=f"t{i}", seq=i, ts_event_ns=T0_NS + i * MS)) is None
    again = trade(tick_id="new", seq=n - 1) if by_seq else trade(tick_id=f"t{n - 1}", seq=10**6)
    again = again.replace(str(T0_NS).encode(), str(T0_NS + n * MS).encode())
    assert reason(v, again) is ReasonCode.DUPLICATE


@given(st.floats(min_value=0.0, max_value=1000.0), st.integers(min_value=1, max_value=10**12))
def test_out_of_order_beyond_tolerance(tolerance_ms: float, behind_ns: int) -> None:
    assume(behind_ns / 1e9 <= 3600.0)
    v = Validator(ValidationConfig(out_of_order_tolerance_ms=tolerance_ms))
    assert reason(v, trade(tick_id="a", ts_event_ns=T0_NS)) is None
    late = trade(tick_id="b", ts_event_ns=T0_NS - behind_ns)
    expected = ReasonCode.OUT_OF_ORDER if behind_ns / 1e6 > tolerance_ms else None
    assert reason(v, late) is expected


@given(
    st.sampled_from(["future", "past"]),
    st.integers(min_value=1, max_value=5),
    st.floats(min_value=1.01, max_value=1e4),
)
def test_far_timestamps_are_quarantined_until_confirmed(
    direction: str, confirm: int, factor: float
) -> None:
    config = ValidationConfig(time_confirm_ticks=confirm, max_future_s=60.0, max_past_s=60.0)
    v = Validator(config)
    assert reason(v, trade(tick_id="a", ts_event_ns=T0_NS)) is None
    sign = 1 if direction == "future" else -1
    jump = T0_NS + sign * int(60 * S * factor)
    code = ReasonCode.FUTURE_TIMESTAMP if sign > 0 else ReasonCode.STALE_TIMESTAMP
    got = [reason(v, trade(tick_id=f"j{i}", ts_event_ns=jump + i * MS)) for i in range(confirm)]
    assert got == [code] * (confirm - 1) + [None]
    # the confirmed jump re-anchored event time: the next tick at the new time is normal
    assert reason(v, trade(tick_id="next", ts_event_ns=jump + confirm * MS)) is None


@given(st.lists(st.floats(min_value=-5.0, max_value=5.0), min_size=30, max_size=60))
def test_a_single_spike_is_an_outlier_and_the_market_returning_is_not(steps: list[float]) -> None:
    v = Validator(ValidationConfig())
    price = 4700.0
    for i, step in enumerate(steps):
        price += step * 0.25
        assert reason(v, trade(tick_id=f"t{i}", ts_event_ns=T0_NS + i * MS, price=price)) is None
    n = len(steps)
    spike = trade(tick_id="spike", ts_event_ns=T0_NS + n * MS, price=price * 1.2)
    assert reason(v, spike) is ReasonCode.PRICE_OUTLIER
    back = trade(tick_id="back", ts_event_ns=T0_NS + (n + 1) * MS, price=price)
    assert reason(v, back) is None


@given(st.integers(min_value=1, max_value=6), st.floats(min_value=0.03, max_value=0.5))
def test_a_genuine_move_is_accepted_once_confirmed(confirm: int, jump: float) -> None:
    v = Validator(ValidationConfig(outlier_confirm_ticks=confirm))
    for i in range(40):
        price = 100.0 + 0.01 * (i % 3)
        assert reason(v, trade(tick_id=f"t{i}", ts_event_ns=T0_NS + i * MS, price=price)) is None
    level = 100.0 * (1.0 + jump)
    got = [
        reason(v, trade(tick_id=f"n{i}", ts_event_ns=T0_NS + (40 + i) * MS, price=level + 0.01 * i))
        for i in range(confirm + 2)
    ]
    assert got == [ReasonCode.PRICE_OUTLIER] * (confirm - 1) + [None] * 3


@given(st.floats(min_value=0.02, max_value=0.5))
def test_outlier_rule_can_be_switched_off_per_instrument(jump: float) -> None:
    config = ValidationConfig(per_instrument={"CL": InstrumentRules(outlier_k=0.0)})
    v = Validator(config)
    for name in ("ES", "CL"):
        for i in range(30):
            msg = trade(instrument=name, tick_id=f"t{i}", ts_event_ns=T0_NS + i * MS, price=100.0)
            assert reason(v, msg) is None
    jumped = {
        name: reason(
            v, trade(instrument=name, tick_id="j", ts_event_ns=T0_NS + S, price=100 * (1 + jump))
        )
        for name in ("ES", "CL")
    }
    assert jumped == {"ES": ReasonCode.PRICE_OUTLIER, "CL": None}


@settings(max_examples=30)
@given(st.integers(min_value=0, max_value=2**20))
def test_reinjected_late_tick_skips_history_rules_but_not_dedup(behind_ms: int) -> None:
    v = Validator(ValidationConfig())
    assert reason(v, trade(tick_id="a", ts_event_ns=T0_NS + 2**21 * MS)) is None
    late = trade(tick_id="late", ts_event_ns=T0_NS + (2**21 - behind_ms) * MS, price=9999.0)
    first = v.on_raw(late, src(1), reinjected=True)
    again = v.on_raw(late, src(2), reinjected=True)
    assert isinstance(first[0], CleanTick)
    assert isinstance(again[0], QuarantineRecord) and again[0].reason is ReasonCode.DUPLICATE
    assert not math.isnan(first[0].tick.reference_price)

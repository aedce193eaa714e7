"""Validator: every raw message becomes exactly one clean tick or one quarantine record."""

from __future__ import annotations

import json

import pytest
import stubs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import CleanTick, QuoteTick, TradeTick
from tickwise.streams.config import ValidationConfig

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = ValidationConfig(max_message_bytes=256)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
TICK_KEYS = [
    "kind",
    "tick_id",
    "instrument",
    "ts_event_ns",
    "price",
    "size",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "seq",
    "ts_recv_ns",
]


@st.composite
def tick_like_json(draw: st.DrawFn) -> bytes:
    """A JSON object that looks like a tick, with any field missing, retyped or out of range."""
    base = draw(st.sampled_from([stubs.trade_msg(), stubs.quote_msg()]))
    keys = draw(st.lists(st.sampled_from(TICK_KEYS), max_size=4, unique=True))
    for key in keys:
        if draw(st.booleans()):
            base.pop(key, None)
        else:
            base[key] = draw(json_values)
    return json.dumps(base, allow_nan=True).encode()


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    """A valid payload with a few bytes replaced, inserted or cut."""
    raw = bytearray(draw(st.sampled_from([stubs.trade(), stubs.quote()])))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(raw) - 1))
        op = draw(st.sampled_from(["replace", "insert", "cut"]))
        if op == "replace":
            raw[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=4))
        else:
            del raw[at:]
            if not raw:
                break
    return bytes(raw)


any_input = st.binary(max_size=400) | tick_like_json() | mutated_payloads()


def _one(raw: bytes, config: ValidationConfig | None = None, offset: int = 0):
    return stubs.OneVerdictValidator(config or ValidationConfig()).on_raw(raw, stubs.src(offset))


# --- properties -----------------------------------------------------------------------------


@FUZZ
@given(raws=st.lists(any_input, min_size=1, max_size=5))
def test_any_bytes_give_exactly_one_verdict_and_never_raise(raws: list[bytes]) -> None:
    validator = stubs.OneVerdictValidator(SMALL)
    for offset, raw in enumerate(raws):
        verdict = validator.on_raw(raw, stubs.src(offset))
        assert isinstance(verdict, CleanTick | QuarantineRecord)
        assert verdict.source == stubs.src(offset)
        if isinstance(verdict, QuarantineRecord):
            assert stubs.quarantined_bytes(verdict) == raw
            assert verdict.reason is not ReasonCode.OPERATOR_ERROR
            assert verdict.detail
            QuarantineRecord.model_validate_json(verdict.to_bytes())  # still a valid message
        else:
            assert len(raw) <= SMALL.max_message_bytes


@FUZZ
@given(raw=st.binary(min_size=1, max_size=200))
def test_non_utf8_bytes_are_kept_as_base64(raw: bytes) -> None:
    verdict = _one(raw)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        assert isinstance(verdict, QuarantineRecord)
        assert verdict.raw_encoding == "base64"
    else:
        if isinstance(verdict, QuarantineRecord):
            assert verdict.raw_encoding == "utf-8"
            assert verdict.raw == raw.decode("utf-8")


@FUZZ
@given(tick=stubs.valid_trades() | stubs.valid_quotes())
def test_valid_ticks_pass_unchanged(tick: TradeTick | QuoteTick) -> None:
    verdict = _one(tick.to_bytes(), offset=7)
    assert isinstance(verdict, CleanTick), getattr(verdict, "detail", "")
    assert verdict.tick == tick
    assert verdict.source.offset == 7


# --- reason codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"kind": "trade", "tick_id": ', ReasonCode.MALFORMED_JSON),
        (b"", ReasonCode.MALFORMED_JSON),
        (b"\xff\xfe\x00junk\x80", ReasonCode.MALFORMED_JSON),
        (b"[1, 2, 3]", ReasonCode.SCHEMA_VIOLATION),
        (stubs.trade(price=None), ReasonCode.SCHEMA_VIOLATION),
        (stubs.trade(kind=None), ReasonCode.SCHEMA_VIOLATION),
        (stubs.quote(ask=None), ReasonCode.SCHEMA_VIOLATION),
        (stubs.trade(venue="XCME"), ReasonCode.SCHEMA_VIOLATION),
        (stubs.trade(instrument="E S"), ReasonCode.SCHEMA_VIOLATION),
        (stubs.trade(ts_event_ns=-1), ReasonCode.SCHEMA_VIOLATION),
        (stubs.trade(price=-1.0), ReasonCode.INVALID_PRICE),
        (stubs.trade(price=0.0), ReasonCode.INVALID_PRICE),
        (stubs.trade(price="abc"), ReasonCode.INVALID_PRICE),
        (stubs.quote(bid=0.0), ReasonCode.INVALID_PRICE),
        (stubs.quote(ask=-5.0, bid=-6.0), ReasonCode.INVALID_PRICE),
        (stubs.trade(size=0.0), ReasonCode.INVALID_SIZE),
        (stubs.trade(size="lots"), ReasonCode.INVALID_SIZE),
        (stubs.quote(bid_size=-1.0), ReasonCode.INVALID_SIZE),
        (stubs.quote(bid=4700.5, ask=4700.25), ReasonCode.CROSSED_QUOTE),
    ],
    ids=lambda v: v.value if isinstance(v, ReasonCode) else None,
)
def test_bad_input_gets_a_specific_reason(raw: bytes, reason: ReasonCode) -> None:
    verdict = _one(raw)
    assert isinstance(verdict, QuarantineRecord)
    assert verdict.reason is reason, verdict.detail
    assert stubs.quarantined_bytes(verdict) == raw


def test_missing_field_detail_names_the_field() -> None:
    verdict = _one(stubs.trade(ts_event_ns=None))
    assert verdict.reason is ReasonCode.SCHEMA_VIOLATION
    assert "ts_event_ns" in verdict.detail


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_price_written_in_json_is_an_invalid_price(literal: str) -> None:
    raw = stubs.trade().replace(b"4700.25", literal.encode())
    assert literal.encode() in raw
    verdict = _one(raw)
    assert isinstance(verdict, QuarantineRecord)
    assert verdict.reason is ReasonCode.INVALID_PRICE
    assert verdict.raw == raw.decode()


def test_nan_quote_side_is_an_invalid_price() -> None:
    raw = stubs.quote().replace(b"4700.0,", b"NaN,")
    assert _one(raw).reason is ReasonCode.INVALID_PRICE


def test_locked_quote_is_not_crossed() -> None:
    assert isinstance(_one(stubs.quote(bid=4700.0, ask=4700.0)), CleanTick)


def test_semantic_rejections_name_instrument_and_tick() -> None:
    verdict = _one(stubs.quote(tick_id="q-9", instrument="NQ", bid=2.0, ask=1.0))
    assert (verdict.reason, verdict.instrument, verdict.tick_id) == (
        ReasonCode.CROSSED_QUOTE,
        "NQ",
        "q-9",
    )


def test_oversized_is_checked_before_parsing() -> None:
    config = ValidationConfig(max_message_bytes=len(stubs.trade()))
    assert isinstance(_one(stubs.trade(), config), CleanTick)
    big = stubs.trade(tick_id="t-10")  # one byte longer than the limit
    verdict = _one(big, config)
    assert verdict.reason is ReasonCode.OVERSIZED
    assert stubs.quarantined_bytes(verdict) == big
    junk = b"\xff" * (config.max_message_bytes + 1)
    assert _one(junk, config).reason is ReasonCode.OVERSIZED


# --- per-instrument state -------------------------------------------------------------------


def test_duplicate_tick_id_is_quarantined_per_instrument() -> None:
    v = stubs.OneVerdictValidator(ValidationConfig())
    assert isinstance(v.on_raw(stubs.trade(tick_id="a"), stubs.src(0)), CleanTick)
    again = v.on_raw(stubs.trade(tick_id="a"), stubs.src(1))
    assert again.reason is ReasonCode.DUPLICATE
    assert again.tick_id == "a"
    other = v.on_raw(stubs.trade(tick_id="a", instrument="NQ"), stubs.src(2))
    assert isinstance(other, CleanTick)


def test_dedup_window_forgets_the_oldest_ids() -> None:
    v = stubs.OneVerdictValidator(ValidationConfig(dedup_window=2))
    for i, tick_id in enumerate(["a", "b", "c"]):
        assert isinstance(v.on_raw(stubs.trade(tick_id=tick_id), stubs.src(i)), CleanTick)
    assert isinstance(v.on_raw(stubs.trade(tick_id="a"), stubs.src(3)), CleanTick)
    assert v.on_raw(stubs.trade(tick_id="c"), stubs.src(4)).reason is ReasonCode.DUPLICATE


def test_out_of_order_beyond_tolerance_is_quarantined_within_is_accepted() -> None:
    ms = stubs.MS
    v = stubs.OneVerdictValidator(ValidationConfig(out_of_order_tolerance_ms=5.0))
    t0 = stubs.T0_NS

    def at(tick_id: str, ts: int):
        return v.on_raw(stubs.trade(tick_id=tick_id, ts_event_ns=ts), stubs.src())

    assert isinstance(at("a", t0 + 10 * ms), CleanTick)
    assert isinstance(at("b", t0 + 5 * ms), CleanTick)  # exactly at the tolerance
    assert isinstance(at("c", t0 + 6 * ms), CleanTick)
    late = at("d", t0 + 5 * ms - 1)  # one nanosecond beyond
    assert late.reason is ReasonCode.OUT_OF_ORDER
    assert isinstance(at("e", t0 + 10 * ms), CleanTick)  # same timestamp is in order


def test_zero_tolerance_rejects_any_step_back() -> None:
    v = stubs.OneVerdictValidator(ValidationConfig())
    assert isinstance(v.on_raw(stubs.trade(tick_id="a", ts_event_ns=100), stubs.src()), CleanTick)
    assert isinstance(v.on_raw(stubs.trade(tick_id="b", ts_event_ns=100), stubs.src()), CleanTick)
    late = v.on_raw(stubs.trade(tick_id="c", ts_event_ns=99), stubs.src())
    assert late.reason is ReasonCode.OUT_OF_ORDER
    other = v.on_raw(stubs.trade(tick_id="c", ts_event_ns=1, instrument="NQ"), stubs.src())
    assert isinstance(other, CleanTick)  # order is per instrument


def test_quarantined_ticks_do_not_advance_state() -> None:
    v = stubs.OneVerdictValidator(ValidationConfig())
    far = stubs.trade(tick_id="x", ts_event_ns=10**18, price=-1.0)
    assert v.on_raw(far, stubs.src()).reason is ReasonCode.INVALID_PRICE
    assert isinstance(v.on_raw(stubs.trade(tick_id="x"), stubs.src()), CleanTick)


def test_unknown_instrument_with_an_allow_list() -> None:
    v = stubs.OneVerdictValidator(ValidationConfig(instruments=("ES", "NQ")))
    assert isinstance(v.on_raw(stubs.trade(instrument="ES"), stubs.src()), CleanTick)
    verdict = v.on_raw(stubs.quote(instrument="CL"), stubs.src())
    assert verdict.reason is ReasonCode.UNKNOWN_INSTRUMENT
    assert verdict.instrument == "CL"
    assert isinstance(_one(stubs.trade(instrument="CL")), CleanTick)  # no list: any symbol

"""The bulk encoders (``schemas.wire``) write exactly what the contracts' own serialiser writes:
floats (tiny, huge, negative zero, integral, with exponents), strings that need escaping, and
whole signals and hold summaries."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_core import to_json

from tickwise.schemas.decisions import HoldSummary, Side, Signal, Stage, TradingState
from tickwise.schemas.wire import (
    SignalWire,
    hold_summary_body,
    json_float,
    json_floats,
    json_str,
)
from tickwise.streams.operators.audit import seal

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

AWKWARD = [
    0.0, -0.0, 1.0, -5.0, 0.1, 1e-4, 9.999e-5, 1e-5, 1.5e-5, 1e-7, -1e-7, 5e-324,
    2.2250738585072014e-308,
    1e15, 1e16 - 2, 1e16, 1.2345678901234568e17, 1e21, 1e22, 2.5e300, 1.7976931348623157e308,
    2.0**53, 2.0**53 + 2, 123456.789, 1 / 3,
]  # fmt: skip
finite = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(AWKWARD)
floats = finite | st.integers(-(2**60), 2**60).map(float) | st.floats(-1e-3, 1e-3)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)  # no lone surrogates
instrument = st.from_regex(r"[A-Za-z0-9._:/\-]{1,64}", fullmatch=True)
tick_id = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=128)
unit = st.floats(0.0, 1.0) | st.sampled_from([0.0, 1.0, 1e-7, 0.5])


@PROPERTY
@given(floats)
def test_a_float_is_written_as_pydantic_writes_it(x: float) -> None:
    assert json_float(x) == to_json(x).decode()


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_a_float_no_contract_allows_is_refused(x: float) -> None:
    with pytest.raises(ValueError, match="not finite"):
        json_float(x)
    with pytest.raises(ValueError, match="not finite"):
        json_floats([1.0, x])


@PROPERTY
@given(text)
def test_a_string_is_written_as_pydantic_writes_it(s: str) -> None:
    assert json_str(s).encode() == to_json(s)


@PROPERTY
@given(st.lists(floats, max_size=30))
def test_floats_in_bulk_are_written_as_each_alone(values: list[float]) -> None:
    assert json_floats(values) == [to_json(x).decode() for x in values]


@PROPERTY
@given(
    st.text(min_size=1, max_size=20),
    st.integers(1, 2**31),
    st.sampled_from(["classification", "regression"]),
    st.sampled_from([Stage.PRODUCTION, Stage.CANARY, Stage.SHADOW]),
    unit,
    st.lists(text, min_size=1, max_size=6, unique=True),
    st.integers(0, 4),
    st.data(),
)
def test_signals_are_written_as_the_contract_writes_them(
    model_id: str,
    version: int,
    task: str,
    stage: Stage,
    fraction: float,
    features: list[str],
    k: int,
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(0, 4))
    columns = {
        "signal_id": data.draw(st.lists(text, min_size=n, max_size=n)),
        "instrument": data.draw(st.lists(instrument, min_size=n, max_size=n)),
        "tick_id": data.draw(st.lists(tick_id, min_size=n, max_size=n)),
        "ts_event_ns": data.draw(st.lists(st.integers(0, 2**63 - 1), min_size=n, max_size=n)),
        "score": data.draw(st.lists(floats, min_size=n, max_size=n)),
        "side": data.draw(st.lists(st.sampled_from(list(Side)), min_size=n, max_size=n)),
        "confidence": data.draw(st.lists(unit, min_size=n, max_size=n)),
        "n_trained": data.draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n)),
    }
    terms = {
        name: data.draw(st.lists(st.lists(draw, min_size=k, max_size=k), min_size=n, max_size=n))
        for name, draw in (
            ("feature", st.integers(-1, len(features) - 1)),
            ("value", floats),
            ("weight", floats),
            ("contribution", floats),
        )
    }
    lines = SignalWire(model_id, version, task, stage, fraction, features).lines(**columns, **terms)
    assert len(lines) == n
    for i, line in enumerate(lines):
        explanation = [
            {"feature": features[f], "value": v, "weight": w, "contribution": c}
            for f, v, w, c in zip(
                terms["feature"][i], terms["value"][i], terms["weight"][i],
                terms["contribution"][i], strict=True,
            )
            if f >= 0
        ]  # fmt: skip
        signal = Signal(
            **{name: column[i] for name, column in columns.items()},
            model_id=model_id,
            model_version=version,
            explanation=explanation,  # type: ignore[arg-type]
            task=task,  # type: ignore[arg-type]
            stage=stage,
            capital_fraction=fraction,
        )
        assert line == signal.to_bytes()
        assert Signal.model_validate_json(line) == signal


def _hold_summary_fields(draw: st.DrawFn) -> dict[str, object]:
    return {
        "schema_version": 1,
        "kind": "hold_summary",
        "audit_id": draw(text),
        "seq": draw(st.integers(0, 2**40)),
        "instrument": draw(instrument),
        "ts_event_ns": draw(st.integers(0, 2**63 - 1)),
        "model_id": draw(text),
        "model_version": draw(st.integers(1, 2**31)),
        "period_s": draw(finite.filter(lambda x: x > 0.0)),
        "from_ts_event_ns": draw(st.integers(0, 2**63 - 1)),
        "to_ts_event_ns": draw(st.integers(0, 2**63 - 1)),
        "first_tick_id": draw(tick_id),
        "last_tick_id": draw(tick_id),
        "holds": draw(st.integers(1, 2**40)),
        "decided_ticks": draw(st.integers(1, 2**40)),
        "reasons": dict(sorted(draw(st.dictionaries(text, st.integers(1, 2**31))).items())),
        "position": draw(floats),
        "trading_state": draw(st.sampled_from(list(TradingState))),
        "prev_hash": draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
    }


@PROPERTY
@given(st.composite(_hold_summary_fields)())
def test_a_hold_summary_is_written_and_sealed_as_the_contract_is(
    fields: dict[str, object],
) -> None:
    validated, wire = seal(HoldSummary(**fields, hash=""))  # type: ignore[arg-type]
    body = hold_summary_body(fields)
    assert body == validated.model_dump_json(exclude={"hash"}).encode()
    assert wire.startswith(body[:-1] + b',"hash":"')
    trusted = HoldSummary.trusted({**fields, "hash": validated.hash})
    assert trusted == validated
    assert trusted.model_fields_set == validated.model_fields_set
    assert trusted.to_bytes() == wire


def test_a_trusted_contract_needs_every_field() -> None:
    with pytest.raises(ValueError, match="needs every field"):
        HoldSummary.trusted({"audit_id": "aud-ES-0"})


def test_a_hold_summary_out_of_the_contracts_order_is_refused() -> None:
    fields = {"kind": "hold_summary", "schema_version": 1}
    with pytest.raises(ValueError, match="in order"):
        hold_summary_body(fields)

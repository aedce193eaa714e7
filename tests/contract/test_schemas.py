"""Wire contracts: current JSON Schema files, strict models, the topic catalogue, round trips."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest
import stubs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tickwise.schemas import generate
from tickwise.schemas.base import Contract
from tickwise.schemas.decisions import (
    Action,
    Alert,
    AuditRecord,
    Contribution,
    ControlCommand,
    Decision,
    FeatureVector,
    Fill,
    HoldSummary,
    RiskCheckResult,
    Severity,
    Side,
    Signal,
    TradingState,
)
from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.registry import RegistryEntry
from tickwise.schemas.ticks import TICK_ADAPTER, CleanTick, QuoteTick, TradeTick
from tickwise.schemas.topics import CATALOGUE, Topics

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the staleness test -------------------------------------------------------------------


def test_json_schema_files_are_current() -> None:
    """THE staleness test: the checked-in schemas/json files equal what the models generate."""
    assert generate.stale() == [], "run `tickwise schemas generate` and commit schemas/json"


def test_stale_reports_missing_changed_and_orphaned_files(tmp_path) -> None:
    generate.write(tmp_path)
    assert generate.stale(tmp_path) == []
    (tmp_path / "signal.schema.json").write_text("{}\n")
    (tmp_path / "decision.schema.json").unlink()
    (tmp_path / "old_thing.schema.json").write_text("{}\n")
    assert sorted(generate.stale(tmp_path)) == [
        "decision.schema.json",
        "old_thing.schema.json",
        "signal.schema.json",
    ]


def test_every_generated_schema_forbids_extra_fields() -> None:
    for name, text in generate.render().items():
        doc = json.loads(text)
        if "discriminator" in doc or "oneOf" in doc:  # raw_tick: a union, check its members
            continue
        assert doc.get("additionalProperties") is False, name


# --- samples: one valid instance of every contract ------------------------------------------


def _samples() -> dict[type[BaseModel], BaseModel]:
    trade = TradeTick.model_validate(stubs.trade_msg())
    quote = QuoteTick.model_validate(stubs.quote_msg())
    signal = stubs.signal()
    decision = Decision(
        decision_id="dec-1",
        signal_id=signal.signal_id,
        instrument="ES",
        tick_id=signal.tick_id,
        ts_event_ns=signal.ts_event_ns,
        model_id="logreg",
        model_version=1,
        score=0.7,
        side=Side.BUY,
        action=Action.BUY,
        quantity=1.0,
        price=4700.25,
        approved=True,
        reject_reasons=[],
        position_before=0.0,
        position_after=1.0,
    )
    check = RiskCheckResult(check="max_position", passed=True)
    return {
        TradeTick: trade,
        QuoteTick: quote,
        CleanTick: CleanTick(tick=trade, source=stubs.src()),
        QuarantineRecord: QuarantineRecord(
            reason=ReasonCode.MALFORMED_JSON,
            detail="bad",
            raw="{",
            raw_encoding="utf-8",
            source=stubs.src(),
        ),
        FeatureVector: stubs.feature_vector(x=1.0),
        Signal: signal,
        Decision: decision,
        AuditRecord: AuditRecord(
            audit_id="aud-ES-0",
            seq=0,
            instrument="ES",
            ts_event_ns=decision.ts_event_ns,
            tick_ids=[decision.tick_id],
            features={"x": 1.0},
            signal=signal,
            checks=[check],
            decision=decision,
            prev_hash="0" * 64,
            hash="f" * 64,
        ),
        HoldSummary: HoldSummary(
            audit_id="aud-ES-1",
            seq=1,
            instrument="ES",
            ts_event_ns=decision.ts_event_ns + 60,
            model_id="logreg",
            model_version=1,
            period_s=60.0,
            from_ts_event_ns=decision.ts_event_ns + 1,
            to_ts_event_ns=decision.ts_event_ns + 60,
            first_tick_id="t2",
            last_tick_id="t9",
            holds=8,
            decided_ticks=9,
            reasons={"edge # bps, |edge| < cost # bps: stay flat": 8},
            position=0.0,
            trading_state="ACTIVE",
            prev_hash="f" * 64,
            hash="e" * 64,
        ),
        Alert: Alert(
            alert_id="al-1", ts_event_ns=0, severity=Severity.WARNING, code="DRIFT", detail="d"
        ),
        Fill: Fill(
            fill_id="fill-1",
            order_id="ord-1",
            decision_id=decision.decision_id,
            instrument="ES",
            tick_id="t2",
            ts_event_ns=decision.ts_event_ns + 1,
            order_ts_event_ns=decision.ts_event_ns,
            side=Action.BUY,
            quantity=1.0,
            price=4700.5,
            reference_price=4700.375,
            fee=0.25,
            position_after=1.0,
            cash_after=-4700.75,
            realized_pnl_after=0.0,
            model_id="logreg",
            model_version=1,
        ),
        ControlCommand: ControlCommand(
            command_id="c-1",
            command="kill_switch_on",
            scope="global",
            reason="test",
            operator="me",
            ts_event_ns=0,
        ),
        RegistryEntry: RegistryEntry(
            audit_id="reg-1",
            seq=1,
            ts_event_ns=5,
            event="stage",
            model_id="logreg",
            model_version=2,
            from_stage="registered",
            to_stage="production",
            operator="ann",
            reason="better",
            command_id="promote-logreg-v2-production-5",
            prev_hash="f" * 64,
            hash="e" * 64,
        ),
    }


SAMPLES = _samples()
TOPIC_MODELS = sorted(
    {m for spec in CATALOGUE for m in spec.value_models}, key=lambda m: m.__name__
)


def test_samples_cover_every_generated_contract() -> None:
    assert set(generate.MODELS.values()) <= set(SAMPLES)


@pytest.mark.parametrize("model", list(SAMPLES), ids=lambda m: m.__name__)
def test_extra_field_is_rejected(model: type[BaseModel]) -> None:
    data = SAMPLES[model].model_dump(mode="json") | {"unexpected": 1}
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    assert any(e["type"] == "extra_forbidden" for e in info.value.errors())


def test_extra_field_in_a_nested_contract_is_rejected() -> None:
    data = SAMPLES[CleanTick].model_dump(mode="json")
    data["tick"]["venue"] = "XCME"
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        CleanTick.model_validate(data)


@pytest.mark.parametrize("model", list(SAMPLES), ids=lambda m: m.__name__)
def test_contracts_are_frozen(model: type[BaseModel]) -> None:
    instance = SAMPLES[model]
    name = next(iter(type(instance).model_fields))
    with pytest.raises(ValidationError):
        setattr(instance, name, getattr(instance, name))


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (TradeTick, "price"),
        (TradeTick, "size"),
        (QuoteTick, "bid"),
        (QuoteTick, "ask_size"),
        (Signal, "score"),
        (Decision, "price"),
        (Decision, "position_after"),
    ],
)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_floats_are_rejected(model: type[BaseModel], field: str, bad: float) -> None:
    data = SAMPLES[model].model_dump() | {field: bad}
    with pytest.raises(ValidationError, match="finite"):
        model.model_validate(data)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_literals_are_rejected(literal: str) -> None:
    text = stubs.trade().decode().replace("4700.25", literal)
    assert literal in text
    with pytest.raises(ValidationError, match="finite"):
        TradeTick.model_validate_json(text)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_values_inside_containers_are_rejected(bad: float) -> None:
    with pytest.raises(ValidationError):
        stubs.feature_vector(x=bad)
    with pytest.raises(ValidationError):
        Contribution(feature="x", value=1.0, weight=bad, contribution=1.0)


def test_raw_tick_union_is_told_apart_by_kind() -> None:
    assert isinstance(TICK_ADAPTER.validate_json(stubs.trade()), TradeTick)
    assert isinstance(TICK_ADAPTER.validate_json(stubs.quote()), QuoteTick)
    with pytest.raises(ValidationError):
        TICK_ADAPTER.validate_json(stubs.trade(kind="order"))


# --- the topic catalogue ------------------------------------------------------------------


def test_topic_names_are_exactly_the_catalogue() -> None:
    assert [spec.name for spec in CATALOGUE] == [
        "ticks.raw",
        "ticks.clean",
        "ticks.quarantine",
        "features",
        "signals",
        "decisions",
        "audit",
        "alerts",
        "control",
        "fills",
        "registry",
    ]


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.name)
def test_every_topic_carries_versioned_contracts(spec) -> None:
    assert spec.value_models, f"{spec.name} has no value model"
    for model in spec.value_models:
        assert issubclass(model, Contract)
        assert "schema_version" in model.model_fields, model.__name__
        version = model.model_fields["schema_version"].default
        assert isinstance(version, int) and version >= 1
        assert model.model_config.get("extra") == "forbid"
        assert model.model_config.get("frozen") is True


def test_topic_value_models_all_have_json_schemas() -> None:
    assert set(TOPIC_MODELS) <= set(generate.MODELS.values())


def test_topics_resolve_names_behind_a_prefix() -> None:
    topics = Topics(prefix="desk1.")
    resolved = [
        topics.raw,
        topics.clean,
        topics.quarantine,
        topics.features,
        topics.signals,
        topics.decisions,
        topics.audit,
        topics.alerts,
        topics.control,
        topics.fills,
        topics.registry,
    ]
    assert resolved == [f"desk1.{spec.name}" for spec in CATALOGUE]
    assert Topics().decisions == "decisions"


def test_control_topic_is_compacted_and_the_chains_kept_forever() -> None:
    by_name = {spec.name: spec for spec in CATALOGUE}
    assert by_name["control"].configs()["cleanup.policy"] == "compact"
    for chained in ("audit", "registry"):  # compaction or retention would break their chains
        assert by_name[chained].configs() == {"cleanup.policy": "delete", "retention.ms": "-1"}


# --- round trips --------------------------------------------------------------------------

finite = stubs.finite
texts = st.text(max_size=30)
ts = stubs.timestamps
contributions = st.builds(
    Contribution, feature=texts, value=finite, weight=finite, contribution=finite
)
signals = st.builds(
    Signal,
    signal_id=texts,
    instrument=stubs.instruments,
    tick_id=stubs.tick_ids,
    ts_event_ns=ts,
    model_id=texts,
    model_version=st.integers(min_value=1, max_value=10**6),
    score=finite,
    side=st.sampled_from(Side),
    confidence=st.floats(min_value=0.0, max_value=1.0),
    n_trained=st.integers(min_value=0, max_value=10**9),
    explanation=st.lists(contributions, max_size=4),
)
decisions = st.builds(
    Decision,
    decision_id=texts,
    signal_id=texts,
    instrument=stubs.instruments,
    tick_id=stubs.tick_ids,
    ts_event_ns=ts,
    model_id=texts,
    model_version=st.integers(min_value=1, max_value=10**6),
    score=finite,
    side=st.sampled_from(Side),
    action=st.sampled_from(Action),
    quantity=st.floats(min_value=0.0, max_value=1e12),
    price=finite,
    approved=st.booleans(),
    reject_reasons=st.lists(texts, max_size=3),
    position_before=finite,
    position_after=finite,
)
checks = st.builds(
    RiskCheckResult, check=texts, passed=st.booleans(), reason=st.none() | texts, detail=texts
)
sources = st.builds(
    stubs.src,
    offset=st.integers(min_value=0, max_value=2**62),
    topic=texts,
    partition=st.integers(min_value=0, max_value=1000),
)
STRATEGIES: dict[type[BaseModel], st.SearchStrategy] = {
    TradeTick: stubs.trade_ticks(),
    QuoteTick: stubs.quote_ticks(),
    CleanTick: st.builds(CleanTick, tick=stubs.trade_ticks() | stubs.quote_ticks(), source=sources),
    QuarantineRecord: st.builds(
        QuarantineRecord,
        reason=st.sampled_from(ReasonCode),
        detail=texts,
        raw=st.text(max_size=200),
        raw_encoding=st.sampled_from(["utf-8", "base64"]),
        source=sources,
        instrument=st.none() | texts,
        tick_id=st.none() | texts,
    ),
    FeatureVector: st.builds(
        FeatureVector,
        instrument=stubs.instruments,
        tick_id=stubs.tick_ids,
        ts_event_ns=ts,
        price=finite,
        values=st.dictionaries(texts, finite, max_size=8),
    ),
    Signal: signals,
    Decision: decisions,
    AuditRecord: st.builds(
        AuditRecord,
        audit_id=texts,
        seq=st.integers(min_value=0, max_value=2**40),
        instrument=stubs.instruments,
        ts_event_ns=ts,
        tick_ids=st.lists(texts, max_size=3),
        features=st.dictionaries(texts, finite, max_size=8),
        signal=signals,
        checks=st.lists(checks, max_size=3),
        decision=decisions,
        prev_hash=texts,
        hash=texts,
    ),
    Alert: st.builds(
        Alert,
        alert_id=texts,
        ts_event_ns=ts,
        severity=st.sampled_from(Severity),
        code=texts,
        detail=texts,
        instrument=st.none() | stubs.instruments,
        model_id=st.none() | texts,
    ),
    Fill: st.builds(
        Fill,
        fill_id=texts,
        order_id=texts,
        decision_id=texts,
        instrument=stubs.instruments,
        tick_id=st.text(min_size=1, max_size=20),
        ts_event_ns=ts,
        order_ts_event_ns=ts,
        side=st.sampled_from([Action.BUY, Action.SELL]),
        quantity=st.floats(min_value=1e-6, max_value=1e6),
        price=finite,
        reference_price=finite,
        fee=st.floats(min_value=0.0, max_value=1e6),
        position_after=finite,
        cash_after=finite,
        realized_pnl_after=finite,
        model_id=texts,
        model_version=st.integers(min_value=1, max_value=100),
    ),
    HoldSummary: st.builds(
        HoldSummary,
        audit_id=texts,
        seq=st.integers(min_value=0, max_value=10**9),
        instrument=stubs.instruments,
        ts_event_ns=ts,
        model_id=texts,
        model_version=st.integers(min_value=1, max_value=100),
        period_s=st.floats(min_value=1e-3, max_value=1e6),
        from_ts_event_ns=ts,
        to_ts_event_ns=ts,
        first_tick_id=stubs.tick_ids,
        last_tick_id=stubs.tick_ids,
        holds=st.integers(min_value=1, max_value=10**9),
        decided_ticks=st.integers(min_value=1, max_value=10**9),
        reasons=st.dictionaries(texts, st.integers(min_value=1, max_value=10**6), max_size=3),
        position=finite,
        trading_state=st.sampled_from(TradingState),
        prev_hash=texts,
        hash=texts,
    ),
    ControlCommand: st.builds(
        ControlCommand,
        command_id=texts,
        command=st.sampled_from(["kill_switch_on", "kill_switch_off", "promote", "rollback"]),
        scope=texts,
        reason=st.text(min_size=1, max_size=30),
        operator=st.text(min_size=1, max_size=30),
        ts_event_ns=ts,
        model_id=st.none() | texts,
        model_version=st.none() | st.integers(min_value=1, max_value=100),
    ),
    RegistryEntry: st.builds(
        RegistryEntry,
        audit_id=texts,
        seq=st.integers(min_value=0, max_value=10**9),
        ts_event_ns=ts,
        event=st.sampled_from(["register", "stage"]),
        model_id=st.text(min_size=1, max_size=30),
        model_version=st.integers(min_value=1, max_value=100),
        from_stage=st.none() | texts,
        to_stage=texts,
        operator=st.text(min_size=1, max_size=30),
        reason=texts,
        parent=st.none() | texts,
        command_id=st.none() | texts,
        prev_hash=texts,
        hash=texts,
    ),
}


def test_round_trip_strategies_cover_every_contract() -> None:
    assert set(generate.MODELS.values()) <= set(STRATEGIES)


@pytest.mark.parametrize("model", list(STRATEGIES), ids=lambda m: m.__name__)
@PROPERTY
@given(data=st.data())
def test_round_trip_through_wire_bytes(model: type[Contract], data: st.DataObject) -> None:
    original = data.draw(STRATEGIES[model])
    wire = original.to_bytes()
    decoded = model.model_validate_json(wire)
    assert decoded == original
    assert decoded.to_bytes() == wire
    # the fast encoding is pydantic's documented JSON, byte for byte (consumers may use either)
    assert wire == original.model_dump_json().encode()


@pytest.mark.parametrize(
    "model", [AuditRecord, HoldSummary, RegistryEntry], ids=lambda m: m.__name__
)
@PROPERTY
@given(data=st.data())
def test_replaced_is_model_copy_with_the_update(model: type[Contract], data: st.DataObject) -> None:
    """``seal`` sets a hash with ``replaced``: the same copy ``model_copy(update=...)`` makes,
    and the original left as it was."""
    original = data.draw(STRATEGIES[model])
    wire = original.to_bytes()
    digest = data.draw(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
    fast, slow = original.replaced(hash=digest), original.model_copy(update={"hash": digest})
    assert type(fast) is model and fast == slow and fast.hash == digest
    assert fast.to_bytes() == slow.to_bytes()
    assert fast.model_fields_set == slow.model_fields_set
    assert original.to_bytes() == wire


@PROPERTY
@given(tick=stubs.trade_ticks() | stubs.quote_ticks())
def test_raw_ticks_round_trip_through_the_union_adapter(tick: TradeTick | QuoteTick) -> None:
    assert TICK_ADAPTER.validate_json(tick.to_bytes()) == tick


# --- every message kind against the JSON Schema file a consumer reads ---------------------

SCHEMA_FILES = {model: name for name, model in generate.MODELS.items()}


def _schema_validator(name: str) -> jsonschema.protocols.Validator:
    doc = json.loads((generate.SCHEMA_DIR / f"{name}.schema.json").read_text())
    cls = jsonschema.validators.validator_for(doc, default=jsonschema.Draft202012Validator)
    cls.check_schema(doc)
    return cls(doc)


@pytest.mark.parametrize("model", list(generate.MODELS.values()), ids=lambda m: m.__name__)
@PROPERTY
@given(data=st.data())
def test_every_kind_validates_against_its_schema_file_and_parses(
    model: type[Contract], data: st.DataObject
) -> None:
    """What a downstream consumer relies on: the bytes on a topic pass the published JSON
    Schema (with a JSON Schema library, not pydantic) and parse with the contract."""
    message = data.draw(STRATEGIES[model])
    wire = message.to_bytes()
    _schema_validator(SCHEMA_FILES[model]).validate(json.loads(wire))
    assert model.model_validate_json(wire) == message


@PROPERTY
@given(tick=stubs.trade_ticks() | stubs.quote_ticks())
def test_raw_ticks_validate_against_the_raw_tick_schema(tick: TradeTick | QuoteTick) -> None:
    _schema_validator("raw_tick").validate(json.loads(tick.to_bytes()))


def test_the_schema_files_refuse_what_the_contracts_refuse() -> None:
    """The check can fail: an extra field, a missing one and a version 1 quote without sizes
    are errors for the published schemas as for the models."""
    validator = _schema_validator("quote_tick")
    good = json.loads(QuoteTick(tick_id="q", instrument="ES", ts_event_ns=1, bid=1.0, ask=1.1)
                      .to_bytes())  # fmt: skip
    validator.validate(good)
    for bad in (
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "bid"},
        {**good, "schema_version": 1},
    ):
        assert not validator.is_valid(bad), bad

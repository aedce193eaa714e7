"""Pipeline: operator exceptions become OPERATOR_ERROR quarantine records and the stream goes on."""

from __future__ import annotations

import pytest
import stubs

from tests.oracle.pipeline import Decided, Pipeline
from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import CleanTick
from tickwise.streams.config import TickwiseConfig


class Boom(RuntimeError):
    pass


def _raise(*_args: object, **_kwargs: object) -> None:
    raise Boom("operator bug")


def test_validator_exception_becomes_operator_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = Pipeline(TickwiseConfig())
    monkeypatch.setattr(pipeline.validator, "on_raw", _raise)
    raw = b"\xff\x00 not even utf-8"
    verdict = pipeline.validate(raw, stubs.src(42))
    assert isinstance(verdict, QuarantineRecord)
    assert verdict.reason is ReasonCode.OPERATOR_ERROR
    assert "Boom" in verdict.detail
    assert stubs.quarantined_bytes(verdict) == raw
    assert verdict.source.offset == 42


def test_validator_error_is_per_message(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = Pipeline(TickwiseConfig())
    real = pipeline.validator.on_raw
    calls = iter([_raise, real])
    monkeypatch.setattr(pipeline.validator, "on_raw", lambda *a: next(calls)(*a))
    assert pipeline.validate(stubs.trade(), stubs.src()).reason is ReasonCode.OPERATOR_ERROR
    assert isinstance(pipeline.validate(stubs.trade(), stubs.src()), CleanTick)


@pytest.mark.parametrize("stage", ["features", "model", "risk", "audit"])
def test_decide_exception_becomes_operator_error(
    monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    pipeline = Pipeline(stubs.fast_config(warmup=0))
    method = {
        "features": "on_tick",
        "model": "on_features",
        "risk": "evaluate",
        "audit": "on_decision",
    }[stage]
    monkeypatch.setattr(getattr(pipeline, stage), method, _raise)
    clean = pipeline.validate(stubs.trade(tick_id="t-7"), stubs.src(3))
    assert isinstance(clean, CleanTick)
    decided = pipeline.decide(clean)
    assert decided.features is decided.signal is decided.decision is decided.audit is None
    error = decided.error
    assert error is not None
    assert error.reason is ReasonCode.OPERATOR_ERROR
    assert "Boom" in error.detail
    assert (error.instrument, error.tick_id, error.source) == ("ES", "t-7", clean.source)
    assert CleanTick.model_validate_json(stubs.quarantined_bytes(error)) == clean


def test_decide_goes_on_after_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = Pipeline(stubs.fast_config(warmup=0))
    real = pipeline.features.on_tick
    calls = iter([_raise, real])
    monkeypatch.setattr(pipeline.features, "on_tick", lambda tick: next(calls)(tick))
    first = pipeline.decide(stubs.clean(stubs.trade_tick(0, 100.0)))
    second = pipeline.decide(stubs.clean(stubs.trade_tick(1, 101.0)))
    assert first.error is not None
    assert second.error is None and second.features is not None


def test_decide_emits_features_only_until_warm() -> None:
    pipeline = Pipeline(stubs.every_tick(stubs.fast_config(warmup=1, horizon_s=0.5)))
    # the t=0 label needs a price inside the horizon (0.4 s) and a tick beyond it (1 s)
    ticks = stubs.path_ticks([100.0, 101.0, 102.0, 103.0], [0, 400 * stubs.MS, 600 * stubs.MS, 1])
    out = [pipeline.decide(stubs.clean(t)) for t in ticks]
    for early in out[:2]:
        assert early == Decided(features=early.features)
        assert early.features is not None
    assert out[2].signal is not None and out[2].signal.n_trained == 1
    for decided, tick in zip(out[2:], ticks[2:], strict=True):
        assert decided.signal.tick_id == decided.decision.tick_id == tick.tick_id
        assert decided.audit.decision == decided.decision
        assert decided.audit.signal == decided.signal
        assert decided.audit.features == decided.features.values

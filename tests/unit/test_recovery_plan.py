"""Restart recovery by lineage, without a broker: a crash at any point loses and repeats nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.quarantine import QuarantineRecord
from schemas.ticks import CleanTick, SourceRef
from streams.config import ValidationConfig
from streams.live.recovery import plan_recovery
from streams.operators.validation import Validator
from streams.sources import BAD_KINDS, synthetic

RAW = "ticks.raw"


def src(offset: int) -> SourceRef:
    return SourceRef(topic=RAW, partition=0, offset=offset)


def process(v: Validator, payloads: list[bytes], offsets: range | list[int]) -> list[bytes]:
    return [out.to_bytes() for o in offsets for out in v.on_raw(payloads[o], src(o))]


def split(log: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    clean = [x for x in log if b'"tick":' in x and CleanTick.model_validate_json(x)]
    return clean, [x for x in log if x not in set(clean)]


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 1000),
    st.integers(1, 1999),
    st.integers(0, 400),
    st.sampled_from(["quarantine", "reorder"]),
    st.integers(1000, 100_000),
)
def test_restart_after_a_crash_anywhere_loses_and_repeats_nothing(
    seed: int, crash: int, uncommitted: int, policy: str, tail: int
) -> None:
    config = ValidationConfig(out_of_order_policy=policy, instruments=("ES", "NQ", "CL"))
    payloads = [r.payload for r in synthetic(seed, 2000, bad_rate=0.05, bad_kinds=BAD_KINDS)]
    whole = process(Validator(config), payloads, range(len(payloads)))

    first = Validator(config)
    log = process(first, payloads, range(crash))  # what reached the output topics
    committed = max(0, crash - uncommitted)  # faust resumes here: at-least-once redelivery
    clean, held = split(log[-tail:])
    truncated = len(log) > tail
    plan = plan_recovery(RAW, 0, clean, held, truncated, truncated)

    second = Validator(config)
    for instrument, state in plan.rebuild(config).items():
        second.import_state(instrument, state)
    log += process(second, payloads, plan.missing_before(committed))
    log += process(second, payloads, [o for o in range(committed, 2000) if not plan.skip(o)])
    log += [out.to_bytes() for out in second.flush()]

    offsets = [
        (CleanTick if b'"tick":' in x else QuarantineRecord).model_validate_json(x).source.offset
        for x in log
    ]
    assert sorted(offsets) == list(range(2000)), "each raw offset handled exactly once"
    if policy == "quarantine":
        assert log == whole, "the restarted worker decides exactly as an uninterrupted one"


def test_a_config_fixed_before_the_restart_does_not_change_the_rebuilt_state() -> None:
    """Refused ticks stay unaccepted in the rebuilt state, whatever the new config allows."""
    narrow = ValidationConfig(instruments=("ES", "NQ"))
    payloads = [r.payload for r in synthetic(4, 600)]
    log = process(Validator(narrow), payloads, range(len(payloads)))
    plan = plan_recovery(RAW, 0, *split(log))
    wide = ValidationConfig(instruments=("ES", "NQ", "CL"))
    rebuilt = plan.rebuild(wide)
    assert "CL" not in rebuilt or not rebuilt["CL"].recent_ids
    assert len(rebuilt["ES"].recent_ids) == sum(1 for p in payloads if b'"instrument":"ES"' in p)

"""The conservation invariant on a real broker: raw = clean + quarantined, under hostile input.

Over 10,000 malformed and hostile messages drawn by hypothesis, mixed with good synthetic ticks,
go through `tickwise worker` as its own process. Each must come out exactly once, the bad ones
with the reason their construction calls for, and the worker must survive all of them.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import CleanTick
from tickwise.schemas.topics import Topics
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.operators.validation.records import raw_bytes
from tickwise.streams.sources import RawRecord, synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

KNOWN = ("ES", "NQ", "CL")
CONFIG = '[validation]\ninstruments = ["ES", "NQ", "CL"]\nmax_message_bytes = 4096\n'
T0 = 1_704_205_800 * 10**9


def _trade(**fields: object) -> dict[str, object]:
    return {"kind": "trade", "tick_id": "h", "instrument": "ES", "ts_event_ns": T0} | {
        "price": 100.0,
        "size": 1.0,
        **fields,
    }


def _quote(**fields: object) -> dict[str, object]:
    base = {"kind": "quote", "tick_id": "h", "instrument": "ES", "ts_event_ns": T0}
    return base | {"bid": 100.0, "ask": 100.5, "bid_size": 1.0, "ask_size": 1.0, **fields}


def _dumps(msg: dict[str, object]) -> bytes:
    return json.dumps(msg, allow_nan=True).encode()


not_json = st.binary(max_size=200).map(lambda b: b"\x00" + b)  # a NUL byte is never JSON
junk_text = st.text(max_size=100).map(lambda t: ("<junk>" + t).encode("utf-8", "surrogatepass"))
bad_numbers = st.floats(max_value=0.0, allow_infinity=False) | st.sampled_from(
    [float("nan"), float("inf"), float("-inf")]
)
wrong_types = st.lists(st.integers(), max_size=2) | st.dictionaries(
    st.text(max_size=3), st.integers()
)
symbols = st.sampled_from(KNOWN)

HOSTILE = st.one_of(
    not_json.map(lambda b: (b, ReasonCode.MALFORMED_JSON)),
    junk_text.map(lambda b: (b, ReasonCode.MALFORMED_JSON)),
    st.integers(4097, 6000).map(lambda n: (b"{" + b" " * n + b"}", ReasonCode.OVERSIZED)),
    st.builds(
        lambda v, s: (_dumps(_trade(price=v, instrument=s)), ReasonCode.INVALID_PRICE),
        bad_numbers,
        symbols,
    ),
    st.builds(
        lambda v, s: (_dumps(_trade(size=v, instrument=s)), ReasonCode.INVALID_SIZE),
        bad_numbers,
        symbols,
    ),
    st.builds(
        lambda bid, gap: (_dumps(_quote(bid=bid, ask=bid - gap)), ReasonCode.CROSSED_QUOTE),
        st.floats(1.0, 1e6),
        st.floats(1e-3, 0.5),
    ),
    st.builds(
        lambda f, v: (_dumps(_trade(**{f: v})), ReasonCode.SCHEMA_VIOLATION),
        st.sampled_from(["ts_event_ns", "tick_id", "kind", "seq"]),
        wrong_types,
    ),
    st.sampled_from(["tick_id", "instrument", "ts_event_ns", "price"]).map(
        lambda f: (
            _dumps({k: v for k, v in _trade().items() if k != f}),
            ReasonCode.SCHEMA_VIOLATION,
        )
    ),
    st.text(min_size=1, max_size=8).map(
        lambda extra: (_dumps(_trade(**{"x" + extra: 1})), ReasonCode.SCHEMA_VIOLATION)
    ),
    st.from_regex(r"[A-Z]{1,5}", fullmatch=True)
    .filter(lambda s: s not in KNOWN)
    .map(lambda s: (_dumps(_trade(instrument=s)), ReasonCode.UNKNOWN_INSTRUMENT)),
    st.integers(1, 50).map(lambda d: (b"[" * d + b"]" * d, ReasonCode.SCHEMA_VIOLATION)),
)


def hostile_messages(n_batches: int, batch: int) -> list[tuple[bytes, ReasonCode]]:
    """Draw ``n_batches * batch`` hostile messages with hypothesis (generation only)."""
    drawn: list[tuple[bytes, ReasonCode]] = []

    @settings(
        max_examples=n_batches,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(HOSTILE, min_size=batch, max_size=batch))
    def collect(msgs: list[tuple[bytes, ReasonCode]]) -> None:
        drawn.extend(msgs)

    collect()
    return drawn


def test_hostile_messages_are_conserved_and_each_gets_its_reason(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    hostile = hostile_messages(n_batches=220, batch=50)
    assert len(hostile) >= 10_000
    good = list(synthetic(seed=23, count=6000, bad_rate=0.03))  # DUPLICATE, CROSSED, ...
    rng = random.Random(7)
    records: list[RawRecord] = list(good)
    expected = Counter(r.injected for r in good)
    for i, (payload, reason) in enumerate(hostile):
        key = rng.choice([*KNOWN, ""])
        records.insert(rng.randrange(len(records) + 1), RawRecord(key, payload, "fuzz", i))
        expected[reason.value] += 1
    config = tmp_path / "tickwise.toml"
    config.write_text(CONFIG)

    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    worker = spawn_worker(
        kafka_bootstrap,
        topic_prefix,
        f"fuzz-{uuid.uuid4().hex[:8]}",
        config=str(config),
        log_path=str(tmp_path / "worker.log"),
    )
    try:
        assert publish(records, kafka_bootstrap, topics.raw) == len(records)
        n_bad = sum(n for reason, n in expected.items() if reason is not None)
        quarantined = read_values(kafka_bootstrap, topics.quarantine, n_bad, 240)
        clean = read_values(kafka_bootstrap, topics.clean, len(records) - n_bad, 120)
        assert worker.poll() is None, "the worker must survive every hostile message"
    finally:
        stop_process(worker)

    live_q = [QuarantineRecord.model_validate_json(v) for _, v in quarantined]
    live_clean = [CleanTick.model_validate_json(v) for _, v in clean]
    assert len(live_clean) + len(live_q) == len(records), "raw = clean + quarantined"
    handled = [(x.source.partition, x.source.offset) for x in (*live_clean, *live_q)]
    assert len(set(handled)) == len(records), "every raw message handled exactly once"
    assert Counter(q.reason.value for q in live_q) == expected - Counter({None: expected[None]})
    # each hostile payload carries exactly the reason it was built for, bytes kept as sent
    want = Counter((p, r) for p, r in hostile) + Counter(
        (r.payload, ReasonCode(r.injected)) for r in good if r.injected
    )
    assert Counter((raw_bytes(q), q.reason) for q in live_q) == want

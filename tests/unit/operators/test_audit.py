"""Audit: per-instrument hash chains verify when intact and flag tampering, gaps and reordering."""

from __future__ import annotations

import hashlib
import itertools

import pytest
import stubs

from tests.oracle.risk import RiskEngine
from tickwise.schemas.decisions import (
    AppliedControl,
    AuditRecord,
    Decision,
    RiskCheckResult,
    Side,
    Signal,
)
from tickwise.streams.config import AuditConfig, RiskConfig
from tickwise.streams.operators.audit import (
    GENESIS,
    AuditChain,
    check_link,
    record_hash,
    verify_chain,
)

SIDES = [Side.BUY, Side.FLAT, Side.SELL, Side.BUY, Side.SELL]
EACH = AuditConfig(holds="each")


def decide(risk: RiskEngine, sig: Signal, price: float) -> tuple[Decision, list[RiskCheckResult]]:
    """The decision and its checks, as the pipeline takes them from ``evaluate``."""
    verdict = risk.evaluate(sig, price)
    return verdict.decision, verdict.checks


def build(
    instruments: tuple[str, ...] = ("ES",),
    n: int = 5,
    chain: AuditChain | None = None,
    price0: float = 100.0,
) -> list[AuditRecord]:
    """Audit records for ``n`` decisions per instrument, interleaved (HOLDs recorded too)."""
    chain, risk = chain or AuditChain(EACH), RiskEngine(RiskConfig())
    out = []
    for i in range(n):
        for inst in instruments:
            ts = stubs.T0_NS + i * stubs.S
            sig = stubs.signal(
                SIDES[i % len(SIDES)], tick_id=f"{inst}-{i}", instrument=inst, ts_ns=ts
            )
            fv = stubs.feature_vector(sig.tick_id, ts, price0 + i, inst, x=float(i))
            decision, checks = decide(risk, sig, fv.price)
            out += [entry for entry, _ in chain.on_decision(fv, sig, checks, decision)]
    return out


def test_untouched_chain_verifies() -> None:
    assert verify_chain(build()) == []
    assert verify_chain([]) == []


def test_interleaved_instruments_chain_separately() -> None:
    records = build(("ES", "NQ", "CL"))
    assert verify_chain(records) == []
    es = [r for r in records if r.instrument == "ES"]
    assert [r.seq for r in es] == list(range(5))
    assert es[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(es))
    assert verify_chain(es) == []  # one instrument's records verify on their own


def test_chain_survives_the_wire() -> None:
    records = build(("ES", "NQ"))
    decoded = [AuditRecord.model_validate_json(r.to_bytes()) for r in records]
    assert verify_chain(decoded) == []
    assert [record_hash(r) for r in decoded] == [r.hash for r in records]


def test_sealed_bytes_are_the_record_encoded_and_hashed() -> None:
    # seal() encodes once and splices the hash in; it must equal encoding the signed record,
    # and the hash must be record_hash's, whatever the record holds (odd strings included)
    chain, risk = AuditChain(EACH), RiskEngine(RiskConfig())
    for i, inst in enumerate(["ES", "NQ", "CL"]):
        sig = stubs.signal(SIDES[i], tick_id=f'{inst}-"{i}"', instrument=inst)
        fv = stubs.feature_vector(sig.tick_id, stubs.T0_NS, 100.0 + i, inst, x=-1.5 * i)
        decision, checks = decide(risk, sig, fv.price)
        ((record, wire),) = chain.on_decision(fv, sig, checks, decision)
        assert wire == record.to_bytes()
        assert record.hash == record_hash(record)
        assert AuditRecord.model_validate_json(wire) == record


def test_a_record_from_before_a_contract_grew_verifies_from_its_stored_bytes() -> None:
    # An older producer wrote controls without ``operator``; parsed today the field reads as
    # null and re-encoding changes the bytes, so only the stored bytes can prove the hash.
    sig = stubs.signal(Side.BUY)
    fv = stubs.feature_vector(sig.tick_id, stubs.T0_NS, 100.0)
    decision, checks = decide(RiskEngine(RiskConfig()), sig, fv.price)
    control = AppliedControl(
        command_id="c1", command="kill_switch_on", scope="ES", reason="r", applied_ts_event_ns=1
    )
    ((_, wire),) = AuditChain().on_decision(fv, sig, checks, decision, controls=[control])
    body = wire[: wire.rindex(b',"hash":')].replace(b',"operator":null', b"")
    old = body + b',"hash":"%s"}' % hashlib.sha256(body + b"}").hexdigest().encode()
    record = AuditRecord.model_validate_json(old)
    assert check_link(record, {}, old) == []
    assert check_link(record, {}) != []  # re-encoding the parsed record is not what was hashed
    tampered = old.replace(b'"reason":"r"', b'"reason":"x"')
    assert check_link(AuditRecord.model_validate_json(tampered), {}, tampered) != []


def test_record_contents_match_the_decision() -> None:
    record = build(n=1)[0]
    assert record.tick_ids == [record.decision.tick_id] == [record.signal.tick_id]
    assert record.features == {"x": 0.0}
    assert {"max_position", "max_order_size"} <= {c.check for c in record.checks}
    assert record.hash == record_hash(record) and len(record.hash) == 64


def test_head_follows_the_last_record() -> None:
    chain = AuditChain(EACH)
    assert chain.head("ES") == GENESIS
    records = build(chain=chain)
    assert chain.head("ES") == records[-1].hash != GENESIS
    assert chain.head("NQ") == GENESIS
    more = build(chain=chain, n=1)  # the chain carries on from its head
    assert (more[0].seq, more[0].prev_hash) == (5, records[-1].hash)
    assert verify_chain(records + more) == []


@pytest.mark.parametrize(
    "update",
    [
        {"features": {"x": 1e9}},
        {"ts_event_ns": stubs.T0_NS + 1},
        {"tick_ids": ["forged"]},
        {"audit_id": "aud-ES-other"},
    ],
    ids=["features", "ts", "tick_ids", "audit_id"],
)
def test_modified_record_is_detected(update: dict) -> None:
    records = build()
    records[2] = records[2].model_copy(update=update)
    problems = verify_chain(records)
    assert problems and any("hash does not match" in p for p in problems)


def test_modified_nested_decision_is_detected() -> None:
    records = build()
    forged = records[1].decision.model_copy(update={"approved": not records[1].decision.approved})
    records[1] = records[1].model_copy(update={"decision": forged})
    assert any("hash does not match" in p for p in verify_chain(records))


def test_rehashed_forgery_breaks_the_next_link() -> None:
    records = build()
    forged = records[1].model_copy(update={"features": {"x": -1.0}})
    records[1] = forged.model_copy(update={"hash": record_hash(forged)})
    problems = verify_chain(records)
    assert problems and any(records[2].audit_id in p and "prev_hash" in p for p in problems)


@pytest.mark.parametrize("index", [0, 2])
def test_deleted_record_is_detected(index: int) -> None:
    records = build()
    del records[index]
    problems = verify_chain(records)
    assert problems
    assert any("seq" in p for p in problems) and any("prev_hash" in p for p in problems)


def test_deleted_record_of_one_instrument_is_detected_among_others() -> None:
    records = build(("ES", "NQ"))
    victim = next(i for i, r in enumerate(records) if r.instrument == "NQ" and r.seq == 1)
    del records[victim]
    problems = verify_chain(records)
    assert problems and all("aud-NQ" in p for p in problems)


@pytest.mark.parametrize("i", [0, 1, 3])
def test_reordered_pair_is_detected(i: int) -> None:
    records = build()
    records[i], records[i + 1] = records[i + 1], records[i]
    assert verify_chain(records)


def test_reordering_across_instruments_is_harmless() -> None:
    records = build(("ES", "NQ"))
    es = [r for r in records if r.instrument == "ES"]
    nq = [r for r in records if r.instrument == "NQ"]
    assert verify_chain(nq + es) == []


def test_record_spliced_from_another_chain_is_detected() -> None:
    a, b = build(), build(price0=200.0)  # both genuine, from different histories
    assert verify_chain(b) == []
    a[3] = b[3]
    problems = verify_chain(a)
    assert problems and all("prev_hash" in p for p in problems)

"""The live audit check on real audit bytes: an intact trail raises nothing; each kind of
tampering raises its code, naming the offsets and the records."""

from __future__ import annotations

import json
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.stubs import audit_bodies
from tickwise.schemas.decisions import AuditRecord, Severity
from tickwise.streams.watch.chain import Where, check_record


@cache
def _trail() -> tuple[bytes, ...]:
    return tuple(audit_bodies(1500, holds="each"))  # a record per decision


def _one_instrument() -> list[bytes]:
    first = AuditRecord.model_validate_json(_trail()[0]).instrument
    return [b for b in _trail() if AuditRecord.model_validate_json(b).instrument == first]


def _run(bodies: list[bytes]) -> list[tuple[str, str]]:
    heads: dict[str, dict] = {}
    out = []
    for offset, raw in enumerate(bodies):
        alerts, _ = check_record(raw, Where("audit", 0, offset), heads, 1)
        out += [(a.code, a.detail) for a in alerts]
    return out


def test_an_intact_trail_raises_nothing_and_leaves_each_head_at_the_last_record() -> None:
    heads: dict[str, dict] = {}
    for offset, raw in enumerate(_trail()):
        assert check_record(raw, Where("audit", 0, offset), heads, 1)[0] == []
    last = {}
    for raw in _trail():
        r = AuditRecord.model_validate_json(raw)
        last[r.instrument] = (r.seq, r.hash)
    assert {i: (h["seq"], h["hash"]) for i, h in heads.items()} == last
    assert len(heads) > 1


def test_hold_summaries_are_links_of_the_chain_it_watches() -> None:
    heads: dict[str, dict] = {}
    bodies = audit_bodies(1500)  # records and summaries of holds
    for offset, raw in enumerate(bodies):
        alerts, entry = check_record(raw, Where("audit", 0, offset), heads, 1)
        assert alerts == [] and entry is not None
    summary = next(b for b in bodies if b'"kind":"hold_summary"' in b)
    doc = json.loads(summary)
    doc["holds"] += 1  # a summary that claims one hold more
    altered = [
        json.dumps(doc, separators=(",", ":")).encode() if b == summary else b for b in bodies
    ]
    assert "AUDIT_BROKEN" in [code for code, _ in _run(altered)]


def test_an_altered_record_is_broken_at_its_offset() -> None:
    bodies = _one_instrument()[:10]
    doc = json.loads(bodies[4])
    doc["decision"]["quantity"] = doc["decision"]["quantity"] + 1.0
    bodies[4] = json.dumps(doc, separators=(",", ":")).encode()
    alerts = _run(bodies)
    assert [code for code, _ in alerts] == ["AUDIT_BROKEN"]
    assert "audit[0]@4" in alerts[0][1] and doc["audit_id"] in alerts[0][1]
    assert doc["decision"]["decision_id"] in alerts[0][1]


def test_a_dropped_record_is_a_gap_naming_both_offsets() -> None:
    bodies = _one_instrument()[:10]
    dropped = AuditRecord.model_validate_json(bodies.pop(5))
    alerts = _run(bodies)
    assert [code for code, _ in alerts] == ["AUDIT_GAP"]
    detail = alerts[0][1]
    assert "audit[0]@5" in detail and "audit[0]@4" in detail  # the record after, the one before
    assert f"follows seq {dropped.seq - 1}" in detail and "1 record(s) missing" in detail


def test_swapped_records_are_a_gap_then_a_late_record_and_the_chain_goes_on() -> None:
    bodies = _one_instrument()[:10]
    bodies[3], bodies[4] = bodies[4], bodies[3]
    alerts = _run(bodies)
    assert [code for code, _ in alerts] == ["AUDIT_GAP", "AUDIT_REORDERED"]
    assert "audit[0]@3" in alerts[0][1] and "audit[0]@4" in alerts[1][1]


def test_a_second_record_for_a_seen_seq_is_a_fork_and_an_exact_copy_a_duplicate() -> None:
    bodies = _one_instrument()[:6]
    forked = _run([*bodies, bodies[2]])
    assert [code for code, _ in forked] == ["AUDIT_FORK"]
    copied = _run([*bodies, bodies[5]])
    assert [code for code, _ in copied] == ["AUDIT_DUPLICATE"]


def test_a_rehashed_alteration_breaks_the_next_link() -> None:
    # Whoever alters a record and seals it again still cannot make the next one link to it.
    from tickwise.streams.operators.audit import seal

    bodies = _one_instrument()[:8]
    record = AuditRecord.model_validate_json(bodies[3])
    forged = record.model_copy(update={"hash": "", "features": {"x": 1.0}})
    bodies[3] = seal(forged)[1]
    alerts = _run(bodies)
    assert [code for code, _ in alerts] == ["AUDIT_BROKEN"]
    assert "audit[0]@4" in alerts[0][1] and "at audit[0]@3" in alerts[0][1]


def test_bytes_that_are_no_record_are_unreadable_and_leave_the_heads() -> None:
    heads: dict[str, dict] = {}
    alerts, record = check_record(b'{"not": "a record"}', Where("audit", 2, 9), heads, 5)
    assert record is None and heads == {}
    assert [(a.code, a.severity) for a in alerts] == [("AUDIT_UNREADABLE", Severity.CRITICAL)]
    assert "audit[2]@9" in alerts[0].detail


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_drop_or_swap_of_a_chain_raises_an_alert(data: st.DataObject) -> None:
    bodies = _one_instrument()[:12]
    i = data.draw(st.integers(0, len(bodies) - 2), label="at")
    if data.draw(st.booleans(), label="drop"):
        del bodies[i]
    else:
        bodies[i], bodies[i + 1] = bodies[i + 1], bodies[i]
    assert _run(bodies) != []

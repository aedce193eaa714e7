"""The wall-clock alarms: each condition raises once when it starts and clears once when it
ends; staleness is per instrument; a decision is reported missing once, after its deadline."""

from __future__ import annotations

from tests.stubs import audit_bodies
from tickwise.schemas.decisions import AuditRecord, Severity
from tickwise.streams.config import TickwiseConfig, WatchConfig
from tickwise.streams.watch.app import Trail
from tickwise.streams.watch.chain import Where
from tickwise.streams.watch.health import Alarms, GroupHealth, feed_alerts, group_alerts

CONFIG = WatchConfig(stale_after_s=5.0, audit_deadline_s=2.0, max_lag=100)


def test_only_the_silent_instrument_is_stale_and_it_clears_once_it_ticks() -> None:
    alarms = Alarms()
    seen = {"ES": 100.0, "NQ": 100.0}
    assert feed_alerts(alarms, seen, 104.0, CONFIG) == []
    seen["NQ"] = 104.0
    stale = feed_alerts(alarms, seen, 106.0, CONFIG)
    assert [(a.code, a.instrument, a.severity) for a in stale] == [
        ("FEED_STALE", "ES", Severity.WARNING)
    ]
    assert "6.0 s" in stale[0].detail
    assert feed_alerts(alarms, seen, 107.0, CONFIG) == []  # still stale: no repeat
    seen["ES"] = 108.0
    cleared = feed_alerts(alarms, seen, 108.5, CONFIG)
    assert [(a.code, a.instrument, a.severity) for a in cleared] == [
        ("FEED_STALE_CLEARED", "ES", Severity.INFO)
    ]


def test_group_alarms_follow_members_lag_and_the_broker() -> None:
    alarms = Alarms()
    fine = GroupHealth("tickwise", "STABLE", 1, 3, {0: 3})
    assert group_alerts(alarms, fine, 1.0, CONFIG) == []
    dead = GroupHealth("tickwise", "EMPTY", 0, 500, {0: 400, 1: 100})
    codes = [a.code for a in group_alerts(alarms, dead, 2.0, CONFIG)]
    assert codes == ["WORKER_DOWN", "WORKER_LAG"]
    unreachable = group_alerts(alarms, ConnectionError("timed out"), 3.0, CONFIG)
    assert [(a.code, a.severity) for a in unreachable] == [
        ("BROKER_UNREACHABLE", Severity.CRITICAL)
    ]
    back = [a.code for a in group_alerts(alarms, fine, 4.0, CONFIG)]
    assert back == ["BROKER_UNREACHABLE_CLEARED", "WORKER_DOWN_CLEARED", "WORKER_LAG_CLEARED"]
    assert alarms.firing() == []


def test_a_decision_without_its_audit_record_is_reported_once_after_the_deadline() -> None:
    everything = audit_bodies(1500, holds="each")
    bodies = everything[:3]
    records = [AuditRecord.model_validate_json(b) for b in bodies]
    trail = Trail(TickwiseConfig(watch=CONFIG), {}, {})
    for i, r in enumerate(records):
        trail.on_decision(r.decision.to_bytes(), Where("decisions", 1, 10 + i), 100.0)
    # audit records of the first two arrive (the order of the two topics does not matter)
    for i, b in enumerate(bodies[:2]):
        assert trail.on_audit(b, Where("audit", 1, 20 + i), 100.5) == []
    assert trail.overdue(101.0) == []
    late = trail.overdue(102.5)
    assert [(a.code, a.severity) for a in late] == [("AUDIT_MISSING", Severity.CRITICAL)]
    assert records[2].decision.decision_id in late[0].detail and "decisions[1]@12" in late[0].detail
    assert trail.overdue(110.0) == []
    # an audit record read before its decision is not a missing one
    early = everything[3]
    # (the chain itself misses the third record, which the chain check says)
    assert [a.code for a in trail.on_audit(early, Where("audit", 1, 30), 111.0)] == ["AUDIT_GAP"]
    decision = AuditRecord.model_validate_json(early).decision
    trail.on_decision(decision.to_bytes(), Where("decisions", 1, 31), 111.0)
    assert trail.overdue(200.0) == [] and len(trail.pending) == 1  # only the missing one

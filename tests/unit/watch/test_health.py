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
        assert trail.on_audit(b, Where("audit", 1, 20 + i), 100.5)[0] == []
    assert trail.overdue(101.0) == []
    late = trail.overdue(102.5)
    assert [(a.code, a.severity) for a in late] == [("AUDIT_MISSING", Severity.CRITICAL)]
    assert records[2].decision.decision_id in late[0].detail and "decisions[1]@12" in late[0].detail
    assert trail.overdue(110.0) == []
    # an audit record read before its decision is not a missing one
    early = everything[3]
    # (the chain itself misses the third record, which the chain check says)
    found, _ = trail.on_audit(early, Where("audit", 1, 30), 111.0)
    assert [a.code for a in found] == ["AUDIT_GAP"]
    decision = AuditRecord.model_validate_json(early).decision
    trail.on_decision(decision.to_bytes(), Where("decisions", 1, 31), 111.0)
    assert trail.overdue(200.0) == [] and len(trail.pending) == 1  # only the missing one


def test_a_decision_read_ahead_of_its_audit_partition_waits_for_that_partition() -> None:
    """A watchtower catching up reads a decision long before the audit record the worker wrote
    with it: no alarm while the audit partition is still read up to the decision's time; one
    once it was read past it by the deadline without the record, or went quiet."""
    bodies = audit_bodies(1500, holds="each")
    records = [AuditRecord.model_validate_json(b) for b in bodies[:40]]
    trail = Trail(TickwiseConfig(watch=CONFIG), {}, {}, started=0.0)
    # decisions produced at t = 10, 11 (Kafka time), read at wall time 100
    for i, r in enumerate(records[:2]):
        trail.on_decision(r.decision.to_bytes(), Where("decisions", 0, i), 100.0, ts=10.0 + i)
    # the audit partition is read on, far behind: records produced at 1.0, 1.1, ...
    for i, b in enumerate(bodies[2:30]):
        trail.on_audit(b, Where("audit", 0, i), 100.0 + i, ts=1.0 + i / 10)
        assert trail.overdue(100.0 + i) == []
    # it reaches past t = 10 + 2 s: the first decision's record should have come by now
    trail.on_audit(bodies[30], Where("audit", 0, 28), 128.5, ts=12.0)
    late = trail.overdue(128.5)
    assert [a.code for a in late] == ["AUDIT_MISSING"]
    assert records[0].decision.decision_id in late[0].detail
    # the second one (t = 11) is not past yet; the partition then goes quiet for the deadline
    assert trail.overdue(130.0) == []
    assert [a.code for a in trail.overdue(130.5)] == ["AUDIT_MISSING"]
    # a decision on a partition nothing was read of waits the deadline from the start
    other = records[35].decision
    trail.on_decision(other.to_bytes(), Where("decisions", 3, 0), 131.0, ts=50.0)
    restored = {other.decision_id: trail.pending[other.decision_id]}  # a restart's table
    fresh = Trail(TickwiseConfig(watch=CONFIG), {}, restored, started=132.0)
    assert fresh.overdue(133.0) == []
    assert [a.alert_id for a in fresh.overdue(134.0)] == [
        f"watch-AUDIT_MISSING-{other.decision_id}"
    ]

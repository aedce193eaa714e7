"""The watchtower's metrics: the names it declares are the ones it exports, and each gauge shows
what the last look found (a failed probe marks the broker unreachable and keeps the group's
last figures)."""

from __future__ import annotations

from tickwise.schemas.decisions import Severity
from tickwise.streams.watch.alerts import CODES, watch_alert
from tickwise.streams.watch.health import GroupHealth
from tickwise.streams.watch.metrics import METRIC_NAMES, WatchMetrics


def exported_names(metrics: WatchMetrics) -> set[str]:
    """Series names as a scrape shows them (a counter's ``_created`` is prometheus_client's)."""
    return {
        sample.name
        for family in metrics.registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def value(metrics: WatchMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_declared_name_is_exported_and_nothing_else() -> None:
    metrics = WatchMetrics()
    metrics.on_feeds({"ES": 1.0}, {"ES": True}, set(), 2.0)
    metrics.on_group(GroupHealth("tickwise", "STABLE", 1, 0), 10)
    metrics.on_heads({"ES": {"seq": 3}})
    metrics.on_kill_switches({"global": False})
    metrics.on_checked("audit")
    metrics.on_look(2.0)
    assert exported_names(metrics) == METRIC_NAMES


def test_every_alert_code_is_counted_from_zero() -> None:
    metrics = WatchMetrics()
    for code, severity in CODES.items():
        assert (
            value(metrics, "tickwise_watch_alerts_total", code=code, severity=severity.value) == 0
        )
    metrics.on_alerts(
        [watch_alert("AUDIT_GAP", "x", "a", 1), watch_alert("AUDIT_GAP", "y", "b", 2)]
    )
    metrics.on_alerts([watch_alert("FEED_STALE", "z", "ES", 3, "ES")])
    gap = value(metrics, "tickwise_watch_alerts_total", code="AUDIT_GAP", severity="CRITICAL")
    stale = value(metrics, "tickwise_watch_alerts_total", code="FEED_STALE", severity="WARNING")
    assert (gap, stale) == (2, 1)
    assert CODES["AUDIT_GAP"] is Severity.CRITICAL


def test_feeds_show_age_and_staleness_per_instrument() -> None:
    metrics = WatchMetrics()
    sessions = {"ES": True, "NQ": True, "CL": False}
    metrics.on_feeds({"ES": 100.0, "NQ": 108.0}, sessions, {"ES"}, 110.0)
    assert value(metrics, "tickwise_watch_feed_age_seconds", instrument="ES") == 10.0
    assert value(metrics, "tickwise_watch_feed_age_seconds", instrument="NQ") == 2.0
    assert value(metrics, "tickwise_watch_feed_stale", instrument="ES") == 1
    assert value(metrics, "tickwise_watch_feed_stale", instrument="NQ") == 0
    # an instrument watched for its own session hours, never seen: no age, its session shown
    assert value(metrics, "tickwise_watch_feed_age_seconds", instrument="CL") is None
    assert value(metrics, "tickwise_watch_feed_in_session", instrument="CL") == 0
    assert value(metrics, "tickwise_watch_feed_in_session", instrument="ES") == 1
    metrics.on_feeds({"ES": 111.0, "NQ": 108.0}, {"ES": True, "NQ": True}, set(), 111.5)
    assert value(metrics, "tickwise_watch_feed_stale", instrument="ES") == 0


def test_a_failed_probe_marks_the_broker_and_keeps_the_group_as_last_seen() -> None:
    metrics = WatchMetrics()
    metrics.on_group(GroupHealth("tickwise", "STABLE", 2, 40, {0: 40}), 100)
    metrics.on_group(ConnectionError("timed out"), 100)
    assert value(metrics, "tickwise_watch_broker_reachable") == 0
    assert value(metrics, "tickwise_watch_worker_members", group="tickwise") == 2
    metrics.on_group(GroupHealth("tickwise", "EMPTY", 0, 900, {0: 900}), 100)
    assert value(metrics, "tickwise_watch_broker_reachable") == 1
    assert value(metrics, "tickwise_watch_worker_members", group="tickwise") == 0
    assert value(metrics, "tickwise_watch_worker_lag_messages", group="tickwise") == 900
    assert value(metrics, "tickwise_watch_worker_lag_limit_messages", group="tickwise") == 100


def test_kill_switches_and_chain_heads_follow_their_tables() -> None:
    metrics = WatchMetrics()
    metrics.on_kill_switches({"global": True, "ES": False})
    assert value(metrics, "tickwise_watch_kill_switch", scope="global") == 1
    assert value(metrics, "tickwise_watch_kill_switch", scope="ES") == 0
    metrics.on_kill_switches({"global": False, "ES": False})
    assert value(metrics, "tickwise_watch_kill_switch", scope="global") == 0
    metrics.on_heads({"ES": {"seq": 41}, "NQ": None})
    assert value(metrics, "tickwise_watch_audit_chain_head_seq", instrument="ES") == 41
    assert value(metrics, "tickwise_watch_audit_chain_head_seq", instrument="NQ") is None

"""The demo's watchtower summary: figures read from a real ``WatchMetrics`` registry, and the
verdict on the live audit check (intact, broken with the alerts' details, behind, heads that
disagree with the audit store, a watchtower that never answered)."""

from __future__ import annotations

from prometheus_client import generate_latest

from tickwise.schemas.decisions import Alert
from tickwise.streams.demo import TRAIL_CODES, WatchFigures, watch_summary
from tickwise.streams.live.metrics import Samples, parse_samples
from tickwise.streams.watch.alerts import watch_alert
from tickwise.streams.watch.metrics import WatchMetrics

AUDIT, DECISIONS = "demo-x.audit", "demo-x.decisions"


def samples_of(metrics: WatchMetrics) -> Samples:
    """What a scrape of the watchtower's /metrics returns."""
    return parse_samples(generate_latest(metrics.registry).decode())


def watched(audit: int, decisions: int, alerts: list[Alert]) -> WatchMetrics:
    metrics = WatchMetrics()
    for _ in range(audit):
        metrics.on_checked(AUDIT)
    for _ in range(decisions):
        metrics.on_checked(DECISIONS)
    metrics.on_heads({"ES": {"seq": 41, "hash": "h"}, "NQ": {"seq": 7, "hash": "g"}})
    metrics.on_kill_switches({"global": True, "ES": False})
    metrics.on_alerts(alerts)
    metrics.on_look(1_700_000_000.0)
    return metrics


def test_figures_read_back_what_the_watchtower_counted() -> None:
    down = watch_alert("WORKER_DOWN", "no member", "g", 1)
    figures = WatchFigures.of(samples_of(watched(50, 48, [down, down])))
    assert figures.checked == {AUDIT: 50, DECISIONS: 48}
    assert figures.heads == {"ES": 41, "NQ": 7}
    assert figures.alerts == {("WORKER_DOWN", "CRITICAL"): 2}  # codes never raised are left out
    assert figures.kill_switches == {"global": True, "ES": False}
    assert figures.last_look == 1_700_000_000.0


def test_a_clean_run_is_intact_and_lists_the_wall_clock_alerts_with_their_severity() -> None:
    down = watch_alert("WORKER_DOWN", "no member", "g", 1)
    cleared = watch_alert("WORKER_DOWN_CLEARED", "a member again", "g", 2)
    figures = WatchFigures.of(samples_of(watched(50, 48, [down, cleared])))
    lines, held = watch_summary(figures, {AUDIT: 50, DECISIONS: 48}, {"ES": 41, "NQ": 7}, [])
    assert held
    text = "\n".join(lines)
    assert "checked 50 of 50 on demo-x.audit, 48 of 48 on demo-x.decisions" in text
    assert "ES seq 41, NQ seq 7 (the audit store's verify agrees)" in text
    assert "audit chain: intact" in text
    assert "WORKER_DOWN=1 (CRITICAL), WORKER_DOWN_CLEARED=1 (INFO)" in text
    assert "global on" in text


def test_a_broken_trail_fails_and_names_where() -> None:
    gap = watch_alert("AUDIT_GAP", "demo-x.audit/0@17: aud-ES-9 after aud-ES-7 @15", "ES-9", 1)
    assert gap.code in TRAIL_CODES
    figures = WatchFigures.of(samples_of(watched(50, 48, [gap])))
    lines, held = watch_summary(figures, {AUDIT: 50, DECISIONS: 48}, {"ES": 41, "NQ": 7}, [gap])
    assert not held
    text = "\n".join(lines)
    assert "audit chain: BROKEN (AUDIT_GAP=1)" in text and "@17" in text
    assert "intact" not in text


def test_a_duplicate_is_shown_but_is_no_break() -> None:
    dup = watch_alert("AUDIT_DUPLICATE", "the head again", "ES-41", 1)
    assert dup.code not in TRAIL_CODES
    figures = WatchFigures.of(samples_of(watched(50, 48, [dup])))
    lines, held = watch_summary(figures, {AUDIT: 50, DECISIONS: 48}, {"ES": 41, "NQ": 7}, [])
    assert held and "AUDIT_DUPLICATE=1 (WARNING)" in "\n".join(lines)


def test_records_not_all_checked_or_heads_that_differ_fail() -> None:
    figures = WatchFigures.of(samples_of(watched(49, 48, [])))
    lines, held = watch_summary(figures, {AUDIT: 50, DECISIONS: 48}, {"ES": 41, "NQ": 7}, [])
    assert not held and "not checked to the end" in "\n".join(lines)

    figures = WatchFigures.of(samples_of(watched(50, 48, [])))
    lines, held = watch_summary(figures, {AUDIT: 50, DECISIONS: 48}, {"ES": 42, "NQ": 7}, [])
    assert not held and "the audit store has" in "\n".join(lines)


def test_a_watchtower_that_never_answered_fails() -> None:
    lines, held = watch_summary(None, {AUDIT: 50, DECISIONS: 48}, {}, [])
    assert not held and "never answered" in lines[0]

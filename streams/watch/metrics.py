"""The watchtower's Prometheus metrics: what it measured on its last look, and what it raised.

The alert rules in ``deploy/prometheus/tickwise-alerts.yml`` are written against these names
(a test holds them to ``METRIC_NAMES``). Gauges are set from the event loop after each look and
each control command, the raw-tick counters by the reader's thread (``ticks``); prometheus_client's
values are thread-safe, so the metrics thread reads them without touching the faust tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tickwise.schemas.decisions import Alert
from tickwise.streams.watch.alerts import CODES
from tickwise.streams.watch.health import GroupHealth

# Every series name the watchtower exports (counters with their ``_total`` suffix).
METRIC_NAMES = frozenset(
    {
        "tickwise_watch_alerts_total",
        "tickwise_watch_checked_total",
        "tickwise_watch_ticks_read_total",
        "tickwise_watch_tick_read_errors_total",
        "tickwise_watch_feed_age_seconds",
        "tickwise_watch_feed_stale",
        "tickwise_watch_feed_in_session",
        "tickwise_watch_worker_members",
        "tickwise_watch_worker_lag_messages",
        "tickwise_watch_worker_lag_limit_messages",
        "tickwise_watch_broker_reachable",
        "tickwise_watch_audit_chain_head_seq",
        "tickwise_watch_kill_switch",
        "tickwise_watch_last_look_timestamp_seconds",
    }
)


class WatchMetrics:
    """The watchtower's metric families in a registry of their own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        reg = self.registry
        self.alerts = Counter(
            "tickwise_watch_alerts",
            "Alerts the watchtower sent to the alerts topic, by code and severity.",
            ["code", "severity"],
            registry=reg,
        )
        for code, severity in CODES.items():  # at 0 from the start, so increase() sees the 1st
            self.alerts.labels(code, severity.value)
        self.checked = Counter(
            "tickwise_watch_checked",
            "Messages of audit and decisions checked, by topic.",
            ["topic"],
            registry=reg,
        )
        self.ticks_read = Counter(
            "tickwise_watch_ticks_read",
            "Ticks of ticks.raw the watchtower's reader has read (their keys only).",
            registry=reg,
        )
        self.tick_read_errors = Counter(
            "tickwise_watch_tick_read_errors",
            "Errors the raw-tick reader met (each logged: a broker away, a refused read).",
            registry=reg,
        )
        inst = ["instrument"]
        self.feed_age = Gauge(
            "tickwise_watch_feed_age_seconds",
            "Wall seconds since the instrument's last tick on ticks.raw (as of the last look).",
            inst,
            registry=reg,
        )
        self.feed_in_session = Gauge(
            "tickwise_watch_feed_in_session",
            "1 while the instrument's session hours ([watch] session) are open, else 0.",
            inst,
            registry=reg,
        )
        self.feed_stale = Gauge(
            "tickwise_watch_feed_stale",
            "1 while FEED_STALE is on for the instrument (in session, silent for stale_after_s).",
            inst,
            registry=reg,
        )
        group = ["group"]
        self.members = Gauge(
            "tickwise_watch_worker_members",
            "Members of the workers' consumer group.",
            group,
            registry=reg,
        )
        self.lag = Gauge(
            "tickwise_watch_worker_lag_messages",
            "The workers' backlog on ticks.raw: committed offsets to last stable offsets.",
            group,
            registry=reg,
        )
        self.lag_limit = Gauge(
            "tickwise_watch_worker_lag_limit_messages",
            "[watch] max_lag: the backlog above which WORKER_LAG is raised.",
            group,
            registry=reg,
        )
        self.broker = Gauge(
            "tickwise_watch_broker_reachable",
            "1 if the broker answered the watchtower's last probe, else 0.",
            registry=reg,
        )
        self.chain_seq = Gauge(
            "tickwise_watch_audit_chain_head_seq",
            "Sequence number of the last record the instrument's audit chain moved to.",
            inst,
            registry=reg,
        )
        self.kill_switch = Gauge(
            "tickwise_watch_kill_switch",
            "1 while the kill switch of the scope ('global' or an instrument) is on, else 0.",
            ["scope"],
            registry=reg,
        )
        self.last_look = Gauge(
            "tickwise_watch_last_look_timestamp_seconds",
            "Wall time (Unix seconds) of the watchtower's last look at feeds and workers.",
            registry=reg,
        )

    def on_alerts(self, alerts: list[Alert]) -> None:
        """Count alerts as they are sent."""
        for alert in alerts:
            self.alerts.labels(alert.code, alert.severity.value).inc()

    def on_checked(self, topic: str, count: int = 1) -> None:
        self.checked.labels(topic).inc(count)

    def on_ticks_read(self, count: int) -> None:
        self.ticks_read.inc(count)

    def on_tick_read_error(self) -> None:
        self.tick_read_errors.inc()

    def on_feeds(
        self,
        last_seen: Mapping[str, float],
        in_session: Mapping[str, bool],
        stale: set[str],
        now: float,
    ) -> None:
        """Each watched instrument's session and staleness, and the age of its last tick, as of
        ``now`` (wall s); ``in_session`` names every instrument watched."""
        for instrument, seen in last_seen.items():
            self.feed_age.labels(instrument).set(max(0.0, now - seen))
        for instrument, open_now in in_session.items():
            self.feed_in_session.labels(instrument).set(int(open_now))
            self.feed_stale.labels(instrument).set(int(instrument in stale))

    def on_group(self, health: GroupHealth | Exception, max_lag: int) -> None:
        """What the probe found; a failed probe leaves the group's last figures as they were."""
        if isinstance(health, Exception):
            self.broker.set(0)
            return
        self.broker.set(1)
        self.members.labels(health.group).set(health.members)
        self.lag.labels(health.group).set(health.lag)
        self.lag_limit.labels(health.group).set(max_lag)

    def on_heads(self, heads: Mapping[str, Any]) -> None:
        """Each chain's head sequence number (``heads``: the chain-heads table)."""
        for instrument, head in heads.items():
            if head is not None:
                self.chain_seq.labels(instrument).set(head["seq"])

    def on_kill_switches(self, switches: Mapping[str, bool]) -> None:
        """Each scope's kill switch (``switches``: the kill-switch table, scope -> on)."""
        for scope, on in switches.items():
            self.kill_switch.labels(scope).set(int(on))

    def on_look(self, now: float) -> None:
        self.last_look.set(now)

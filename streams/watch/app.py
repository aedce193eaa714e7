"""``tickwise watch``: the faust app that feeds the watchtower's checks and keeps their state.

Its inputs, its own consumer group (``[watch] group_id`` behind the topic prefix):
- ``audit`` and ``decisions`` in one agent, a batch at a time, so each record meets its chain's
  head (``chain.check_record``) and each decision its audit record (``Trail``), and each audit
  entry, decoded once, is counted in its key's trading windows, whose anomalies raise alerts
  and whose policies publish on ``control`` (``trading``);
- the keys of ``ticks.raw``, for the wall time each instrument last ticked, read off faust by a
  batch consumer on a thread of its own (``ticks``) and taken into the feed table at each look;
- ``control``, for the kill switches in force (shown as metrics);
- ``registry``, the model registry's log, a hash chain checked as the audit trail is
  (``chain.check_registry``);
- a timer that checks the deadlines, the feeds and the workers' group (``health``), and sets
  the Prometheus gauges from what it found (``metrics``);
- with ``--web-port``, faust's web server with two views (``views``): the last look's health and
  the windows table, as JSON for the console, behind the console's doors.

State lives in faust tables backed by changelog topics: the chain heads (the registry's
in a table of its own, co-partitioned with its topic), the decisions awaiting
their audit record, the trading windows, the last tick per instrument, the kill switches, and
the offset each input partition was checked up to. The trail agent writes its tables once per
batch (``behind``), the checked offsets last; the timer writes the last ticks once per look. A
restarted watchtower reads the changelogs, not the audit topic, and a message re-delivered
after a restart (faust commits offsets after the tables moved on) is recognised by its offset
and not checked twice.

It reads ``read_committed``, like every other reader of the workers' output: records of a
transaction the worker aborted and then wrote again must not look like a fork.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import math
import sys
import tempfile
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import mode
from faust.transport.drivers import aiokafka as aiokafka_driver
from pydantic import ValidationError

from tickwise.schemas.decisions import Alert, AuditRecord, ControlCommand, Decision, Severity
from tickwise.schemas.topics import Topics
from tickwise.streams.config import TickwiseConfig, load_config
from tickwise.streams.live.bootstrap import resolve_bootstrap
from tickwise.streams.live.metrics import serve_registry
from tickwise.streams.live.security import faust_credentials
from tickwise.streams.operators.audit import Entry
from tickwise.streams.operators.control import KILL_COMMANDS
from tickwise.streams.watch.alerts import watch_alert
from tickwise.streams.watch.behind import Behind
from tickwise.streams.watch.chain import Where, check_record, check_registry
from tickwise.streams.watch.health import (
    Alarms,
    feed_alerts,
    group_alerts,
    in_session,
    missing_audits,
)
from tickwise.streams.watch.metrics import WatchMetrics
from tickwise.streams.watch.probe import admin_client, partition_counts, probe_group
from tickwise.streams.watch.ticks import LatestTicks, TickReader
from tickwise.streams.watch.trading import Trading
from tickwise.streams.watch.views import HealthBoard, WebDoor, add_views
from tickwise.streams.web.auth import AuthConfigError, Users
from tickwise.streams.web.doors import DoorError, check_listen

log = logging.getLogger(__name__)

# Alerts and changelog messages wait this long to share a produce request (faust: none).
PRODUCER_LINGER_S = 0.005
# The trail agent's batches: at most this many messages, or what came within this many seconds.
TRAIL_BATCH = 2000
TRAIL_BATCH_WITHIN_S = 0.1


class _ReadCommittedThread(aiokafka_driver.AIOKafkaConsumerThread):
    """faust's consumer reads ``read_committed`` only in its exactly-once mode; this one always."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._isolation_level = "read_committed"  # aiokafka reads it when it starts
        return consumer


class _ReadCommittedConsumer(aiokafka_driver.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


class _ReadCommittedTransport(aiokafka_driver.Transport):
    Consumer = _ReadCommittedConsumer


class WatchWorker(faust.Worker):
    """faust's worker without its terminal spinner: to spin on every log record, faust puts the
    root logger at DEBUG, so every debug call of faust and aiokafka (one per message sent)
    builds a record that the handler then drops."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)


class WatchApp(faust.App):
    """A faust app whose consumer reads committed records only."""

    def _new_transport(self) -> Any:
        return _ReadCommittedTransport(self.conf.broker_consumer, self)


@dataclass
class Trail:
    """The checks on ``audit`` and ``decisions``, over mappings (faust tables in the app).

    A decision's deadline runs on the audit partition it shares, not on the watchtower's own
    reading: the two topics are fetched apart, so a watchtower catching up may read a decision
    long before the audit record the worker wrote in the same transaction. A decision is
    missing its record once it was read ``audit_deadline_s`` ago and either the audit partition
    was read past the decision's time (Kafka's, the worker's clock) by the deadline, or nothing
    was read from that partition for the deadline (a worker gone; a watchtower caught up).
    """

    config: TickwiseConfig
    heads: MutableMapping[str, Any]
    pending: MutableMapping[str, Any]
    reported: set[str] = field(default_factory=set)
    # audit partition -> the latest record time read (Kafka's, s); the wall time of that read
    audit_clock: dict[int, float] = field(default_factory=dict)
    audit_read: dict[int, float] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def on_audit(
        self, raw: bytes, where: Where, now: float, ts: float | None = None
    ) -> tuple[list[Alert], Entry | None]:
        """The alerts of an audit message, and its entry (None when it is none); ``ts``: its
        Kafka timestamp (None: ``now``)."""
        stamp = now if ts is None else ts
        self.audit_clock[where.partition] = max(self.audit_clock.get(where.partition, stamp), stamp)
        self.audit_read[where.partition] = now
        alerts, record = check_record(raw, where, self.heads, int(now * 1e9))
        if isinstance(record, AuditRecord):  # a hold summary stands for no published decision
            self._meet(record.decision.decision_id, record.instrument, where, now, stamp, True)
        return alerts, record

    def on_decision(
        self, raw: bytes, where: Where, now: float, ts: float | None = None
    ) -> list[Alert]:
        try:
            decision = Decision.model_validate_json(raw)
        except ValidationError as exc:
            detail = f"{where}: not a decision ({exc.error_count()} errors)"
            return [watch_alert("DECISION_UNREADABLE", detail, where, int(now * 1e9))]
        stamp = now if ts is None else ts
        self._meet(decision.decision_id, decision.instrument, where, now, stamp, False)
        return []

    def _meet(
        self,
        decision_id: str,
        instrument: str,
        where: Where,
        now: float,
        ts: float,
        audited: bool,
    ) -> None:
        """A decision and its audit record may be read in either order; the second one read
        clears the first."""
        if decision_id in self.pending:
            del self.pending[decision_id]
            return
        self.pending[decision_id] = {
            "seen": now,
            "ts": ts,
            "partition": where.partition,
            "at": str(where),
            "instrument": instrument,
            "audited": audited,
        }

    def catching_up(self, entry: Mapping[str, Any], now: float) -> bool:
        """Whether the audit partition of a pending decision is still being read up to the
        decision's time, so that its record may yet come."""
        partition = entry.get("partition")
        if partition is None:
            return False
        deadline = self.config.watch.audit_deadline_s
        quiet = now - self.audit_read.get(partition, self.started) >= deadline
        past = self.audit_clock.get(partition, -math.inf) >= entry["ts"] + deadline
        return not quiet and not past

    def overdue(self, now: float) -> list[Alert]:
        unaudited = (
            (k, v)
            for k, v in self.pending.items()
            if not v["audited"] and not self.catching_up(v, now)
        )
        return missing_audits(unaudited, self.reported, now, self.config.watch)


def build_app(
    config: TickwiseConfig,
    bootstrap: str,
    store: str = "memory://",
    metrics: WatchMetrics | None = None,
    web: WebDoor | None = None,
) -> tuple[faust.App, dict[str, Any]]:
    """The watchtower's faust app; also returns its tables by name (for tests and views).

    ``metrics``: the gauges and counters it keeps up to date (a registry of its own if unset);
    ``web``: where to serve the health and windows views (``views``; unset: no web server).
    """
    topics = Topics(config.topic_prefix)
    watch = config.watch
    metrics = metrics if metrics is not None else WatchMetrics()
    admin = admin_client(bootstrap)
    inputs = [
        topics.audit,
        topics.decisions,
        topics.raw,
        topics.control,
        topics.alerts,
        topics.registry,
    ]
    counts = partition_counts(admin, inputs)
    if counts[topics.audit] != counts[topics.decisions]:
        raise RuntimeError(
            f"{topics.audit} has {counts[topics.audit]} partitions and {topics.decisions} "
            f"{counts[topics.decisions]}: the watchtower needs them co-partitioned"
        )
    app_id = f"{config.topic_prefix}{watch.group_id}"
    datadir = Path(tempfile.gettempdir()) / f"tickwise-faust-{getpass.getuser()}"
    datadir.mkdir(exist_ok=True)
    app = WatchApp(
        app_id,
        broker=[f"kafka://{server}" for server in bootstrap.split(",")],
        store=store,
        datadir=str(datadir / app_id),
        key_serializer="raw",
        value_serializer="raw",
        **(web.settings() if web is not None else {"web_enabled": False}),
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        table_standby_replicas=0,
        topic_allow_declare=True,
        broker_credentials=faust_credentials(),
        producer_linger=PRODUCER_LINGER_S,
    )
    trail_parts, raw_parts = counts[topics.audit], counts[topics.raw]

    def table(name: str, partitions: int) -> Any:
        return app.Table(name, partitions=partitions, key_type=str, default=None)

    tables = {
        "heads": table("chain-heads", trail_parts),
        "pending": table("pending-decisions", trail_parts),
        "checked": table("checked-offsets", trail_parts),
        "windows": table("trading-windows", trail_parts),
        "feeds": table("feed-last-tick", raw_parts),
        "kill_switches": table("kill-switches", counts[topics.control]),
        "registry_heads": table("registry-heads", counts[topics.registry]),
        "registry_checked": table("registry-checked-offsets", counts[topics.registry]),
    }
    # the trail agent's tables, written a batch at a time; the checked offsets last
    heads, pending = Behind(tables["heads"]), Behind(tables["pending"])
    windows, checked = Behind(tables["windows"]), Behind(tables["checked"])
    behind = (heads, pending, windows, checked)
    trail = Trail(config, heads, pending)
    alarms = Alarms()
    board = HealthBoard()
    alerts_topic = app.topic(topics.alerts, value_serializer="raw", key_serializer="raw")

    async def send(alerts: list[Alert]) -> None:
        for alert in alerts:
            level = logging.CRITICAL if alert.severity is Severity.CRITICAL else logging.WARNING
            log.log(level, "%s %s", alert.code, alert.detail)
            key = (alert.instrument or alert.code).encode()
            await alerts_topic.send(key=key, value=alert.to_bytes())
        metrics.on_alerts(alerts)

    trading = Trading(app, config, topics, windows)
    trail_topic = app.topic(topics.audit, topics.decisions, value_serializer="raw")

    def check_batch(events: list[Any]) -> tuple[list[Alert], list[ControlCommand]]:
        """Check a batch of the trail in order; write its tables once, at the end."""
        alerts: list[Alert] = []
        commands: list[ControlCommand] = []
        per_topic: dict[str, int] = {}  # messages checked
        now = time.time()
        for event in events:
            msg = event.message
            mark = f"{msg.topic}:{msg.partition}"
            done = checked.get(mark)
            if done is not None and msg.offset <= done:
                continue  # checked before a restart: the tables already hold its outcome
            for view in behind:
                view.partition = msg.partition
            where = Where(msg.topic, msg.partition, msg.offset)
            value = event.value or b""
            if msg.topic == topics.audit:
                found, entry = trail.on_audit(value, where, now, msg.timestamp)
                alerts += found
                if entry is not None:  # an unreadable one is the chain check's to report
                    found, ordered = trading.on_entry(entry)
                    alerts += found
                    commands += ordered
            else:
                alerts += trail.on_decision(value, where, now, msg.timestamp)
            checked[mark] = msg.offset
            per_topic[msg.topic] = per_topic.get(msg.topic, 0) + 1
        for view in behind:
            view.flush()
        for topic, count in per_topic.items():
            metrics.on_checked(topic, count)
        return alerts, commands

    @app.agent(trail_topic)
    async def check_trail(stream: Any) -> None:
        async for events in stream.take_events(TRAIL_BATCH, within=TRAIL_BATCH_WITHIN_S):
            alerts, commands = check_batch(events)
            await send(alerts)
            await trading.publish(commands)

    registry_topic = app.topic(topics.registry, value_serializer="raw")

    @app.agent(registry_topic)
    async def check_registry_log(stream: Any) -> None:
        heads, checked = tables["registry_heads"], tables["registry_checked"]
        async for event in stream.events():
            msg = event.message
            done = checked.get(str(msg.partition))
            if done is not None and msg.offset <= done:
                continue  # checked before a restart
            where = Where(msg.topic, msg.partition, msg.offset)
            alerts, _ = check_registry(event.value or b"", where, heads, time.time_ns())
            checked[str(msg.partition)] = msg.offset
            metrics.on_checked(msg.topic)
            await send(alerts)

    latest = LatestTicks()
    reader = TickReader(
        bootstrap,
        topics.raw,
        f"{app_id}-ticks",
        latest,
        lookback_s=watch.stale_after_s,
        on_read=metrics.on_ticks_read,
        on_error=metrics.on_tick_read_error,
    )
    feeds = Behind(tables["feeds"])

    @app.service
    class ReadTicks(mode.Service):
        """The raw-tick reader's thread, started and stopped with the app."""

        async def on_start(self) -> None:
            reader.start()

        async def on_stop(self) -> None:
            await asyncio.to_thread(reader.stop)

    def note_ticks() -> None:
        """The latest tick of each instrument read since the last look, into the feed table:
        a changelog message per instrument that ticked, on its raw partition."""
        for instrument, last in latest.take().items():
            feeds.partition = last.partition
            feeds[instrument] = last.seen
        feeds.flush()

    control_topic = app.topic(topics.control, value_serializer="raw", key_serializer="raw")

    @app.agent(control_topic)
    async def note_controls(stream: Any) -> None:
        switches = tables["kill_switches"]
        async for event in stream.events():
            msg = event.message
            try:
                command = ControlCommand.model_validate_json(event.value or b"")
            except ValidationError as exc:
                where = Where(msg.topic, msg.partition, msg.offset)
                detail = f"{where}: not a control command ({exc.error_count()} errors)"
                await send([watch_alert("CONTROL_UNREADABLE", detail, where, time.time_ns())])
                continue
            if command.command in KILL_COMMANDS:
                switches[command.scope] = command.command == "kill_switch_on"

    if web is not None:
        add_views(app, board, tables["windows"], watch.anomaly, web.users)

    worker_group = watch.worker_group or config.app_id

    @app.timer(interval=watch.check_interval_s)
    async def look() -> None:
        note_ticks()
        now = time.time()
        alerts = trail.overdue(now)
        last_seen = dict(tables["feeds"].items())
        alerts += feed_alerts(alarms, last_seen, now, watch)
        try:
            health: Any = await asyncio.to_thread(probe_group, admin, worker_group, topics.raw)
        except Exception as exc:  # any failure to get an answer is the broker's unreachability
            health = exc
        alerts += group_alerts(alarms, health, time.time(), watch)
        await send(alerts)
        stale = {subject for code, subject in alarms.firing() if code == "FEED_STALE"}
        sessions = in_session(last_seen, now, watch)
        heads, switches = dict(tables["heads"].items()), dict(tables["kill_switches"].items())
        metrics.on_feeds(last_seen, sessions, stale, now)
        metrics.on_group(health, watch.max_lag)
        metrics.on_heads(heads)
        metrics.on_kill_switches(switches)
        metrics.on_look(now)
        board.on_look(
            now, health, watch.max_lag, last_seen, sessions, alarms.firing(), heads, switches
        )

    return app, tables


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise watch``: run the watchtower until it is stopped."""
    logging.basicConfig(
        level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_config(args.config, topic_prefix=args.topic_prefix)
    web = None
    if args.web_port:
        try:
            context = check_listen(args.web_host, args.tls_cert, args.tls_key, args.insecure)
            users = Users.load(args.users)
        except (DoorError, AuthConfigError) as exc:
            print(f"tickwise watch: {exc}", file=sys.stderr)
            return 2
        if not len(users):
            print("tickwise watch: no users configured: the views answer 401 (see --users)")
        web = WebDoor(args.web_port, users, args.web_host, context)
    metrics = WatchMetrics()
    if args.metrics_port:
        serve_registry(metrics.registry, args.metrics_port, args.metrics_addr)
    app, _ = build_app(config, resolve_bootstrap(args), metrics=metrics, web=web)
    worker = WatchWorker(app, loglevel=args.loglevel.lower(), quiet=True)
    worker.execute_from_commandline()
    return 0

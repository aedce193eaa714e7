"""``tickwise demo``: the whole live path on a real broker, watched from the outside.

Starts a local broker unless one is configured, creates the topics, runs a worker process, the
watchtower (``tickwise watch``, a process of its own) and a synthetic feed (with a few bad ticks),
prints a live summary read back from the topics and the watchtower's ``/metrics``, then shuts
everything down. Exits non-zero if no decision came out, a tick went missing, or the watchtower
did not find every audit record linked to its chain.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tickwise.schemas.decisions import (
    AUDIT_ADAPTER,
    Alert,
    AuditRecord,
    ControlCommand,
    Decision,
    Severity,
    Signal,
)
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.topics import Topics
from tickwise.streams.audit.sink import sink
from tickwise.streams.audit.store import open_store
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import LocalBroker, free_port
from tickwise.streams.live.control import send_commands
from tickwise.streams.live.feed import publish
from tickwise.streams.live.metrics import Samples, scrape
from tickwise.streams.live.tap import consumer, spawn_watch, spawn_worker, stop_process
from tickwise.streams.sources import synthetic
from tickwise.streams.watch.alerts import CODES

QUIET_S = 2.0  # after the last tick is validated, this long without a message: all decided
# The watchtower's alerts that say the audit trail does not hold (a duplicate is only a warning).
TRAIL_CODES = frozenset(
    code
    for code, severity in CODES.items()
    if code.startswith(("AUDIT_", "DECISION_")) and severity is Severity.CRITICAL
)


def _explain(signal: Signal | None) -> str:
    if signal is None:
        return ""
    parts = [f"{c.feature}={c.value:+.3g} ({c.contribution:+.2f})" for c in signal.explanation]
    return "because " + ", ".join(parts)


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise demo`` and return the exit code."""
    bootstrap = args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker: LocalBroker | None = None
    run_id = uuid.uuid4().hex[:6]
    if bootstrap:
        prefix = f"demo-{run_id}."  # a shared cluster: keep this run's topics apart
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="tickwise-demo-"))
        broker = LocalBroker(port=free_port(), data_dir=data_dir)
        print(f"starting a local Kafka broker in {data_dir} ...", flush=True)
        bootstrap = broker.start()
        prefix = ""
    topics = Topics(prefix)
    worker = None
    tower: Watchtower | None = None
    console = None
    try:
        create_topics(bootstrap, prefix)
        print(
            f"broker {bootstrap}; topics created (prefix {prefix!r}); "
            "starting the worker and the watchtower ...",
            flush=True,
        )
        app_id = f"tickwise-demo-{run_id}"
        worker = spawn_worker(bootstrap, prefix, app_id)
        token = secrets.token_urlsafe(16)  # the console's operator, who reads the views too
        users = f"demo-operator:operator:{token}" if args.console_port else ""
        tower = Watchtower.start(bootstrap, prefix, app_id, users)
        if args.console_port:
            console = _console(bootstrap, prefix, args.console_port, token, tower.web_url)
        count = int(args.rate * args.seconds)
        records = synthetic(args.seed, count, bad_rate=args.bad_rate)
        feed = threading.Thread(
            target=publish, args=(records, bootstrap, topics.raw, args.rate), daemon=True
        )
        limit = args.seconds + args.drain_timeout
        code = _watch(bootstrap, topics, feed, limit, count, args.kill_after, tower)
        if console is not None and args.hold > 0:
            print(f"console kept open for {args.hold:.0f} s (Ctrl-C ends the demo) ...", flush=True)
            try:
                time.sleep(args.hold)
            except KeyboardInterrupt:
                print("stopping", flush=True)
        return code
    finally:
        if console is not None:
            stop_process(console)
        if tower is not None:  # before the worker, which it would report down
            stop_process(tower.proc)
        if worker is not None:
            stop_process(worker)
        if broker is not None:
            broker.stop()
            print("local broker stopped", flush=True)


@dataclass(frozen=True)
class WatchFigures:
    """What the watchtower's ``/metrics`` says: messages checked per topic, each audit chain's
    head, the alerts it sent (by code and severity), the kill switches it saw, and the wall time
    of its last look (when it last set the gauges: the heads and the switches)."""

    checked: dict[str, int]
    heads: dict[str, int]
    alerts: dict[tuple[str, str], int]
    kill_switches: dict[str, bool]
    last_look: float = 0.0

    @classmethod
    def of(cls, samples: Samples) -> WatchFigures:
        """Read the figures out of one scrape of ``tickwise watch --metrics-port``."""
        checked: dict[str, int] = {}
        heads: dict[str, int] = {}
        alerts: dict[tuple[str, str], int] = {}
        switches: dict[str, bool] = {}
        last_look = 0.0
        for (name, labels), value in samples.items():
            label = dict(labels)
            if name == "tickwise_watch_checked_total":
                checked[label["topic"]] = int(value)
            elif name == "tickwise_watch_audit_chain_head_seq":
                heads[label["instrument"]] = int(value)
            elif name == "tickwise_watch_alerts_total" and value > 0:
                alerts[(label["code"], label["severity"])] = int(value)
            elif name == "tickwise_watch_kill_switch":
                switches[label["scope"]] = value > 0
            elif name == "tickwise_watch_last_look_timestamp_seconds":
                last_look = value
        return cls(checked, heads, alerts, switches, last_look)


@dataclass(frozen=True)
class Watchtower:
    """``tickwise watch`` run by the demo: its process, its ``/metrics`` port and its log."""

    proc: subprocess.Popen[bytes]
    metrics_port: int
    log: Path
    web_url: str | None = None

    @classmethod
    def start(cls, bootstrap: str, prefix: str, worker_group: str, users: str = "") -> Watchtower:
        """Start the watchtower beside the worker: its own process and consumer group, told
        which group the worker is so it can watch its members and lag; with ``users`` (a
        ``TICKWISE_CONSOLE_USERS`` value) it serves its views to them on loopback."""
        workdir = Path(tempfile.mkdtemp(prefix="tickwise-demo-watch-"))
        config = workdir / "watch.toml"
        config.write_text(f"[watch]\nworker_group = {json.dumps(worker_group)}\n")
        port = free_port()
        log = workdir / "watch.log"
        web_port = free_port() if users else 0
        proc = spawn_watch(
            bootstrap, prefix, str(config), port, str(log), web_port=web_port, users=users
        )
        print(f"watchtower: /metrics on http://127.0.0.1:{port}/metrics, log {log}", flush=True)
        return cls(proc, port, log, f"http://127.0.0.1:{web_port}" if web_port else None)

    def figures(self) -> WatchFigures | None:
        """Its figures now, or None while its metrics server does not answer yet."""
        try:
            return WatchFigures.of(scrape(self.metrics_port, timeout=2.0))
        except OSError:
            return None

    def caught_up(self, wanted: dict[str, int], timeout: float) -> WatchFigures | None:
        """Wait until it has checked ``wanted`` messages of each topic and looked once since (or
        ``timeout`` s, or it exits); return its last figures."""
        deadline = time.monotonic() + timeout
        figures = self.figures()
        checked_at: float | None = None  # wall time it was first seen to have checked them all
        while time.monotonic() < deadline and self.proc.poll() is None:
            if figures is not None:
                if checked_at is None and all(
                    figures.checked.get(t, 0) >= n for t, n in wanted.items()
                ):
                    checked_at = time.time()
                if checked_at is not None and figures.last_look > checked_at:
                    break
            time.sleep(0.5)
            figures = self.figures()
        return figures


def watch_summary(
    figures: WatchFigures | None,
    wanted: dict[str, int],
    store_heads: dict[str, int],
    breaks: list[Alert],
) -> tuple[list[str], bool]:
    """The summary's watchtower lines, and whether its live check held: every audit record and
    decision checked, no alert of a broken trail, the same chain heads as the audit store's.

    ``wanted``: the messages of each topic the demo read (``audit`` and ``decisions`` by their
    full names, so in that order); ``breaks``: the trail alerts read from the alerts topic, for
    their details (topic, partition, offsets, ids).
    """
    if figures is None:
        return ["watchtower: no figures (its /metrics never answered; see its log)"], False
    done = ", ".join(f"{figures.checked.get(t, 0)} of {n} on {t}" for t, n in wanted.items())
    lines = [f"watchtower: checked {done} as they arrived"]
    heads = ", ".join(f"{i} seq {n}" for i, n in sorted(figures.heads.items())) or "none"
    agree = figures.heads == store_heads
    lines.append(
        f"  chain heads: {heads} "
        + ("(the audit store's verify agrees)" if agree else f"(the audit store has {store_heads})")
    )
    caught_up = all(figures.checked.get(t, 0) >= n for t, n in wanted.items())
    broken = {key: n for key, n in figures.alerts.items() if key[0] in TRAIL_CODES}
    if broken:
        codes = ", ".join(f"{code}={n}" for (code, _), n in sorted(broken.items()))
        lines.append(f"  audit chain: BROKEN ({codes})")
        lines += [f"    {a.code}: {a.detail}" for a in breaks[:10]]
    elif not caught_up:
        lines.append("  audit chain: not checked to the end (the watchtower fell behind)")
    else:
        lines.append("  audit chain: intact")
    raised = ", ".join(
        f"{code}={n} ({severity})" for (code, severity), n in sorted(figures.alerts.items())
    )
    lines.append(f"  alerts it raised: {raised or 'none'}")
    if figures.kill_switches:
        seen = ", ".join(
            f"{s} {'on' if on else 'off'}" for s, on in sorted(figures.kill_switches.items())
        )
        lines.append(f"  kill switches it saw on the control topic: {seen}")
    return lines, caught_up and not broken and agree


def _console(
    bootstrap: str, prefix: str, port: int, token: str, watch_url: str | None
) -> subprocess.Popen[bytes] | None:
    """Start ``tickwise console`` with a one-off operator token for this demo run, reading the
    watchtower's views (with the same token) and the tail of its topics."""
    from tickwise.streams.console.server import spawn_console

    try:
        proc = spawn_console(
            bootstrap,
            prefix,
            port,
            f"demo-operator:operator:{token}",
            watch_url=watch_url,
            watch_token=token,
        )
    except RuntimeError as exc:
        print(f"console not started ({exc}); the demo goes on without it", flush=True)
        return None
    print(
        f"console: open http://127.0.0.1:{port}/ -- operator token for this run: {token}",
        flush=True,
    )
    return proc


def _kill_switch(bootstrap: str, topics: Topics) -> None:
    """Pull the global kill switch the way an operator would (``tickwise kill-switch on``)."""
    command = ControlCommand(
        command_id=f"demo-kill-{uuid.uuid4().hex[:8]}",
        command="kill_switch_on",
        scope="global",
        reason="demo: the operator halts trading",
        operator="tickwise-demo",
        ts_event_ns=time.time_ns(),  # when the operator asked (wall clock), not an event time
    )
    send_commands([command], bootstrap, topics.control)


def _watch(
    bootstrap: str,
    topics: Topics,
    feed: threading.Thread,
    limit: float,
    sent: int,
    kill_after: int,
    tower: Watchtower,
) -> int:
    names = {
        topics.raw: "raw",
        topics.clean: "clean",
        topics.quarantine: "quarantined",
        topics.features: "features",
        topics.signals: "signals",
        topics.decisions: "decisions",
        topics.fills: "fills",
        topics.alerts: "alerts",
    }
    c = consumer(bootstrap, list(names))
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    last_decision: Decision | None = None
    signals: dict[str, Signal] = {}
    approved = 0
    alerts: Counter[str] = Counter()
    breaks: list[Alert] = []  # the watchtower's alerts of a broken trail, with their details
    killed_at: int | None = None  # decisions seen when the kill switch was pulled
    refused_by_kill = 0
    start = time.monotonic()
    next_print = start + 1.0
    last_message = start
    feed.start()
    try:
        while time.monotonic() - start < limit:
            msg = c.poll(0.1)
            if msg is not None and not msg.error():
                last_message = time.monotonic()
                kind = names[msg.topic()]
                counts[kind] += 1
                if kind == "quarantined":
                    reasons[QuarantineRecord.model_validate_json(msg.value()).reason] += 1
                elif kind == "signals":
                    sig = Signal.model_validate_json(msg.value())
                    signals[sig.signal_id] = sig
                elif kind == "decisions":
                    last_decision = Decision.model_validate_json(msg.value())
                    approved += last_decision.approved
                    refused_by_kill += "KILL_SWITCH" in last_decision.reject_reasons
                elif kind == "alerts":
                    alert = Alert.model_validate_json(msg.value())
                    alerts[alert.code] += 1
                    if alert.code in TRAIL_CODES:
                        breaks.append(alert)
            if kill_after and killed_at is None and counts["clean"] >= kill_after:
                killed_at = counts["clean"]
                _kill_switch(bootstrap, topics)
                print(f"*** kill switch ON (global) after {killed_at} clean ticks ***", flush=True)
            now = time.monotonic()
            if now >= next_print:
                next_print = now + 1.0
                print(
                    f"[{now - start:5.1f}s] raw {counts['raw']:>6} | clean {counts['clean']:>6} "
                    f"| quarantined {counts['quarantined']:>4} | signals {counts['signals']:>6} "
                    f"| decisions {counts['decisions']:>6} (approved {approved}) "
                    f"| fills {counts['fills']:>5} | watchtower {_checked(tower)}",
                    flush=True,
                )
                if last_decision is not None:
                    d = last_decision
                    print(
                        f"         last: {d.instrument} {d.action} {d.quantity:g} @ {d.price:g}"
                        f"  p(up)={d.score:.3f}  {_explain(signals.get(d.signal_id))}".rstrip(),
                        flush=True,
                    )
                if len(signals) > 10_000:
                    signals.clear()
                validated = counts["clean"] + counts["quarantined"] >= counts["raw"] >= sent
                # a HOLD publishes nothing, so a worker that has decided every tick is quiet
                if not feed.is_alive() and validated and now - last_message >= QUIET_S:
                    break
    finally:
        c.close()
    print("quarantined by reason: " + ", ".join(f"{r}={n}" for r, n in sorted(reasons.items())))
    print("alerts by code: " + (", ".join(f"{a}={n}" for a, n in sorted(alerts.items())) or "none"))
    if killed_at is not None:
        print(
            f"kill switch: pulled after {killed_at} clean ticks; {refused_by_kill} orders refused "
            "with KILL_SWITCH since (each refusal is in the audit trail with its risk checks)"
        )
    conserved = counts["raw"] == counts["clean"] + counts["quarantined"]
    print(
        f"conservation: {counts['raw']} raw = {counts['clean']} clean + "
        f"{counts['quarantined']} quarantined -> {'OK' if conserved else 'MISMATCH'}"
    )
    if not conserved:
        print(f"demo FAILED: the worker had not accounted for every tick after {limit:.0f} s")
        return 1
    if counts["decisions"] == 0:
        print("demo FAILED: no decision came out")
        return 1
    read, store_heads = _audit_store(bootstrap, topics)
    wanted = {topics.audit: read, topics.decisions: counts["decisions"]}
    figures = tower.caught_up(wanted, limit)
    lines, held = watch_summary(figures, wanted, store_heads, breaks)
    print("\n".join(lines))
    if not held:
        if tower.proc.poll() is not None:
            print(f"the watchtower exited ({tower.proc.returncode}); the end of its log:")
            print(tower.log.read_text(errors="replace")[-2000:])
        print("demo FAILED: the watchtower's live audit check did not hold")
        return 1
    print(f"demo OK: {counts['decisions']} decisions flowed through Kafka")
    return 0


def _checked(tower: Watchtower) -> str:
    """The progress line's word on the watchtower: messages checked and alerts sent so far."""
    figures = tower.figures()
    if figures is None:
        return "starting"
    sent = sum(figures.alerts.values())
    return f"checked {sum(figures.checked.values()):>6} alerts {sent}"


def _audit_store(bootstrap: str, topics: Topics) -> tuple[int, dict[str, int]]:
    """Sink the audit topic into an SQLite store, verify its hash chains, count the refusals;
    return the messages read and each chain's head sequence number."""
    path = Path(tempfile.mkdtemp(prefix="tickwise-demo-audit-")) / "audit.db"
    store = open_store(f"sqlite:///{path}")
    try:
        read, _ = sink(bootstrap, topics, store, f"demo-audit-{uuid.uuid4().hex[:6]}", 3.0, 60.0)
        problems, heads = store.verify()
        entries = (AUDIT_ADAPTER.validate_json(row[-1]) for row in store.rows())
        refused = sum(
            isinstance(e, AuditRecord) and "KILL_SWITCH" in e.decision.reject_reasons
            for e in entries
        )
        print(
            f"audit store {path}: {store.count()} records from {read} messages, "
            f"{len(heads)} hash chains, verify {'OK' if not problems else 'FAILED'}, "
            f"{refused} refusals by KILL_SWITCH on record"
        )
    finally:
        store.close()
    return read, {instrument: seq for instrument, (seq, _) in heads.items()}

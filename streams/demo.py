"""``tickwise demo``: the whole live path on a real broker, watched from the outside.

Starts a local broker unless one is configured, creates the topics, runs a worker process and a
synthetic feed (with a few bad ticks), prints a live summary read back from the topics, then
shuts everything down. Exits non-zero if no decision came out or a tick went missing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from tickwise.schemas.decisions import (
    AUDIT_ADAPTER,
    Alert,
    AuditRecord,
    ControlCommand,
    Decision,
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
from tickwise.streams.live.tap import consumer, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

QUIET_S = 2.0  # after the last tick is validated, this long without a message: all decided


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
    console = None
    try:
        create_topics(bootstrap, prefix)
        print(f"broker {bootstrap}; topics created; starting the worker ...", flush=True)
        worker = spawn_worker(bootstrap, prefix, f"tickwise-demo-{run_id}")
        if args.console_port:
            console = _console(bootstrap, prefix, args.console_port)
        count = int(args.rate * args.seconds)
        records = synthetic(args.seed, count, bad_rate=args.bad_rate)
        feed = threading.Thread(
            target=publish, args=(records, bootstrap, topics.raw, args.rate), daemon=True
        )
        limit = args.seconds + args.drain_timeout
        code = _watch(bootstrap, topics, feed, limit, count, args.kill_after)
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
        if worker is not None:
            stop_process(worker)
        if broker is not None:
            broker.stop()
            print("local broker stopped", flush=True)


def _console(bootstrap: str, prefix: str, port: int) -> subprocess.Popen[bytes] | None:
    """Start ``tickwise console`` with a one-off operator token for this demo run."""
    from tickwise.streams.console.server import spawn_console

    token = secrets.token_urlsafe(16)
    try:
        proc = spawn_console(bootstrap, prefix, port, f"demo-operator:operator:{token}")
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
                    alerts[Alert.model_validate_json(msg.value()).code] += 1
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
                    f"| fills {counts['fills']:>5}",
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
    _audit_store(bootstrap, topics)
    print(f"demo OK: {counts['decisions']} decisions flowed through Kafka")
    return 0


def _audit_store(bootstrap: str, topics: Topics) -> None:
    """Sink the audit topic into an SQLite store, verify its hash chains, count the refusals."""
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

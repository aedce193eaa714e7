"""The ``control`` topic at the edge: ``tickwise kill-switch`` and the worker's control follower.

Every worker must see every command, so the follower is not a member of the worker's consumer
group: it reads the whole compacted topic from the beginning with a group of its own (the
``tap`` consumer). The worker holds its decisions until the follower has caught up with the
topic's end, so a kill switch set before a restart is in force before the first decision.
All logic (what a command does, when it applies) lives in ``streams.operators.control``.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from pydantic import ValidationError

from tickwise.schemas.decisions import ControlCommand
from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import SourceRef
from tickwise.schemas.topics import Topics
from tickwise.streams.live.bootstrap import resolve_bootstrap
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import consumer
from tickwise.streams.operators.control import control_key
from tickwise.streams.operators.validation import quarantine
from tickwise.streams.sources import RawRecord

log = logging.getLogger(__name__)

POLL_S = 0.2


def send_commands(commands: list[ControlCommand], bootstrap: str, topic: str) -> int:
    """Publish commands keyed for compaction (``control_key``); return how many were acked."""
    records = [
        RawRecord(control_key(cmd), cmd.to_bytes(), "control", i) for i, cmd in enumerate(commands)
    ]
    return publish(records, bootstrap, topic)


def send_control(bootstrap: str, topic: str, command: ControlCommand) -> None:
    """Publish one command and wait for the ack (the model CLI's call)."""
    send_commands([command], bootstrap, topic)


def _caught_up(c: Consumer) -> bool:
    parts = c.assignment()
    if not parts:
        return False
    for tp in c.position(parts):
        _, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=5)
        if high > 0 and tp.offset < high:
            return False
    return True


def _decode(msg: Message) -> ControlCommand | QuarantineRecord:
    raw = msg.value() or b""
    try:
        return ControlCommand.model_validate_json(raw)
    except ValidationError as exc:
        source = SourceRef(topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
        reason = (
            ReasonCode.MALFORMED_JSON
            if any(e["type"] == "json_invalid" for e in exc.errors())
            else ReasonCode.SCHEMA_VIOLATION
        )
        return quarantine(raw, source, reason, f"control: {exc.errors()[0]['msg']}")


class ControlFollower:
    """Every command on the control topic, read from the start on a thread of its own.

    The worker takes new commands between transactions (``take``) and gives a partition it
    takes over every command so far (``known``). ``ready`` is set once the topic's end was
    reached. One thread owns the consumer, so closing it never races a poll in flight.
    """

    def __init__(
        self, bootstrap: str, topic: str, on_bad: Callable[[QuarantineRecord], object]
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.on_bad = on_bad
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._known: list[ControlCommand] = []
        self._new: list[ControlCommand] = []
        self._thread = threading.Thread(target=self._follow, name="tickwise-control", daemon=True)

    def start(self) -> None:
        """Start following (returns at once; wait on ``ready``)."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop following and close the consumer."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def has_new(self) -> bool:
        """Whether a command arrived that ``take`` has not handed out yet (cheap, lock-free)."""
        return bool(self._new)

    def take(self) -> list[ControlCommand]:
        """The commands that arrived since the last call, in arrival order."""
        with self._lock:
            new, self._new = self._new, []
        return new

    def known(self) -> list[ControlCommand]:
        """Every command so far, in arrival order."""
        with self._lock:
            return list(self._known)

    def _follow(self) -> None:
        try:
            c = consumer(self.bootstrap, [self.topic])
        except BaseException as exc:
            self.failure = exc
            return
        try:
            while not self._stop.is_set():
                msg = c.poll(POLL_S)
                if msg is None:
                    if not self.ready.is_set() and _caught_up(c):
                        self.ready.set()
                        log.info("control: caught up with %s", self.topic)
                    continue
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("control consumer: %s", msg.error())
                    continue
                verdict = _decode(msg)
                if isinstance(verdict, QuarantineRecord):
                    self.on_bad(verdict)
                    continue
                with self._lock:
                    self._known.append(verdict)
                    self._new.append(verdict)
        except BaseException as exc:  # the worker sees it and stops: no command may be missed
            self.failure = exc
            log.error("control follower failed: %r", exc)
        finally:
            c.close()


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise kill-switch on|off`` and return the exit code."""
    now = time.time_ns()  # wall clock: when the operator issued it (not an event time)
    scope = args.scope
    cmd = ControlCommand(
        command_id=f"ks-{scope}-{args.state}-{now}",
        command="kill_switch_on" if args.state == "on" else "kill_switch_off",
        scope=scope,
        reason=args.reason,
        operator=args.operator or getpass.getuser(),
        ts_event_ns=now,
        effective_ts_event_ns=args.effective_ts_event_ns,
    )
    topic = Topics(args.topic_prefix).control
    send_commands([cmd], resolve_bootstrap(args), topic)
    print(f"kill switch {args.state} for {scope}: {cmd.command_id} sent to {topic}")
    return 0

"""Following tickwise topics from outside the pipeline: what tests, the demo and operators use.

A tap follows topics as they grow; a bounded read (recovery, replay) is ``streams.live.reader``.
Both take their client settings, the login included, from ``reader.consumer_settings``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from tickwise.streams.live.reader import consumer_settings
from tickwise.streams.web.auth import USERS_ENV


def consumer(bootstrap: str, topics: list[str], group: str | None = None) -> Consumer:
    """A read-only consumer from the earliest offset that never commits."""
    c = Consumer(
        consumer_settings(
            bootstrap,
            group or f"tickwise-tap-{uuid.uuid4().hex[:8]}",
            **{"auto.offset.reset": "earliest", "enable.partition.eof": False},
        )
    )
    c.subscribe(topics)
    return c


def tail_consumer(
    bootstrap: str, topics: list[str], group: str, last: int | None = None
) -> Consumer:
    """A read-only consumer from the ``last`` messages of each partition (None: from the
    earliest), that never commits and reports each partition's end (``_PARTITION_EOF``), so
    its reader knows when it has read what was there when it started.

    It assigns every partition of the topics that exist now itself rather than joining a
    group: a join waits for the group's rebalance (``group.initial.rebalance.delay.ms``, 3 s
    on a stock broker) before the first message. ``group`` is only the client's label.
    """
    c = Consumer(consumer_settings(bootstrap, group, **{"enable.partition.eof": True}))
    assignment = []
    for topic in topics:
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            continue  # not created: nothing to read
        for partition in sorted(meta.partitions):
            tp = TopicPartition(topic, partition)
            low, high = c.get_watermark_offsets(tp, timeout=10)
            tp.offset = max(low, high - last) if last is not None else low
            assignment.append(tp)
    c.assign(assignment)
    return c


def messages(c: Consumer, idle_timeout: float, deadline: float) -> Iterator[Message]:
    """Yield messages until none arrives for ``idle_timeout`` s or the monotonic ``deadline``."""
    last = time.monotonic()
    while time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            if time.monotonic() - last > idle_timeout:
                return
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise RuntimeError(f"consumer error: {msg.error()}")
        last = time.monotonic()
        yield msg


def read_values(
    bootstrap: str, topic: str, expected: int, timeout: float = 120.0
) -> list[tuple[bytes | None, bytes]]:
    """Read (key, value) pairs from ``topic`` until ``expected`` arrived or ``timeout`` passed."""
    c = consumer(bootstrap, [topic])
    out: list[tuple[bytes | None, bytes]] = []
    try:
        for msg in messages(c, idle_timeout=timeout, deadline=time.monotonic() + timeout):
            out.append((msg.key(), msg.value() or b""))
            if len(out) >= expected:
                break
    finally:
        c.close()
    return out


def spawn_worker(
    bootstrap: str,
    topic_prefix: str,
    app_id: str,
    config: str | None = None,
    log_path: str | None = None,
    checkpoint_dir: str | None = None,
    extra_args: list[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``tickwise worker`` as its own process, as an operator would; ``env`` replaces
    the variables it names (a host of its own: ``HOME``, the checkpoint key)."""
    cmd = [
        sys.executable,
        "-m",
        "tickwise.streams.cli",
        "worker",
        "--bootstrap-servers",
        bootstrap,
        "--topic-prefix",
        topic_prefix,
        "--app-id",
        app_id,
        "--loglevel",
        "WARNING",
    ]
    if config:
        cmd += ["--config", config]
    if checkpoint_dir:
        cmd += ["--checkpoint-dir", checkpoint_dir]
    cmd += extra_args or []
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )


def spawn_watch(
    bootstrap: str,
    topic_prefix: str,
    config: str,
    metrics_port: int,
    log_path: str,
    loglevel: str = "WARNING",
    web_port: int = 0,
    users: str = "",
) -> subprocess.Popen[bytes]:
    """Start ``tickwise watch`` as its own process beside the workers, its ``/metrics`` on
    loopback at ``metrics_port``; ``config`` names its ``[watch]`` section (the workers' group).

    ``web_port``: serve its views there, on loopback, to the ``users`` given as a
    ``TICKWISE_CONSOLE_USERS`` value (through the environment, never the command line)."""
    cmd = [sys.executable, "-m", "tickwise.streams.cli", "watch", "--bootstrap-servers", bootstrap]
    cmd += ["--topic-prefix", topic_prefix, "--config", config, "--loglevel", loglevel]
    cmd += ["--metrics-port", str(metrics_port)]
    env = dict(os.environ)
    if web_port:
        cmd += ["--web-port", str(web_port)]
        env[USERS_ENV] = users
    out = open(log_path, "wb")  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM (a clean faust shutdown commits offsets), then SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode

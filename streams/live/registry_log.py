"""The model registry's log on the ``registry`` topic: its entries the topic lacks, in order.

The registry's chain lives in its directory (``streams.registry``); the topic is where the
watchtower checks it live. Whoever changes the registry (``tickwise model``, the console)
publishes what the topic's last entry is behind by, so an entry written without a broker
(``tickwise model register``, ``--no-publish``) goes out with the next publication. A topic
whose last entry is not this registry's entry at that sequence number is refused: publishing
past it would fork the chain on the topic.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition

from tickwise.schemas.registry import REGISTRY_CHAIN, RegistryEntry
from tickwise.streams.live.feed import publish
from tickwise.streams.live.reader import consumer_settings
from tickwise.streams.registry import Registry, RegistryError
from tickwise.streams.sources import RawRecord


def last_published(bootstrap: str, topic: str, timeout: float = 30.0) -> RegistryEntry | None:
    """The topic's last entry, or None when it is empty.

    The chain's one key puts every entry on one partition; which one depends on the partition
    count a deployment chose, so the last message of each is read and the furthest entry wins.
    """
    c = Consumer(consumer_settings(bootstrap, f"tickwise-registry-{time.time_ns()}"))
    try:
        meta = c.list_topics(topic, timeout=timeout).topics[topic]
        if meta.error is not None:
            raise RuntimeError(f"{topic}: {meta.error}")
        ends = []
        for p in sorted(meta.partitions):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends.append(TopicPartition(topic, p, high - 1))
        if not ends:
            return None
        c.assign(ends)
        last: list[RegistryEntry] = []
        deadline = time.monotonic() + timeout
        while len(last) < len(ends):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic}: its last messages were not read within {timeout} s")
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise RuntimeError(f"{topic}: {msg.error()}")
            last.append(RegistryEntry.model_validate_json(msg.value() or b""))
        return max(last, key=lambda e: e.seq)
    finally:
        c.close()


def publish_log(registry: Registry, bootstrap: str, topic: str) -> int:
    """Publish the registry's entries after the topic's last one; return how many."""
    lines = registry.log_lines()
    last = last_published(bootstrap, topic)
    start = 0
    if last is not None:
        mine = RegistryEntry.model_validate_json(lines[last.seq]) if last.seq < len(lines) else None
        if mine is None or mine.hash != last.hash:
            raise RegistryError(
                f"{topic} ends at {last.audit_id} (hash {last.hash[:12]}), which is not "
                f"this registry's entry {last.seq} ({registry.root})"
            )
        start = last.seq + 1
    records = [RawRecord(REGISTRY_CHAIN, line, "registry", i) for i, line in enumerate(lines)]
    return publish(records[start:], bootstrap, topic) if records[start:] else 0

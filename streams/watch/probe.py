"""What the broker says of the workers: their group's members and their backlog on ``ticks.raw``.

Blocking confluent-kafka admin calls, each bounded by ``timeout``; the faust app runs them in a
thread so its agents never wait on them. An exception means the broker did not answer.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from tickwise.streams.live.security import env_client_config
from tickwise.streams.watch.health import GroupHealth


def admin_client(bootstrap: str) -> AdminClient:
    """An admin client with the deployment's login (none on a PLAINTEXT broker)."""
    return AdminClient({"bootstrap.servers": bootstrap, **env_client_config()})


def partition_counts(
    admin: AdminClient, topics: list[str], timeout: float = 10.0
) -> dict[str, int]:
    """How many partitions each of ``topics`` has; raises if one does not exist."""
    meta = admin.list_topics(timeout=timeout).topics
    missing = [t for t in topics if t not in meta or meta[t].error is not None]
    if missing:
        raise RuntimeError(
            f"topics missing on the broker: {missing} (run `tickwise topics create`)"
        )
    return {t: len(meta[t].partitions) for t in topics}


def probe_group(admin: AdminClient, group: str, topic: str, timeout: float = 5.0) -> GroupHealth:
    """Members of ``group`` and its lag on ``topic`` (committed offset to last stable offset).

    A partition the group never committed counts from its start: a worker that never ran is as
    far behind as the topic is long.
    """
    described = admin.describe_consumer_groups([group], request_timeout=timeout)[group]
    desc = described.result(timeout=timeout)
    parts = admin.list_topics(topic, timeout=timeout).topics[topic].partitions
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    request = [ConsumerGroupTopicPartitions(group, tps)]
    committed_f = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group]
    committed = {
        tp.partition: tp.offset for tp in committed_f.result(timeout=timeout).topic_partitions
    }
    spec: dict[Any, OffsetSpec] = {tp: OffsetSpec.latest() for tp in tps}
    ends = admin.list_offsets(
        spec, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout
    )
    lag: dict[int, int] = {}
    for tp, future in ends.items():
        end = future.result(timeout=timeout).offset
        start = committed.get(tp.partition, -1)
        lag[tp.partition] = max(0, end - max(start, 0))
    return GroupHealth(
        group=group,
        state=str(desc.state.name if hasattr(desc.state, "name") else desc.state),
        members=len(desc.members),
        lag=sum(lag.values()),
        lag_by_partition=lag,
    )

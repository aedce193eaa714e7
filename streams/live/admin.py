"""``tickwise topics``: create the catalogue's topics, idempotently."""

from __future__ import annotations

import argparse

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from tickwise.schemas.topics import ALL_TOPICS, Topics, TopicSpec
from tickwise.streams.live.bootstrap import resolve_bootstrap
from tickwise.streams.live.security import env_client_config


def default_replication(brokers: int) -> int:
    """Three copies of each partition, or one per broker on a smaller cluster.

    Why three: a partition (a checkpoint included) then survives one broker lost while a
    second is down for maintenance; more copies cost writes and buy little.

    >>> [default_replication(n) for n in (1, 2, 3, 5)]
    [1, 2, 3, 3]
    """
    return max(1, min(3, brokers))


def create_topics(
    bootstrap: str,
    prefix: str = "",
    partitions: int | None = None,
    replication_factor: int | None = None,
    timeout: float = 30.0,
    client_config: dict[str, str] | None = None,
    specs: tuple[TopicSpec, ...] = ALL_TOPICS,
) -> dict[str, str]:
    """Create every topic of the catalogue (and the workers' checkpoint topic) that does not
    exist; return name -> 'created' | 'exists'.

    ``replication_factor`` defaults to ``default_replication`` of the cluster's size.
    """
    settings = client_config if client_config is not None else env_client_config()
    admin = AdminClient({"bootstrap.servers": bootstrap, **settings})
    if replication_factor is None:
        brokers = len(admin.list_topics(timeout=timeout).brokers)
        replication_factor = default_replication(brokers)
    topics = Topics(prefix)
    wanted = [
        NewTopic(
            topics.name(spec),
            num_partitions=partitions or spec.partitions,
            replication_factor=replication_factor,
            config=spec.configs(),
        )
        for spec in specs
    ]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            outcome[name] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            outcome[name] = "exists"
    return outcome


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise topics create|list`` and return the exit code."""
    if args.action == "list":
        for spec in ALL_TOPICS:
            print(
                f"{args.topic_prefix}{spec.name:<18} key={spec.key:<34} "
                f"partitions={spec.partitions} cleanup={spec.cleanup_policy} "
                f"retention_ms={spec.retention_ms}"
            )
        return 0
    outcome = create_topics(resolve_bootstrap(args), args.topic_prefix, args.partitions)
    for name, state in outcome.items():
        print(f"{name}: {state}")
    return 0

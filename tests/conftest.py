"""Shared fixtures: one real Kafka broker per test session, found or started on demand.

Why a real broker: the pipeline's guarantees (offsets, rebalances, ordering) live in Kafka, so
integration tests must not use a fake. The broker is started lazily, only when a test asks for
``kafka_bootstrap``, and a missing broker fails the run, in CI and everywhere else.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

if importlib.util.find_spec("streams") is None:
    # Running from a checkout without `pip install -e .`: make the repo's packages importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tickwise.streams.live.broker import LocalBroker, free_port

LOCAL_BROKER_TIMEOUT = 120.0


def _docker_answers() -> bool:
    """Tell quickly whether a Docker engine is reachable; these machines usually have none."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _start_container() -> tuple[object, str]:
    """Start a KRaft Kafka container with testcontainers; return it and its bootstrap."""
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers before the community namespace
        from testcontainers.kafka import KafkaContainer

    container = KafkaContainer().with_kraft()
    container.start()
    return container, container.get_bootstrap_server()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a Kafka broker for the whole session.

    In order: ``KAFKA_BOOTSTRAP_SERVERS``; a testcontainers broker if Docker answers; a
    ``LocalBroker`` (Java + Maven, no Docker) on a free port in a temporary directory.
    """
    from_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if from_env:
        yield from_env
        return

    problems: list[str] = []
    if _docker_answers():
        try:
            container, bootstrap = _start_container()
        except Exception as exc:
            problems.append(f"testcontainers: {exc!r}")
        else:
            try:
                yield bootstrap
            finally:
                container.stop()  # type: ignore[attr-defined]
            return
    else:
        problems.append("testcontainers: no Docker engine answers")

    broker = LocalBroker(port=free_port(), data_dir=tmp_path_factory.mktemp("kafka"), heap="1g")
    try:
        bootstrap = broker.start(timeout=LOCAL_BROKER_TIMEOUT)
    except Exception as exc:
        problems.append(f"local broker: {exc}")
        pytest.fail(
            "no Kafka broker for the integration tests; set KAFKA_BOOTSTRAP_SERVERS, run a "
            "Docker engine, or install Java 17 and Maven.\n" + "\n".join(problems),
            pytrace=False,
        )
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A prefix unique to one test, so tests sharing the session broker never share topics.

    On a broker that outlives the session (``KAFKA_BOOTSTRAP_SERVERS``) the test's topics are
    deleted after it: such a broker, shared by a day of runs, gathered some 20,000 partitions,
    ran out of open files (a file per log segment) and shut down.
    """
    prefix = f"t{uuid.uuid4().hex[:8]}."
    yield prefix
    bootstrap = request.node.funcargs.get("kafka_bootstrap")
    if bootstrap and os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        _delete_topics(bootstrap, prefix)


def _delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic named ``prefix...``; a failure only leaves them behind."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                future.result(60)
    except Exception as exc:  # cleanup, not the test: say so and go on
        print(f"could not delete the topics {prefix}*: {exc!r}", file=sys.stderr)

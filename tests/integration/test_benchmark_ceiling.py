"""The live benchmark's ceiling runs on a real broker and moves every message.

Why: the ceiling is the figure the worker's throughput is held against (at least a quarter of
it); a ceiling that silently counted nothing, or hung, would make the worker look closer to it
than it is. No speed is asserted here.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the benchmarks are run from the repo root as modules
    sys.path.insert(0, str(REPO))

from benchmarks import live  # noqa: E402
from tickwise.schemas.topics import Topics  # noqa: E402
from tickwise.streams.live.admin import create_topics  # noqa: E402

pytestmark = pytest.mark.kafka


def test_the_bare_pass_through_moves_every_preloaded_message(kafka_bootstrap: str) -> None:
    prefix = f"ceiling-{uuid.uuid4().hex[:8]}."
    create_topics(kafka_bootstrap, prefix, partitions=1)
    topic = Topics(prefix).raw
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(300):
        producer.produce(topic, value=b'{"n": %d}' % i, key=b"ES")
    assert producer.flush(30) == 0
    row = live.pass_through(kafka_bootstrap, topic, 300, timeout=120)
    assert row["ticks"] == 300 and row["ticks_per_s"] > 0 and row["seconds"] > 0

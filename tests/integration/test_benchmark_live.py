"""The live benchmark's framework floor runs on a real broker and counts every message.

Why: the floor is the figure that says what faust itself allows per worker; a floor that
silently counted nothing, or hung, would make the worker look closer to it than it is. No
speed is asserted here.
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
from schemas.topics import Topics  # noqa: E402
from streams.live.admin import create_topics  # noqa: E402

pytestmark = pytest.mark.kafka


def test_faust_floor_takes_every_preloaded_message(kafka_bootstrap: str) -> None:
    prefix = f"floor-{uuid.uuid4().hex[:8]}."
    create_topics(kafka_bootstrap, prefix, partitions=1)
    topic = Topics(prefix).raw
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(300):
        producer.produce(topic, value=b'{"n": %d}' % i, key=b"ES")
    assert producer.flush(30) == 0
    row = live.faust_floor(kafka_bootstrap, topic, 300, timeout=120)
    assert row["ticks"] == 300 and row["ticks_per_s"] > 0 and row["seconds"] > 0

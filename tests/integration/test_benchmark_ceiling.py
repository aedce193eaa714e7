"""The live benchmark's ceiling and latency floor run on a real broker and move every message.

Why: the ceiling is the figure the worker's throughput is held against (at least a quarter of
it), and the floor the figure its latency is; one that silently counted nothing, or hung, would
make the worker look closer to it than it is. No speed is asserted here.
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


@pytest.mark.parametrize("mode", live.FLOORS)
def test_the_latency_floor_relays_every_paced_tick_and_times_it(
    kafka_bootstrap: str, mode: str
) -> None:
    # The floor's row is what the worker's latency is judged against: every offered tick must
    # reach the reader through the floor's own topics, each with a latency and a batch cost.
    row = live.floor_latency(
        kafka_bootstrap, mode, rate=200, seconds=1.0, drain_timeout=30, warm=50
    )
    assert row["offered"] == row["deciding"] == row["decided"] == 200
    assert not row["saturated"]
    assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["p99.9_ms"]
    if mode == live.NO_RELAY:
        assert row["path"] == "paced feed read straight from ticks.raw" and "batches" not in row
        return
    assert row["path"] == f"bare pass-through, {mode}"
    assert row["batches"] >= 1 and 1 <= row["p50_batch_size"] <= row["p99_batch_size"]
    assert row["p50_settle_ms"] <= row["p99_settle_ms"] <= row["max_settle_ms"]

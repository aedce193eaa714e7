"""The range reader on a real broker: a read ends at the end it was asked for, or fails loud.

Recovery and replay both trust that a range read returned the whole range; a read cut short by
a trimmed log or a silent broker must raise, never end as if the data had ended.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tickwise.streams.live.reader import RangeReader, RangeReadError, read_offsets

pytestmark = pytest.mark.kafka


def new_topic(bootstrap: str, partitions: int = 1) -> str:
    name = f"reader-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def fill(bootstrap: str, topic: str, count: int, transactions: int = 0) -> None:
    """``count`` records to partition 0, plain or split over ``transactions`` transactions
    (each ends in a marker that takes an offset but is never delivered)."""
    if not transactions:
        producer = Producer({"bootstrap.servers": bootstrap})
        for i in range(count):
            producer.produce(topic, str(i).encode(), partition=0)
        assert producer.flush(30) == 0
        return
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": topic})
    producer.init_transactions(30)
    per = count // transactions
    for t in range(transactions):
        producer.begin_transaction()
        for i in range(t * per, (t + 1) * per):
            producer.produce(topic, str(i).encode(), partition=0)
        producer.commit_transaction(30)


def values(bootstrap: str, topic: str, start: int, stop: int) -> list[int]:
    return [int(m.value()) for m in read_offsets(bootstrap, topic, 0, start, stop, 10.0)]


def test_a_read_ends_at_the_end_it_was_asked_for(kafka_bootstrap: str) -> None:
    topic = new_topic(kafka_bootstrap)
    fill(kafka_bootstrap, topic, 30, transactions=3)
    with RangeReader(kafka_bootstrap) as reader:
        low, high = reader.watermarks(topic, 0)
    assert (low, high) == (0, 33), "three commit markers hold an offset each"
    assert values(kafka_bootstrap, topic, 0, high) == list(range(30))
    assert values(kafka_bootstrap, topic, 11, 21) == list(range(10, 20))  # markers: 10 and 21
    with pytest.raises(RangeReadError, match=rf"{topic} partition 0: cannot read \[5, 40\)"):
        values(kafka_bootstrap, topic, 5, 40)


def test_a_trimmed_partition_fails_loud(kafka_bootstrap: str) -> None:
    topic = new_topic(kafka_bootstrap)
    fill(kafka_bootstrap, topic, 20)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    trimmed = admin.delete_records([TopicPartition(topic, 0, 8)], request_timeout=30)
    for future in trimmed.values():
        future.result(30)
    with pytest.raises(
        RangeReadError, match=rf"{topic} partition 0: offsets 0 to 7 are no longer retained"
    ):
        values(kafka_bootstrap, topic, 0, 20)
    assert values(kafka_bootstrap, topic, 8, 20) == list(range(8, 20))


def test_silence_before_the_end_fails_loud(kafka_bootstrap: str) -> None:
    """A fetch that stalls (as right after a broker restart) must not pass for the end."""
    topic = new_topic(kafka_bootstrap)
    fill(kafka_bootstrap, topic, 50)
    read: list[int] = []
    with (
        RangeReader(kafka_bootstrap, idle_timeout_s=1.0) as reader,
        pytest.raises(RangeReadError, match=rf"{topic}: nothing arrived for 1 s .*partition 0"),
    ):
        for _, msg in reader.read(topic, {0: (0, 50)}):
            if msg is None:
                break
            read.append(int(msg.value()))
            # the stall: the consumer stops fetching, the broker still holds the rest
            reader._consumer.pause([TopicPartition(topic, 0)])
    assert 0 < len(read) < 50

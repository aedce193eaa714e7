"""Checkpoints in the compacted checkpoint topic, on the real broker: a state larger than the
broker's message limit round-trips in parts, a reader never takes half of one, and an altered
part is refused before anything is unpickled."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from tickwise.schemas.topics import Topics
from tickwise.streams.checkpoint import Checkpoint, CheckpointRefused
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.checkpoint_topic import ID_HEADER, TopicCheckpointStore, record_key
from tickwise.streams.live.reader import RangeReader

pytestmark = pytest.mark.kafka

KEY = b"k" * 32
RAW = "ticks.raw"


class MakesMarker:
    """Unpickling this creates ``path``: what a hostile checkpoint would do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.path),)


def store(
    bootstrap: str, prefix: str, app_id: str = "app", key: bytes = KEY
) -> TopicCheckpointStore:
    tid = f"{app_id}.test.{uuid.uuid4().hex[:8]}.checkpoints"
    s = TopicCheckpointStore(bootstrap, Topics(prefix).checkpoints, app_id, key, tid)
    s.ensure_topic(prefix)
    return s


def test_a_state_larger_than_a_message_round_trips_in_parts(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    ours = store(kafka_bootstrap, topic_prefix)
    # the broker's own limit is what the parts must fit under
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, Topics(topic_prefix).checkpoints)
    limit = int(admin.describe_configs([resource])[resource].result()["max.message.bytes"].value)
    state = {"model": os.urandom(3 * limit), "n": 7}
    assert ours.load(RAW, 1) is None
    ours.save(RAW, 1, Checkpoint(offset=41, state=state))
    ours.save(RAW, 4, Checkpoint(offset=9, state={"other": 1}))  # same checkpoint partition
    # a reader of its own, as a worker on another host would be
    theirs = store(kafka_bootstrap, topic_prefix)
    assert theirs.load(RAW, 1) == Checkpoint(offset=41, state=state)
    assert theirs.load(RAW, 4) == Checkpoint(offset=9, state={"other": 1})
    assert theirs.load(RAW, 2) is None
    # another app id on the same topic keeps its own checkpoints
    assert store(kafka_bootstrap, topic_prefix, app_id="other").load(RAW, 1) is None
    # the newest checkpoint wins, and a smaller one after a larger one reads whole
    ours.save(RAW, 1, Checkpoint(offset=99, state={"small": True}))
    assert theirs.load(RAW, 1) == Checkpoint(offset=99, state={"small": True})
    with RangeReader(kafka_bootstrap) as reader:
        low, high = reader.watermarks(Topics(topic_prefix).checkpoints, 1)
        sizes = [
            len(m.value() or b"")
            for _, m in reader.read(Topics(topic_prefix).checkpoints, {1: (low, high)})
            if m is not None
        ]
    assert max(sizes) < limit and len(sizes) > 4, sizes


def test_an_open_transaction_is_never_half_read(kafka_bootstrap: str, topic_prefix: str) -> None:
    # A writer that dies with its parts written and no manifest: the reader keeps the previous
    # checkpoint (read_committed stops before the open transaction, and an aborted one is gone).
    ours = store(kafka_bootstrap, topic_prefix)
    ours.save(RAW, 0, Checkpoint(offset=5, state="before"))
    dying = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "transactional.id": f"dying-{uuid.uuid4().hex[:8]}",
        }
    )
    dying.init_transactions(30)
    dying.begin_transaction()
    headers = [(ID_HEADER, b"half")]
    for i in range(3):
        key = record_key("app", RAW, 0, "part", i)
        dying.produce(ours.checkpoint_topic, b"x" * 1000, key, partition=0, headers=headers)
    dying.flush(30)
    assert store(kafka_bootstrap, topic_prefix).load(RAW, 0) == Checkpoint(5, "before")
    dying.abort_transaction(30)
    assert store(kafka_bootstrap, topic_prefix).load(RAW, 0) == Checkpoint(5, "before")


@pytest.mark.parametrize("where", ["before-manifest", "after-manifest"])
def test_an_altered_part_is_refused_unread(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, where: str
) -> None:
    ours = store(kafka_bootstrap, topic_prefix)
    marker = tmp_path / "ran"
    state = [MakesMarker(marker), os.urandom(2 * 1024 * 1024)]
    original = ours._signer.seal(RAW, 2, Checkpoint(offset=3, state=state))
    assert not marker.exists()
    ours.save(RAW, 2, Checkpoint(offset=3, state=[os.urandom(2 * 1024 * 1024)]))
    # Someone who may write the topic but has no key puts their own bytes in part 1 of the
    # checkpoint, under its id: compaction would leave theirs in place of the original.
    with RangeReader(kafka_bootstrap) as reader:
        low, high = reader.watermarks(ours.checkpoint_topic, 2)
        records = [
            m for _, m in reader.read(ours.checkpoint_topic, {2: (low, high)}) if m is not None
        ]
    (ckpt_id,) = {v for m in records for k, v in (m.headers() or []) if k == ID_HEADER}
    forged = original[ours.part_bytes : 2 * ours.part_bytes]
    attacker = Producer({"bootstrap.servers": kafka_bootstrap})
    part_key = record_key("app", RAW, 2, "part", 1)
    if where == "before-manifest":  # a new manifest after the forged part, as a writer would
        attacker.produce(ours.checkpoint_topic, forged, part_key, 2, headers=[(ID_HEADER, ckpt_id)])
        manifest = next(m for m in records if m.key() == record_key("app", RAW, 2, "manifest"))
        attacker.produce(ours.checkpoint_topic, manifest.value(), manifest.key(), 2)
    else:
        attacker.produce(ours.checkpoint_topic, forged, part_key, 2, headers=[(ID_HEADER, ckpt_id)])
    attacker.flush(30)
    with pytest.raises(CheckpointRefused, match="signature does not match"):
        store(kafka_bootstrap, topic_prefix).load(RAW, 2)
    assert not marker.exists(), "the altered checkpoint was unpickled"
    # signed with another key: refused the same way
    with pytest.raises(CheckpointRefused):
        store(kafka_bootstrap, topic_prefix, key=b"o" * 32).load(RAW, 2)


def test_topics_create_makes_the_compacted_checkpoint_topic(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    outcome = create_topics(kafka_bootstrap, topic_prefix)
    name = Topics(topic_prefix).checkpoints
    assert outcome[name] == "created"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    # the controller acknowledged the creation; the broker's metadata may follow a moment later
    deadline = time.monotonic() + 30
    while True:
        try:
            configs = admin.describe_configs([resource])[resource].result()
            break
        except KafkaException as exc:
            code = exc.args[0].code()
            if code != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert configs["cleanup.policy"].value == "compact"

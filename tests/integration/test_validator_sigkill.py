"""The validator killed (SIGKILL) mid-stream and restarted: nothing lost, nothing doubled.

Outputs and input offsets commit in one transaction, so the restarted worker resumes exactly
where the committed outputs end; recovery (`streams.live.partition`) must rebuild the dedup
state from the checkpoint and the log, so that `ticks.clean` holds every good tick once and the
injected duplicates are still caught.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest
from stubs import read_all, wait_consumed

from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import CleanTick
from tickwise.schemas.topics import Topics
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_sigkill_and_restart_lose_and_duplicate_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    records = list(synthetic(seed=31, count=24_000, bad_rate=0.03))
    good_ids = Counter(r.payload for r in records if r.injected is None)
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    app_id = f"kill-{uuid.uuid4().hex[:8]}"
    feed = threading.Thread(
        target=publish, args=(records, kafka_bootstrap, topics.raw, 2000.0), daemon=True
    )
    first = spawn_worker(
        kafka_bootstrap, topic_prefix, app_id, log_path=str(tmp_path / "first.log")
    )
    feed.start()
    try:
        assert len(read_values(kafka_bootstrap, topics.clean, 6000, 120)) >= 6000
        first.kill()  # SIGKILL: no shutdown, no final commit, in-flight sends cut
        first.wait(10)
        second = spawn_worker(
            kafka_bootstrap, topic_prefix, app_id, log_path=str(tmp_path / "second.log")
        )
        try:
            feed.join(60)
            n_bad = sum(1 for r in records if r.injected)
            quarantined = read_values(kafka_bootstrap, topics.quarantine, n_bad, 180)
            clean = read_values(kafka_bootstrap, topics.clean, len(records) - n_bad, 180)
            wait_consumed(kafka_bootstrap, app_id, topics.raw)  # and every duplicate with it
            clean_again = read_all(kafka_bootstrap, topics.clean)
        finally:
            stop_process(second)
    finally:
        stop_process(first)

    live_clean = [CleanTick.model_validate_json(v) for _, v in clean_again]
    live_q = [QuarantineRecord.model_validate_json(v) for _, v in quarantined]
    assert len(clean) == len(live_clean)
    offsets = Counter((x.source.partition, x.source.offset) for x in (*live_clean, *live_q))
    assert offsets.most_common(1)[0][1] == 1, "a raw message was handled twice"
    assert len(live_clean) + len(live_q) == len(records), "raw = clean + quarantined"
    ids = Counter(c.tick.tick_id for c in live_clean)
    assert ids.most_common(1)[0][1] == 1, "a duplicate reached ticks.clean"
    assert len(ids) == len(good_ids), "every good tick is on ticks.clean"
    assert sorted(q.reason.value for q in live_q) == sorted(
        r.injected for r in records if r.injected
    )

"""`tickwise quarantine stats|show|replay` on a real broker, including re-injection after a fix."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import CleanTick
from tickwise.schemas.topics import Topics
from tickwise.streams.cli import main
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_stats_show_and_replay_after_a_config_fix(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = list(synthetic(seed=4, count=3000))
    cl = sum(1 for r in records if r.key == "CL")
    narrow, wide = tmp_path / "narrow.toml", tmp_path / "wide.toml"
    narrow.write_text('[validation]\ninstruments = ["ES", "NQ"]\n')
    wide.write_text('[validation]\ninstruments = ["ES", "NQ", "CL"]\n')
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    app_id = f"qcli-{uuid.uuid4().hex[:8]}"
    common = ["--topic-prefix", topic_prefix, "--bootstrap-servers", kafka_bootstrap, "--idle", "3"]

    worker = spawn_worker(kafka_bootstrap, topic_prefix, app_id, config=str(narrow))
    try:
        publish(records, kafka_bootstrap, topics.raw)
        read_values(kafka_bootstrap, topics.quarantine, cl, 120)
    finally:
        stop_process(worker)

    capsys.readouterr()
    assert main(["quarantine", "stats", *common]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total"] == cl
    assert stats["by_instrument_and_reason"] == {"CL": {"UNKNOWN_INSTRUMENT": cl}}

    assert main(["quarantine", "show", *common, "--instrument", "CL", "--limit", "5"]) == 0
    assert capsys.readouterr().out.count("UNKNOWN_INSTRUMENT") == 5
    assert main(["quarantine", "show", *common, "--reason", "DUPLICATE", "--json"]) == 0
    assert capsys.readouterr().out == ""

    # the fix: CL is allowed now; re-inject its refused ticks, twice
    worker = spawn_worker(kafka_bootstrap, topic_prefix, app_id, config=str(wide))
    try:
        for _ in range(2):
            assert main(["quarantine", "replay", *common, "--reason", "UNKNOWN_INSTRUMENT"]) == 0
        clean = read_values(kafka_bootstrap, topics.clean, len(records), 120)
        quarantined = read_values(kafka_bootstrap, topics.quarantine, 2 * cl, 120)
    finally:
        stop_process(worker)

    live_clean = [CleanTick.model_validate_json(v) for _, v in clean]
    live_q = [QuarantineRecord.model_validate_json(v) for _, v in quarantined]
    assert len(live_clean) + len(live_q) == len(records) + 2 * cl, "raw = clean + quarantined"
    assert sum(1 for c in live_clean if c.tick.instrument == "CL") == cl, "first replay accepted"
    later = Counter(q.reason for q in live_q[cl:])
    assert later == {ReasonCode.DUPLICATE: cl}, "the second replay is caught as a duplicate"

"""Backtest = live under the ``reorder`` policy: ticks held back in one consume batch and
released in a later one, on a real broker, decide as the backtest decides.

A live worker never reaches the end of its input, so it keeps the ticks its window still holds,
where the backtest releases them at the end; so per instrument the live decisions and
quarantine records must be the backtest's, up to the ones the end released.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from stubs import read_all, wait_consumed

from tickwise.replay.engine import run_backtest
from tickwise.schemas.decisions import Decision
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.topics import Topics
from tickwise.streams.config import load_config
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MAX_TICKS = 10
KINDS = ("OUT_OF_ORDER", "DUPLICATE", "PRICE_OUTLIER", "FUTURE_TIMESTAMP")


def per_instrument(lines: list[bytes], instrument_of) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for line in lines:
        out[instrument_of(line)].append(line)
    return dict(out)


def test_a_reordering_worker_decides_as_the_backtest(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    records = list(
        synthetic(seed=21, count=6000, bad_rate=0.05, regime="volatile", bad_kinds=KINDS)
    )
    config_file = tmp_path / "tickwise.toml"
    config_file.write_text(
        '[validation]\nout_of_order_policy = "reorder"\nreorder_window_ms = 40.0\n'
        f'reorder_max_ticks = {MAX_TICKS}\n[decision]\nrule = "threshold"\n'
    )
    config = load_config(config_file, topic_prefix=topic_prefix)
    run_backtest(records, config, tmp_path / "bt")
    replay_decisions = (tmp_path / "bt" / "decisions.jsonl").read_bytes().splitlines()
    replay_quarantine = (tmp_path / "bt" / "quarantine.jsonl").read_bytes().splitlines()
    assert len(replay_decisions) > 100, "the model must decide"
    assert any(b"already released" in q for q in replay_quarantine), "ticks must come too late"

    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    worker = spawn_worker(
        kafka_bootstrap,
        topic_prefix,
        group := f"reorder-{uuid.uuid4().hex[:8]}",
        config=str(config_file),
        log_path=str(tmp_path / "worker.log"),
        extra_args=["--loglevel", "INFO"],
    )
    try:
        assert publish(records, kafka_bootstrap, topics.raw) == len(records)
        # what the end of the input released is never decided live: wait for all but that
        held_at_most = 3 * MAX_TICKS
        want = len(replay_decisions) - held_at_most
        assert len(read_values(kafka_bootstrap, topics.decisions, want, 180)) >= want
        wait_consumed(kafka_bootstrap, group, topics.raw)  # the rest the worker can decide
        live = read_all(kafka_bootstrap, topics.decisions)
        quarantined = read_all(kafka_bootstrap, topics.quarantine)
    finally:
        stop_process(worker)

    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "deciding per tick" not in log, "the engine must serve the reorder policy live"
    instrument = lambda line: Decision.model_validate_json(line).instrument  # noqa: E731
    got = per_instrument([v for _, v in live], instrument)
    expected = per_instrument(replay_decisions, instrument)
    assert set(got) == set(expected)
    for name, mine in got.items():
        theirs = expected[name]
        assert mine == theirs[: len(mine)], f"{name}: live is not the backtest's prefix"
        assert len(theirs) - len(mine) <= MAX_TICKS, f"{name}: ticks lost live"
    # every quarantine record the backtest's (source offsets differ by design), bar the end's
    key = lambda q: (q.reason, q.raw, q.tick_id)  # noqa: E731
    live_q = Counter(key(QuarantineRecord.model_validate_json(v)) for _, v in quarantined)
    replay_q = Counter(key(QuarantineRecord.model_validate_json(v)) for v in replay_quarantine)
    assert live_q <= replay_q and replay_q.total() - live_q.total() <= held_at_most

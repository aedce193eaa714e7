"""Progress bars of the broker commands: ``feed --file``, ``replay`` and ``replay-check`` draw
one on stderr when asked, none by default off a terminal, and end on the run's totals.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from tickwise.replay.kafka_replay import FAR_FUTURE_MS
from tickwise.schemas.decisions import AuditRecord
from tickwise.schemas.topics import AUDIT, Topics
from tickwise.streams.cli import main
from tickwise.streams.config import load_config
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.reader import read_times
from tickwise.streams.live.state import EngineState, Output

pytestmark = pytest.mark.kafka

ROWS = 1500  # not a multiple of the update interval: the last drawing must be the run's count


def bar_lines(err: str, desc: str) -> list[str]:
    """Every drawing of the bar named ``desc``; tqdm redraws with carriage returns."""
    return [line for line in re.split(r"[\r\n]", err) if line.startswith(f"{desc}:")]


def write_trades(path: Path) -> str:
    """ES trades 37 ms apart; returns the last trade's time to the second, as the bar shows it."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "symbol", "price", "size"])
        for i in range(ROWS):
            ms = 37 * i
            when = f"2024-01-02T14:{30 + ms // 60_000:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"
            w.writerow([when, "ES", 4700.0 + (i * 7 % 11) * 0.25, 1])
    last_ms = 37 * (ROWS - 1)
    return f"2024-01-02T14:{30 + last_ms // 60_000:02d}:{last_ms // 1000 % 60:02d}Z"


def audit_as_the_worker_writes(bootstrap: str, prefix: str, config: Path) -> int:
    """Derive the audit trail from ``ticks.raw`` as the worker would and publish it.

    Returns the number of audited decisions."""
    topics = Topics(prefix)
    states: dict[int, EngineState] = defaultdict(lambda: EngineState(load_config(config)))
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    audited = 0

    def publish(outputs: list[Output], ts_ms: int) -> None:
        nonlocal audited
        for out in outputs:
            if out.topic == AUDIT:
                producer.produce(
                    topics.audit, out.encoded(), (out.key or "").encode(), timestamp=ts_ms
                )
                audited += isinstance(out.message, AuditRecord)  # not the hold summaries

    last_ms = 0
    for msg in read_times(bootstrap, topics.raw, 0, FAR_FUTURE_MS):
        last_ms = msg.timestamp()[1]
        p, at, fresh = msg.partition(), np.array([msg.offset()], np.int64), np.zeros(1, np.bool_)
        publish(states[p].process([msg.value() or b""], topics.raw, p, at, fresh), last_ms)
    for state in states.values():
        publish(state.finish(), last_ms)
    assert producer.flush(60) == 0
    return audited


def test_feed_replay_and_replay_check_draw_their_bars_when_asked(
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "es.csv"
    last_trade = write_trades(path)
    for prefix in (topic_prefix, f"{topic_prefix}quiet."):
        create_topics(kafka_bootstrap, prefix)
    broker = ["--bootstrap-servers", kafka_bootstrap]

    feed = ["feed", "--file", str(path), "--symbol", "ES", "--tz", "UTC", *broker]
    assert main([*feed, "--topic-prefix", topic_prefix, "--progress"]) == 0
    last = bar_lines(capsys.readouterr().err, "feed")[-1]
    assert last.startswith(f"feed: {ROWS} records [")
    assert last.endswith(f", acked={ROWS}, event_time={last_trade}]")
    assert main([*feed, "--topic-prefix", f"{topic_prefix}quiet."]) == 0  # stderr is no terminal
    assert bar_lines(capsys.readouterr().err, "feed") == []

    window = ["--from", "0", "--to", str(FAR_FUTURE_MS), *broker]
    replay = ["replay", "--topic", "ticks.raw", "--topic-prefix", topic_prefix, *window]
    assert main([*replay, "--to-prefix", f"{topic_prefix}r1.", "--progress"]) == 0
    last = bar_lines(capsys.readouterr().err, "replay")[-1]
    assert last.startswith(f"replay: {ROWS} records [")
    assert re.search(rf", acked={ROWS}, record_time=\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\]$", last)
    assert main([*replay, "--to-prefix", f"{topic_prefix}r2."]) == 0
    assert bar_lines(capsys.readouterr().err, "replay") == []

    every = tmp_path / "every.toml"  # every decision published: decisions to check this early
    every.write_text('[audit]\nholds = "each"\n')
    audited = audit_as_the_worker_writes(kafka_bootstrap, topic_prefix, every)
    check = ["replay-check", "--topic-prefix", topic_prefix, "--config", str(every), *window]
    assert main([*check, "--progress"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["decisions_checked"] == audited > 0
    last = bar_lines(err, "replay-check")[-1]
    assert last.startswith(f"replay-check: {ROWS} ticks [")
    assert f", replayed={ROWS}, decisions={audited}, matching={audited}, record_time=" in last
    assert main(check) == 0
    assert bar_lines(capsys.readouterr().err, "replay-check") == []

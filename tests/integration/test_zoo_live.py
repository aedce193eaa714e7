"""Every zoo model runs live exactly as in replay: signals on the topic = the backtest's.

One worker per task. Each deploys every other zoo kind as a shadow version through the
``control`` topic (with an effective event time, so the backtest applies them at the same
ticks), then decides a synthetic stream. The ``signals`` topic, which carries production and
shadow signals alike, must equal the backtest's ``signals.jsonl`` byte for byte per instrument.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tickwise.replay.engine import run_backtest
from tickwise.schemas.decisions import ControlCommand, Signal
from tickwise.schemas.topics import Topics
from tickwise.streams.config import ModelConfig, load_config
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.control import send_control
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

KINDS = {
    "classification": ("svm", "pa", "hoeffding_tree", "arf", "mlp"),
    "regression": ("svm", "pa", "hoeffding_tree", "arf", "mlp"),
}
BASE = {"classification": "logistic", "regression": "linear"}


def grouped(lines: list[bytes]) -> dict[tuple[str, str], list[bytes]]:
    out: dict[tuple[str, str], list[bytes]] = {}
    for line in lines:
        s = Signal.model_validate_json(line)
        out.setdefault((s.instrument, s.model_id), []).append(line)
    return out


def test_every_zoo_model_signals_live_as_in_replay(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    records = list(synthetic(seed=17, count=1500, instruments=["ES", "NQ", "CL"]))
    start = min(r.ts_event_ns for r in records if r.ts_event_ns is not None)
    runs = {}
    for task in KINDS:
        prefix = f"{topic_prefix}{task[:3]}."
        toml = tmp_path / f"{task}.toml"
        toml.write_text(
            f'[label]\nhorizon_s = 0.3\ntask = "{task}"\n'
            f'[model]\nkind = "{BASE[task]}"\nwarmup_labels = 10\nn_models = 3\n'
            "grace_period = 50\n"
        )
        commands = [
            ControlCommand(
                command_id=f"shadow-{kind}",
                command="promote",
                scope="global",
                reason="zoo live test",
                operator="test",
                ts_event_ns=1,
                model_id=kind,
                model_version=1,
                stage="shadow",
                model_spec=ModelConfig(
                    model_id=kind, kind=kind, warmup_labels=10, n_models=3, grace_period=50
                ).model_dump(),
                effective_ts_event_ns=start,
            )
            for kind in KINDS[task]
        ]
        config = load_config(toml, topic_prefix=prefix)
        run_backtest(records, config, tmp_path / task, commands)
        create_topics(kafka_bootstrap, prefix, partitions=3)
        worker = spawn_worker(
            kafka_bootstrap,
            prefix,
            f"zoo-{uuid.uuid4().hex[:8]}",
            str(toml),
            str(tmp_path / f"{task}.log"),
        )
        for command in commands:
            send_control(kafka_bootstrap, Topics(prefix).control, command)
        runs[task] = (prefix, worker)
    try:
        time.sleep(5.0)  # the workers poll control every 0.5 s
        for prefix, _ in runs.values():
            assert publish(records, kafka_bootstrap, Topics(prefix).raw) == len(records)
        for task, (prefix, _) in runs.items():
            expected = (tmp_path / task / "signals.jsonl").read_bytes().splitlines()
            live = [
                v
                for _, v in read_values(kafka_bootstrap, Topics(prefix).signals, len(expected), 240)
            ]
            want = grouped(expected)
            # production (model_id "logreg" by default) and every shadow kind signalled
            assert {m for _, m in want} == {"logreg", *KINDS[task]}
            assert grouped(live) == want, task
    finally:
        for _, worker in runs.values():
            stop_process(worker)

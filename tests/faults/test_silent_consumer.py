"""A consumer that silently stops being fed does not silence the worker.

After a broker restart that outlived the group session, a worker's consumer reported its
partitions lost and then never got them back: no error, no commit, a process that looked alive.
Which librdkafka state did it is not known; what the worker owes is known, so this test makes
the same silence on purpose, on a real broker: the consumer drops its whole assignment
(``incremental_unassign``) while the group goes on counting the partitions as the worker's, so
nothing is fetched, nothing fails and no rebalance comes. The worker must notice input waiting
with nothing committed, replace its consumer loudly, and still decide exactly what the backtest
decided.
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Message
from stubs import backtested, exactly_once_problems, live_outputs

from tickwise.streams.checkpoint import DirCheckpointStore
from tickwise.streams.config import load_config
from tickwise.streams.live import transport
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import read_values
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka]


class Silenced(transport.Transport):
    """A worker whose consumer, once asked, drops its whole assignment.

    The drop happens on the worker's own thread: a librdkafka handle the worker may be closing
    (it replaces consumers) is not safe to call from the test's thread.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.silence = threading.Event()
        self.silenced = threading.Event()

    def _consume(self) -> list[Message]:
        consumer = self._consumer
        if self.silence.is_set() and not self.silenced.is_set() and consumer is not None:
            assigned = consumer.assignment()
            if len(assigned) == 3:
                consumer.incremental_unassign(assigned)  # the silence
                self.silenced.set()
        return super()._consume()


@pytest.mark.timeout(300)
def test_a_consumer_fed_nothing_while_input_waits_is_replaced_loudly(
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(transport, "STALL_S", 6.0)  # a minute in production
    monkeypatch.setattr(transport, "STALL_LOOK_S", 1.0)
    count = 3000  # the models decide from about the 300th tick of an instrument
    run = backtested(tmp_path, topic_prefix, list(synthetic(seed=83, count=count, bad_rate=0.02)))
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    half = count // 2
    assert publish(run.records[:half], kafka_bootstrap, run.topics.raw) == half
    config = load_config(
        run.config_file, topic_prefix=topic_prefix, app_id=f"silent-{uuid.uuid4().hex[:6]}"
    )
    worker = Silenced(
        config, kafka_bootstrap, DirCheckpointStore(tmp_path / "checkpoints", key=b"k" * 32)
    )
    failures: list[BaseException] = []

    def work() -> None:
        try:
            worker.run()
        except BaseException as exc:  # the test reports it
            failures.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    caplog.set_level(logging.WARNING, logger=transport.__name__)
    thread.start()
    try:
        some = 50
        assert len(read_values(kafka_bootstrap, run.topics.decisions, some, 120)) >= some, failures
        worker.silence.set()
        assert worker.silenced.wait(60), "the worker never held all three partitions"
        assert publish(run.records[half:], kafka_bootstrap, run.topics.raw) == count - half
        out = live_outputs(kafka_bootstrap, run, config.app_id, timeout=120)
    finally:
        worker.stop()
        thread.join(180)
    assert not thread.is_alive(), "the worker's loop must end when asked"
    assert failures == [], "the worker must ride through, not stop"
    replaced = [r for r in caplog.records if "replacing the consumer" in r.getMessage()]
    assert replaced and replaced[0].levelno == logging.ERROR, "a stall is never silent"
    assert "while input waits (partition" in replaced[0].getMessage()
    assert exactly_once_problems(run, out) == []

"""The parts of the live transport that need no broker: the host slot that names a worker's
transactional id, the watchdog on blocking producer calls, the checks recovery makes before
it reads a byte from Kafka, and the rule that a batch carries on where its partition stands."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwise.streams.checkpoint import Checkpoint, DirCheckpointStore
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.live.partition import PartitionRunner, Recovery
from tickwise.streams.live.reader import RangeReadError
from tickwise.streams.live.transport import ProducerWedged, Watchdog, carry_on, instance_slot


def test_live_workers_get_distinct_slots_and_a_dead_ones_slot_is_taken_again() -> None:
    app = f"slot-{uuid.uuid4().hex[:8]}"
    first, lock0 = instance_slot(app)
    second, lock1 = instance_slot(app)
    assert (first, second) == (0, 1)
    lock0.close()  # as the kernel does when the process dies, SIGKILL included
    again, lock2 = instance_slot(app)
    assert again == 0
    lock1.close()
    lock2.close()


def test_a_slot_held_by_another_process_is_not_taken() -> None:
    app = f"slot-{uuid.uuid4().hex[:8]}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from tickwise.streams.live.transport import ProducerWedged, Watchdog, instance_slot\n"
            f"slot, lock = instance_slot({app!r})\n"
            "print(slot, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"0"
        slot, lock = instance_slot(app)
        assert slot == 1
        lock.close()
    finally:
        holder.kill()
        holder.wait(10)
    slot, lock = instance_slot(app)
    assert slot == 0, "the killed holder's slot must be free again"
    lock.close()


def test_the_watchdog_returns_a_calls_result_and_gives_up_on_one_that_never_returns() -> None:
    watchdog = Watchdog(limit=0.5)
    assert watchdog.call(lambda: 42, "answer") == 42
    release = threading.Event()
    with pytest.raises(ProducerWedged, match=r"commit still blocked after 0\.5 s"):
        watchdog.call(release.wait, "commit")  # blocks until released: a wedged client call
    release.set()
    watchdog.shutdown()


def test_a_checkpoint_ahead_of_the_committed_offset_is_refused(tmp_path: Path) -> None:
    # A checkpoint can only trail the committed offset (it is saved after the commit); one
    # ahead of it belongs to another deployment, and starting from it would skip ticks.
    config = TickwiseConfig()
    store = DirCheckpointStore(tmp_path, key=b"k" * 32)
    store.save("ticks.raw", 2, Checkpoint(offset=10, state=None))
    runner = PartitionRunner(config, "127.0.0.1:9", "ticks.raw", 2, store)
    with pytest.raises(RangeReadError, match=r"partition 2: the checkpoint reflects offset 10, "):
        runner.recover(committed=5)


def test_recovery_says_what_it_did() -> None:
    text = str(Recovery(partition=1, checkpoint=99, replayed_from=100, committed=250, replayed=150))
    assert text == (
        "partition 1: checkpoint at offset 99; replayed offsets [100, 250) without emitting "
        "(150 messages); committed offset 250"
    )
    assert str(Recovery(0, -1, 0, 0, 0)).startswith("partition 0: no checkpoint; ")


class _At:
    """A delivered message: only its offset matters to ``carry_on``."""

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def offset(self) -> int:
        return self._offset


# A partition's log: which offsets hold a committed record (the rest are transaction markers or
# aborted records); and what a consumer delivered of it: runs from anywhere, repeated, stale.
logs = st.lists(st.booleans(), min_size=1, max_size=60)


@given(logs, st.data())
def test_a_batch_carries_on_where_its_partition_stands_and_never_skips_a_record(
    log: list[bool], data: st.DataObject
) -> None:
    records = [o for o, held in enumerate(log) if held]
    expected = data.draw(st.integers(0, len(log)))
    runs = data.draw(st.lists(st.tuples(st.integers(0, len(log)), st.integers(0, 20)), max_size=4))
    delivered = [o for start, n in runs for o in records if start <= o < start + n]
    asked: list[tuple[int, int]] = []

    def holds_records(start: int, stop: int) -> bool:
        asked.append((start, stop))
        return any(start <= o < stop for o in records)

    taken, again = carry_on([_At(o) for o in delivered], expected, holds_records)
    offsets = [m.offset() for m in taken]
    # each once, in order, and never one handled before
    assert offsets == sorted(set(offsets)) and all(o >= expected for o in offsets)
    # no record skipped: what is taken is every record from ``expected`` up to the last taken
    if offsets:
        assert offsets == [o for o in records if expected <= o <= offsets[-1]]
    if again is None:  # whatever was delivered from ``expected`` on is taken
        assert {o for o in delivered if o >= expected} <= set(offsets)
    else:  # sent back to where it skipped a record
        assert again == (offsets[-1] + 1 if offsets else expected)
        start, stop = asked[-1]
        assert start == again and any(start <= o < stop for o in records)
    assert all(stop > start for start, stop in asked)


def test_a_gap_the_log_holds_no_record_in_is_read_across_without_asking_again() -> None:
    asked: list[tuple[int, int]] = []

    def markers_only(start: int, stop: int) -> bool:
        asked.append((start, stop))
        return False

    taken, again = carry_on([_At(o) for o in (5, 6, 8, 9, 3)], 4, markers_only)
    assert [m.offset() for m in taken] == [5, 6, 8, 9]
    assert again is None
    assert asked == [(4, 5), (7, 8)]  # each gap asked about once; 3 was handled before

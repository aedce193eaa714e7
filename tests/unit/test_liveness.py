"""The worker's liveness checks without a broker: a stall is input waiting with nothing
committed, an idle worker is not stalled, restarts that bring no commit end in a loud stop,
and a loop stuck in one call is reported with where it is stuck."""

from __future__ import annotations

import threading

import pytest

from tickwise.streams.live.liveness import HangWatch, StallWatch, WorkerStalled


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_stall_is_waiting_input_with_nothing_committed_for_the_whole_stall_time() -> None:
    clock = Clock()
    watch = StallWatch(stall_s=60, restarts_max=3, clock=clock)
    clock.now += 59
    assert not watch.due()
    clock.now += 1
    assert watch.due()
    complaint = watch.stalled({0: 0, 2: 17, 1: 5})
    assert (
        complaint
        == "nothing committed for 60 s while input waits (partition 1: 5, partition 2: 17)"
    )
    assert not watch.due(), "after a restart the new consumer gets the whole stall time"


def test_an_idle_worker_is_not_stalled_and_a_commit_resets_the_count() -> None:
    clock = Clock()
    watch = StallWatch(stall_s=60, restarts_max=1, clock=clock)
    clock.now += 61
    assert watch.stalled({0: 0, 1: 1}) is None, "one offset may be a commit marker"
    assert watch.stalled({}) is None
    assert not watch.due(), "nothing waiting counts as progress"
    clock.now += 61
    assert watch.stalled({0: 3}) is not None
    watch.progressed()  # the new consumer committed
    clock.now += 61
    assert watch.stalled({0: 3}) is not None, "one restart in a row again, not two"


def test_restarts_that_bring_no_commit_end_in_a_loud_stop() -> None:
    clock = Clock()
    watch = StallWatch(stall_s=60, restarts_max=2, clock=clock)
    for _ in range(2):
        clock.now += 61
        assert watch.stalled({1: 40}) is not None
        watch.progressed(reset=False)  # partitions assigned again, but nothing committed
    clock.now += 61
    with pytest.raises(WorkerStalled, match=r"partition 1: 40\), after 2 new consumers in a row"):
        watch.stalled({1: 40})


def test_a_loop_stuck_in_one_call_is_reported_with_its_stack() -> None:
    clock = Clock()
    reports: list[str] = []
    watch = HangWatch(300, "the test's loop", reports.append, clock=clock, poll_s=0.01)
    release = threading.Event()
    started = threading.Event()

    def loop() -> None:
        watch.start()
        started.set()
        release.wait(30)  # a client call that never returns

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        started.wait(10)
        clock.now += 299
        assert not watch.check()
        watch.beat()
        clock.now += 300
        assert not watch.check(), "a beat restarts the count"
        clock.now += 1
        assert watch.check()
    finally:
        release.set()
        thread.join(10)
        watch.stop()
    assert len(reports) >= 1
    assert reports[0].startswith("the test's loop stuck for 301 s (limit 300 s)")
    assert "release.wait(30)" in reports[0], "the report names the line the loop is stuck on"


def test_the_watch_thread_fires_on_its_own() -> None:
    fired = threading.Event()
    watch = HangWatch(0.05, "a loop", lambda _: fired.set(), poll_s=0.01)
    watch.start()  # never beats again
    assert fired.wait(5)
    watch.stop()

"""The worker as a process: a worker that must stop, stops (the crash watchdog ends it with
its code even when the main thread never returns, as when closing a client waits on a broker
that is away), and the benchmark's faust floor leaves nothing behind in the directory it was
started from."""

from __future__ import annotations

import subprocess
import sys
import time

BLOCKED = (
    "import time\n"
    "from streams.live.worker import exit_after\n"
    "exit_after(0.5, 3)\n"
    "time.sleep(60)  # a stop that never finishes\n"
)


def test_exit_after_ends_a_blocked_process_with_its_code() -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", BLOCKED], timeout=30, capture_output=True)
    assert proc.returncode == 3, proc.stderr.decode()[-2000:]
    assert time.monotonic() - started < 30


def test_faust_keeps_its_data_directory_out_of_the_working_directory() -> None:
    from pathlib import Path

    from streams.live.worker import faust_app

    app = faust_app("tw-datadir-check", "127.0.0.1:9")
    datadir = Path(app.conf.datadir).resolve()
    assert not datadir.is_relative_to(Path.cwd().resolve())
    assert datadir.name == "tw-datadir-check"

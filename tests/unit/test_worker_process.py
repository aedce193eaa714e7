"""The worker as a process: a worker that must stop, stops (the crash watchdog ends it with
its code even when the main thread never returns, as when closing a client waits on a broker
that is away)."""

from __future__ import annotations

import subprocess
import sys
import time

BLOCKED = (
    "import time\n"
    "from tickwise.streams.live.worker import exit_after\n"
    "exit_after(0.5, 3)\n"
    "time.sleep(60)  # a stop that never finishes\n"
)


def test_exit_after_ends_a_blocked_process_with_its_code() -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", BLOCKED], timeout=30, capture_output=True)
    assert proc.returncode == 3, proc.stderr.decode()[-2000:]
    assert time.monotonic() - started < 30

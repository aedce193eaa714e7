"""A worker never goes silent: the two checks that turn "no progress" into a loud action.

Why: a Kafka client can fail quietly. After a broker restart that outlived the group session,
a consumer reported its partitions lost and then never got them back: no error, no commit, a
process that looked alive. Every client call the transport makes is bounded, but a bound on
each call does not bound the whole, so two checks watch the outcome instead:

* ``StallWatch``: the loop keeps turning, yet nothing is committed while input waits. The
  transport then replaces its consumer (which rejoins the group and rebuilds its partitions
  from checkpoints and the committed offsets), and stops the worker if that does not help.
* ``HangWatch``: the loop itself stopped turning (a call that never returns). A thread of its
  own then logs where the loop is stuck and ends the process, so a supervisor restarts it and
  the partitions' next owner recovers them, as after a SIGKILL.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable

log = logging.getLogger(__name__)

EXIT_HUNG = 70  # the process ended because its loop hung (EX_SOFTWARE)


class WorkerStalled(RuntimeError):
    """Input waits, nothing is committed, and new consumers did not help: the worker stops."""


class StallWatch:
    """When a loop that keeps turning has gone ``stall_s`` without progress, and what to do.

    Progress is a commit, or a look that found no input waiting. ``due`` says when to look at
    the input again; ``stalled`` records what the look found and returns the complaint, or
    None. After ``restarts_max`` complaints in a row it raises ``WorkerStalled``.
    """

    def __init__(
        self,
        stall_s: float,
        restarts_max: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_s = stall_s
        self.restarts_max = restarts_max
        self.clock = clock
        self.restarts = 0
        self._at = clock()

    def progressed(self, reset: bool = True) -> None:
        """Something moved on; ``reset=False`` (a new assignment): wait again, but keep the
        count of restarts that brought no commit."""
        self._at = self.clock()
        if reset:
            self.restarts = 0

    def idle_s(self) -> float:
        """Seconds since the last progress."""
        return self.clock() - self._at

    def due(self) -> bool:
        """Whether it is time to look at the input."""
        return self.idle_s() >= self.stall_s

    def stalled(self, waiting: dict[int, int]) -> str | None:
        """Given the offsets waiting per partition, the complaint that calls for a restart, or
        None when nothing waits (an idle worker is a healthy one).

        One offset is not enough: a transactional writer leaves a commit marker at the end of
        a partition, an offset that holds no message.
        """
        waiting = {p: n for p, n in waiting.items() if n > 1}
        if not waiting:
            self.progressed()
            return None
        what = ", ".join(f"partition {p}: {n}" for p, n in sorted(waiting.items()))
        complaint = f"nothing committed for {self.idle_s():.0f} s while input waits ({what})"
        self.restarts += 1
        self._at = self.clock()
        if self.restarts > self.restarts_max:
            raise WorkerStalled(
                f"{complaint}, after {self.restarts_max} new consumers in a row; stopping"
            )
        return complaint


def _default_on_hang(text: str) -> None:
    log.critical("%s", text)
    logging.shutdown()
    os._exit(EXIT_HUNG)


class HangWatch:
    """A thread that ends the process, loudly, when the thread it watches stops beating.

    ``limit_s`` must exceed the longest step the watched loop takes between two beats (every
    client call in it is bounded well below). ``on_hang`` gets the message, with the stuck
    thread's stack; by default it logs it as CRITICAL and exits with ``EXIT_HUNG``.
    """

    def __init__(
        self,
        limit_s: float,
        what: str,
        on_hang: Callable[[str], None] = _default_on_hang,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 1.0,
    ) -> None:
        self.limit_s = limit_s
        self.what = what
        self.on_hang = on_hang
        self.clock = clock
        self.poll_s = poll_s
        self._at = clock()
        self._watched: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """The watched loop moved on (cheap: one clock read)."""
        self._at = self.clock()

    def start(self) -> None:
        """Watch the calling thread from now on."""
        self._watched = threading.get_ident()
        self.beat()
        self._thread = threading.Thread(target=self._run, name="tickwise-hangwatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (the orderly end of the loop)."""
        self._stop.set()

    def check(self) -> bool:
        """Look once; call ``on_hang`` and return True if the loop is stuck."""
        stuck = self.clock() - self._at
        if stuck <= self.limit_s:
            return False
        frame = sys._current_frames().get(self._watched or -1)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(gone)\n"
        self.on_hang(
            f"{self.what} stuck for {stuck:.0f} s (limit {self.limit_s:g} s); stopping the "
            f"process so that it is restarted and its partitions recovered. Stuck at:\n{stack}"
        )
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            if self.check():
                return

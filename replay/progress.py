"""A one-line progress display on stderr for long backtests (no dependency needed).

The total is unknown while input streams, so the line shows what is known: ticks done, speed,
decisions, the event time reached and the equity. The wall clock is read only to pace redraws.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from replay.report import iso_utc


class Progress:
    """Redraw ``\\r``-style at most every ``every_s`` seconds; ``close`` ends the line."""

    def __init__(self, enabled: bool, stream: TextIO = sys.stderr, every_s: float = 0.5) -> None:
        self.enabled = enabled
        self.stream = stream
        self.every_s = every_s
        self._start = time.monotonic()
        self._next = self._start + every_s
        self._drawn = False

    def update(self, ticks: int, decisions: int, ts_event_ns: int | None, equity: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every_s
        rate = ticks / max(now - self._start, 1e-9)
        when = iso_utc(ts_event_ns)[:19] if ts_event_ns is not None else "-"
        self.stream.write(
            f"\r{ticks:>12,} ticks {rate:>9,.0f}/s  {decisions:>10,} decisions  "
            f"event time {when}  equity {equity:,.2f} "
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()

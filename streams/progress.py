"""The progress bar of the long commands (backtest, feed, replay, replay-check, model compare).

A thin layer over tqdm, so every command draws the same kind of bar on stderr: records done,
rate, elapsed time and the command's own counts as named fields. Whether to draw is the
``--progress`` flag's (``wants_progress``). The parser adds that flag from here while
``tickwise --help`` runs, so tqdm is imported only when a bar is made.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TextIO

# Records between two progress updates: the loops test a counter, so a bar costs nothing per
# record, and tqdm redraws at most every half second of those updates.
PROGRESS_EVERY = 1024


def utc_second(ts_ns: int | None) -> str:
    """A nanosecond timestamp to the second, for a progress bar; ``-`` before the first.

    Examples
    --------
    >>> utc_second(1_378_072_800_083_000_001), utc_second(None)
    ('2013-09-01T22:00:00Z', '-')
    """
    if ts_ns is None:
        return "-"
    return datetime.fromtimestamp(ts_ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Progress:
    """A tqdm bar of records done, with the command's own counts as named fields.

    Callers update it every ``PROGRESS_EVERY`` records with the absolute count, and close it
    with the final count and fields, so the last line drawn holds the totals; as a context
    manager it also ends the line when an error stops the run. Disabled, it draws nothing.
    The wall clock behind the rate only paces and labels the display.
    """

    def __init__(
        self,
        enabled: bool,
        desc: str,
        unit: str = "ticks",
        total: int | None = None,
        stream: TextIO | None = None,
    ) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            desc=desc,
            total=total,
            unit=f" {unit}",
            file=stream or sys.stderr,
            disable=not enabled,
            mininterval=0.5,
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()  # ends the line when an error cut the run short; a no-op after close

    def update(self, n: int, **fields: object) -> None:
        """Show ``n`` records done and ``fields`` (in the order given) after them."""
        bar = self._bar
        if bar.disable:
            return
        bar.set_postfix(_exact(fields), refresh=False)
        bar.update(n - bar.n)

    def close(self, n: int, **fields: object) -> None:
        """Draw the final count and fields, and end the line."""
        bar = self._bar
        if not bar.disable:
            bar.set_postfix(_exact(fields), refresh=False)
            bar.n = n
        bar.close()


def _exact(fields: dict[str, object]) -> dict[str, str]:
    """Fields as text: tqdm would round a number to three figures (123456 to 1.23e+5)."""
    return {name: str(value) for name, value in fields.items()}


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--progress/--no-progress``; the long-running commands take it the same way."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


def wants_progress(args: argparse.Namespace) -> bool:
    """The flag if given, else whether stderr is a terminal (a pipe or a log gets no bar)."""
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)

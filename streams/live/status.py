"""``tickwise status``: data-quality figures per instrument, read back from the topics.

Reads ``ticks.clean`` and ``ticks.quarantine`` and folds them with the same ``QualityMonitor``
the worker exports as Prometheus metrics: accepted, rejected by reason, gaps and lateness.
"""

from __future__ import annotations

import argparse
import json
import time

from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import CleanTick
from tickwise.schemas.topics import Topics
from tickwise.streams.live.bootstrap import resolve_bootstrap
from tickwise.streams.live.tap import consumer, messages
from tickwise.streams.operators.validation import QualityMonitor


def quality_from_topics(
    bootstrap: str, topics: Topics, gap_s: float = 60.0, idle: float = 3.0
) -> dict[str, dict[str, object]]:
    """Per-instrument figures of everything on the clean and quarantine topics (until idle)."""
    monitor = QualityMonitor(gap_s)
    c = consumer(bootstrap, [topics.clean, topics.quarantine])
    try:
        for msg in messages(c, idle_timeout=idle, deadline=time.monotonic() + 600):
            value = msg.value() or b""
            if msg.topic() == topics.clean:
                monitor.on_verdict(CleanTick.model_validate_json(value))
            else:
                monitor.on_verdict(QuarantineRecord.model_validate_json(value))
    finally:
        c.close()
    return monitor.figures()


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise status`` and return the exit code."""
    figures = quality_from_topics(
        resolve_bootstrap(args), Topics(args.topic_prefix), args.gap_s, args.idle
    )
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{'instrument':<12}{'accepted':>10}{'rejected':>10}{'gaps':>6}{'late':>6}  by reason")
    for name, f in figures.items():
        reasons = ", ".join(f"{r}={n}" for r, n in f["rejected_by_reason"].items())  # type: ignore[attr-defined]
        print(
            f"{name:<12}{f['accepted']:>10}{f['rejected']:>10}{f['gaps']:>6}"
            f"{f['late_accepted']:>6}  {reasons}"
        )
    return 0

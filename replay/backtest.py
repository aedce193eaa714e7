"""What a backtest writes: each topic's file, ``summary.json`` and the run's counts.

Every output is written in the JSON form it has on its topic, so ``decisions.jsonl`` can be
compared line by line with the ``decisions`` topic. ``replay.engine`` runs the backtest; the
report (``equity.csv``, ``report.json``, ``report.html``) is ``replay.columnar``'s.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tickwise.schemas.topics import ALERTS, AUDIT, DECISIONS, FILLS, SIGNALS, TICKS_QUARANTINE
from tickwise.streams.progress import utc_second

# Topic -> file: each line exactly as the message is on that topic.
FILES = {
    DECISIONS.name: "decisions.jsonl",
    AUDIT.name: "audit.jsonl",
    SIGNALS.name: "signals.jsonl",
    TICKS_QUARANTINE.name: "quarantine.jsonl",
    FILLS.name: "fills.jsonl",
    ALERTS.name: "alerts.jsonl",
}
REPORT_FILES = ("summary.json", "equity.csv", "report.json", "report.html")


@dataclass
class BacktestResult:
    """Counts of what one run produced."""

    ticks: int = 0
    clean: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    signals: int = 0
    decisions: int = 0
    approved: int = 0
    holds_summarised: int = 0  # HOLDs published only inside the audit chain's hold summaries
    seconds: float = 0.0
    report: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        return {
            "ticks": self.ticks,
            "clean": self.clean,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "signals": self.signals,
            "decisions": self.decisions,
            "approved": self.approved,
            "holds_summarised": self.holds_summarised,
            "decided_ticks": self.decisions + self.holds_summarised,
            "seconds": round(self.seconds, 3),
            "ticks_per_second": round(self.ticks / self.seconds) if self.seconds else None,
        }


class RunView(Protocol):
    """What the progress bar reads of a report collector."""

    @property
    def last_ts_ns(self) -> int | None: ...

    @property
    def equity(self) -> float: ...


def progress_fields(result: BacktestResult, collector: RunView) -> dict[str, object]:
    """The progress bar's figures of a backtest."""
    return {
        "decisions": result.decisions,
        "event_time": utc_second(collector.last_ts_ns),
        "equity": f"{collector.equity:,.2f}",
    }


def write_summary(out: Path, result: BacktestResult) -> dict[str, object]:
    """Write ``summary.json``; return the run's figures the report carries (its speed apart)."""
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return {k: v for k, v in result.summary().items() if k not in ("seconds", "ticks_per_second")}

"""Data-quality figures per instrument: what was accepted, refused and why, gaps and lateness.

A pure operator fed with the validator's verdicts, so the worker (Prometheus metrics) and
``tickwise status`` (reading the topics back) compute the same figures the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tickwise.schemas.quarantine import QuarantineRecord, ReasonCode
from tickwise.schemas.ticks import CleanTick
from tickwise.streams.operators.state import InstrumentStateMixin

if TYPE_CHECKING:  # numpy only where columns are counted: the light commands never load it
    import numpy as np

UNKNOWN = "(unknown)"  # records that could not be read far enough to know their instrument
LATE_REASONS = frozenset({ReasonCode.OUT_OF_ORDER, ReasonCode.STALE_TIMESTAMP})


@dataclass
class QualityFigures:
    """Counts and event-time figures of one instrument."""

    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    gaps: int = 0  # event-time gaps between accepted ticks longer than the gap limit
    max_gap_ns: int = 0
    late_accepted: int = 0  # accepted behind the watermark (within tolerance, or reordered)
    max_lateness_ns: int = 0
    lateness_sum_ns: int = 0
    watermark_ns: int = -1
    last_ns: int = -1

    def as_dict(self) -> dict[str, object]:
        """The figures as plain JSON-ready values (seconds for durations)."""
        return {
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "late_rejected": sum(self.rejected[r.value] for r in LATE_REASONS),
            "gaps": self.gaps,
            "max_gap_s": self.max_gap_ns / 1e9,
            "late_accepted": self.late_accepted,
            "max_lateness_s": self.max_lateness_ns / 1e9,
            "watermark_ns": self.watermark_ns,
        }


class QualityMonitor(InstrumentStateMixin):
    """Fold verdicts into per-instrument ``QualityFigures``.

    Examples
    --------
    >>> from tickwise.schemas.ticks import SourceRef, TradeTick
    >>> m = QualityMonitor(gap_s=1.0)
    >>> src = SourceRef(topic="ticks.raw", partition=0, offset=0)
    >>> for ts in (0, 10**9 // 2, 3 * 10**9):
    ...     tick = TradeTick(tick_id=str(ts), instrument="ES", ts_event_ns=ts, price=1.0, size=1.0)
    ...     m.on_verdict(CleanTick(tick=tick, source=src))
    >>> m.figures()["ES"]["accepted"], m.figures()["ES"]["gaps"], m.figures()["ES"]["max_gap_s"]
    (3, 1, 2.5)
    """

    def __init__(self, gap_s: float = 60.0) -> None:
        self.gap_ns = int(gap_s * 1e9)
        self._state: dict[str, QualityFigures] = {}

    def on_verdict(self, verdict: CleanTick | QuarantineRecord) -> None:
        """Count one validator output."""
        if isinstance(verdict, QuarantineRecord):
            figures = self._figures(verdict.instrument or UNKNOWN)
            figures.rejected[verdict.reason.value] += 1
            return
        self.on_accepted(verdict.tick.instrument, verdict.tick.ts_event_ns)

    def on_accepted_many(self, names: list[str], instrument: np.ndarray, ts: np.ndarray) -> None:
        """Count clean ticks, in row order, from columns (the columnar engine's verdicts):
        ``instrument`` indexes ``names``; the figures are ``on_accepted``'s, tick by tick."""
        import numpy as np

        if instrument.size == 0:
            return
        order = np.argsort(instrument, kind="stable")
        keys, starts = np.unique(instrument[order], return_index=True)
        for k, rows in zip(keys.tolist(), np.split(order, starts[1:]), strict=True):
            self._accept_run(self._figures(names[k]), ts[rows].astype(np.int64))

    def _accept_run(self, figures: QualityFigures, ts: np.ndarray) -> None:
        """``on_accepted`` over one instrument's event times in order, in numpy."""
        import numpy as np

        before = np.empty_like(ts)
        before[0], before[1:] = figures.last_ns, ts[:-1]
        known = before >= 0
        gap = (ts - before)[known]
        if gap.size:
            figures.gaps += int(np.count_nonzero(gap > self.gap_ns))
            figures.max_gap_ns = max(figures.max_gap_ns, int(gap.max()))
        marks = np.maximum.accumulate(np.concatenate(([figures.watermark_ns], ts)))
        mark = marks[:-1]  # the watermark each tick meets
        late = (ts >= 0) & (ts < mark)
        if late.any():
            lateness = (mark - ts)[late]
            figures.late_accepted += int(late.sum())
            figures.lateness_sum_ns += int(lateness.sum())
            figures.max_lateness_ns = max(figures.max_lateness_ns, int(lateness.max()))
        figures.accepted += int(ts.size)
        figures.watermark_ns = int(marks[-1])
        figures.last_ns = int(ts[-1])

    def on_accepted(self, instrument: str, ts: int) -> None:
        """Count one clean tick of ``instrument`` at event time ``ts``."""
        figures = self._figures(instrument)
        figures.accepted += 1
        if figures.last_ns >= 0 and ts - figures.last_ns > self.gap_ns:
            figures.gaps += 1
        if figures.last_ns >= 0:
            figures.max_gap_ns = max(figures.max_gap_ns, ts - figures.last_ns)
        if 0 <= ts < figures.watermark_ns:
            late = figures.watermark_ns - ts
            figures.late_accepted += 1
            figures.lateness_sum_ns += late
            figures.max_lateness_ns = max(figures.max_lateness_ns, late)
        figures.watermark_ns = max(figures.watermark_ns, ts)
        figures.last_ns = ts

    def figures(self) -> dict[str, dict[str, object]]:
        """Every instrument's figures, by instrument."""
        return {name: f.as_dict() for name, f in sorted(list(self._state.items()))}

    def _figures(self, instrument: str) -> QualityFigures:
        figures = self._state.get(instrument)
        if figures is None:
            figures = self._state[instrument] = QualityFigures()
        return figures

"""Merge several recorded files into one stream in event-time order.

Per-instrument files (``ES.csv NQ.csv``) must interleave by time for a portfolio equity curve:
read one after the other, the second file's history would start after the first one's end.
Each file stays in its own order (so per-instrument sequences are unchanged and decisions are
the same), and only one record per file is held at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

from tickwise.streams.sources import RawRecord


def _keyed(index: int, records: Iterable[RawRecord]) -> Iterator[tuple[int, int, int, RawRecord]]:
    last = -(2**63)
    for n, rec in enumerate(records):
        # a row whose time could not be parsed keeps its place right after its predecessor
        if rec.ts_event_ns is not None:
            last = max(last, rec.ts_event_ns)
        yield last, index, n, rec


def merge_in_time(streams: list[Iterable[RawRecord]]) -> Iterator[RawRecord]:
    """Interleave ``streams`` by event time (ties: the earlier file first).

    Examples
    --------
    >>> a = [RawRecord("ES", b"", "a", i, ts) for i, ts in enumerate([1, 5, 9])]
    >>> b = [RawRecord("NQ", b"", "b", i, ts) for i, ts in enumerate([2, 5, 6])]
    >>> [(r.origin, r.ts_event_ns) for r in merge_in_time([a, b])]
    [('a', 1), ('b', 2), ('a', 5), ('b', 5), ('b', 6), ('a', 9)]
    """
    if len(streams) == 1:
        yield from streams[0]
        return
    for *_, rec in heapq.merge(*(_keyed(i, s) for i, s in enumerate(streams))):
        yield rec

"""A faust table written a batch at a time: the watchtower's state at the rate of its input.

A faust table sends a changelog message on every assignment. The trail agent changes its chain
heads, its pending decisions, a window state and its checked offsets on nearly every message,
so written through, the changelogs carried several messages (a window state of kilobytes among
them) per message read, and their sends cost far more than the checks. The agent takes its
input a batch at a time instead and reads and writes its tables through a ``Behind`` each: reads
see the batch's own writes, and at the batch's end each key that changed is written once, its
changelog message on the partition of the last input message that changed it, as faust does for
a write inside a stream. A key set and deleted within one batch (a decision met by its audit
record) never reaches the changelog. The agent flushes before it awaits anything, so the
timer's look and the web views, which read the tables themselves, never see half a batch.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

_DELETED = object()
_ABSENT = object()


class Behind(MutableMapping[str, Any]):
    """A write-behind view of a faust table (any mapping with faust's ``data`` and
    ``send_changelog``); ``partition``: the input partition the writes belong to."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.partition = 0
        self._dirty: dict[str, tuple[int, Any]] = {}

    def __getitem__(self, key: str) -> Any:
        hit = self._dirty.get(key)
        if hit is None:
            value = self.table.data.get(key, _ABSENT)
            if value is _ABSENT:
                raise KeyError(key)
            return value
        if hit[1] is _DELETED:
            raise KeyError(key)
        return hit[1]

    def __setitem__(self, key: str, value: Any) -> None:
        self._dirty[key] = (self.partition, value)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._dirty[key] = (self.partition, _DELETED)

    def __iter__(self) -> Iterator[str]:
        dirty = self._dirty
        yield from (key for key in list(self.table.data) if key not in dirty)
        yield from (key for key, (_, value) in list(dirty.items()) if value is not _DELETED)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> int:
        """Write each changed key to the table and its changelog; how many messages that took."""
        data, sent = self.table.data, 0
        for key, (partition, value) in self._dirty.items():
            if value is _DELETED:
                if data.pop(key, _ABSENT) is _ABSENT:
                    continue  # born and gone within the batch: nothing to tell the changelog
                self.table.send_changelog(partition, key, None, value_serializer="raw")
            else:
                data[key] = value
                self.table.send_changelog(partition, key, value)
            sent += 1
        self._dirty.clear()
        return sent

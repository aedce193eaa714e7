"""Reading ahead of the engine and writing behind it, on threads of their own.

Why: a replay is three sequential jobs: reading and validating a file into columns, the
engine's kernels, and rendering and writing what they decided (the topic-shaped files and the
report's columns). Nothing the first or last does feeds back into the engine. pyarrow's reader
and the kernels (``jit.kernel``: ``nogil``) let go of the GIL while they work, so with the
reader a batch ahead and the writer a batch behind the engine a second core reads and writes
while the first decides. Items cross in order through bounded queues, so what is
decided and written is the same, byte for byte, as one thread doing all three in turn; only
how long it takes changes.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterable
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()


def read_ahead(
    items: Iterable[T], depth: int = 2, name: str = "tickwise-read"
) -> Generator[T, None, None]:
    """``items`` as they are, taken from them on a thread that stays up to ``depth`` ahead.

    An exception raised by ``items`` is raised here, after the items before it, so a caller
    sees exactly what iterating ``items`` itself would show. Closing the iterator early stops
    the thread after the item it is reading.
    """
    ready: queue.Queue[tuple[bool, object]] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                ready.put((True, item))
                if stop.is_set():
                    return
            ready.put((True, _END))
        except BaseException as exc:  # handed over, raised in the reader's place
            ready.put((False, exc))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            ok, item = ready.get()
            if not ok:
                assert isinstance(item, BaseException)
                raise item
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # unblock its put; it stops after the item in hand
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        thread.join()


class WriteBehind(Generic[T]):
    """Calls ``take`` on each item put, in order, on a thread of its own.

    ``put`` waits while ``depth`` items are queued. The first exception ``take`` raises is
    raised by the next ``put`` or by ``close``; items after it are not taken. Leaving a
    ``with`` block closes it: every item put is taken before the block is left.
    """

    def __init__(self, take: Callable[[T], None], depth: int = 2, name: str = "tickwise-write"):
        self._take = take
        self._queue: queue.Queue[object] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self._error is None:
                try:
                    self._take(item)  # type: ignore[arg-type]
                except BaseException as exc:  # handed over, raised by put or close
                    self._error = exc

    def put(self, item: T) -> None:
        """Queue ``item``; raises what an earlier ``take`` raised."""
        self._raise()
        self._queue.put(item)

    def close(self) -> None:
        """Wait until every item put is taken; raises what ``take`` raised."""
        self._drain()
        self._raise()

    def _drain(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> WriteBehind[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._drain()
        if kind is None:  # else the caller's error comes first
            self._raise()

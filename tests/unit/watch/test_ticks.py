"""The raw-tick reader's bookkeeping, without a broker: of any batch, each instrument's last
message wins (keys only; an empty key or an error event counts for nothing), a take hands over
what was read since the last one, and a reader never started stops at once."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from tickwise.streams.watch.ticks import LastTick, LatestTicks, TickReader, latest_of


@dataclass(frozen=True)
class Msg:
    """What the reader uses of a confluent-kafka message (which Python cannot construct)."""

    k: bytes | None
    p: int
    o: int
    err: object = None

    def error(self) -> object:
        return self.err

    def key(self) -> bytes | None:
        return self.k

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o


keys = st.sampled_from([b"ES", b"NQ", b"CL", b"", None, "é".encode(), b"\xff"])
messages = st.lists(
    st.tuples(keys, st.integers(0, 3), st.booleans()).map(
        lambda t: (t[0], t[1], "a broker error" if t[2] else None)
    ),
    max_size=60,
)


def as_batch(spec: list[tuple[bytes | None, int, object]], start: int = 0) -> list[Msg]:
    return [Msg(k, p, start + i, err) for i, (k, p, err) in enumerate(spec)]


@given(messages)
def test_each_key_keeps_its_last_message_of_the_batch(spec: list) -> None:
    batch = as_batch(spec)
    latest, ticks = latest_of(batch)
    oracle: dict[bytes, tuple[int, int]] = {}
    for m in batch:
        if m.err is None and m.k:
            oracle[m.k] = (m.p, m.o)
    assert latest == oracle
    assert ticks == sum(1 for m in batch if m.err is None and m.k)


@given(st.lists(messages, max_size=5))
def test_a_take_hands_over_the_latest_since_the_last_take(batches: list) -> None:
    latest = LatestTicks()
    expected: dict[str, LastTick] = {}
    offset = 0
    for n, spec in enumerate(batches):
        batch = as_batch(spec, offset)
        offset += len(batch)
        latest.note(batch, now=float(n))
        for m in batch:
            if m.err is None and m.k:
                expected[m.k.decode(errors="replace")] = LastTick(m.p, m.o, float(n))
    assert latest.take() == expected
    assert latest.take() == {}  # taken: nothing until the next batch


def test_notes_from_a_thread_and_takes_from_another_lose_no_instrument() -> None:
    latest = LatestTicks()
    names = [f"I{i}".encode() for i in range(50)]

    def read() -> None:
        for round_ in range(200):
            latest.note([Msg(k, 0, round_ * 50 + i) for i, k in enumerate(names)], float(round_))

    thread = threading.Thread(target=read)
    thread.start()
    seen: dict[str, LastTick] = {}
    while thread.is_alive():
        seen.update(latest.take())
    thread.join()
    seen.update(latest.take())
    assert sorted(seen) == sorted(k.decode() for k in names)
    assert all(
        last.seen == 199.0 and last.offset == 199 * 50 + i
        for i, last in enumerate(seen[k.decode()] for k in names)
    )


def test_a_reader_never_started_stops_at_once() -> None:
    reader = TickReader("127.0.0.1:1", "ticks.raw", "tickwise-watch-ticks", LatestTicks(), 30.0)
    assert reader.stop(timeout=0.1)

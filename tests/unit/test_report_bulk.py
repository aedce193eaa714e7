"""The report's bulk halves equal their one-at-a-time originals: ``Decimator.extend`` and
``add``, ``iso_utc_many`` and ``iso_utc``, and the random baseline's drawn words and
``random.Random`` itself."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.replay import columnar_nb as nb
from tickwise.replay.report import Decimator, iso_utc, iso_utc_many

INT64 = st.integers(np.iinfo(np.int64).min + 1, np.iinfo(np.int64).max)  # min is NaT


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 12),
    chunks=st.lists(st.integers(0, 60), max_size=8),
    before=st.integers(0, 40),
)
def test_decimator_extend_keeps_what_add_keeps(
    capacity: int, chunks: list[int], before: int
) -> None:
    one, bulk = Decimator(capacity), Decimator(capacity)
    t = 0
    for _ in range(before):
        one.add(t, t * 0.5)
        bulk.add(t, t * 0.5)
        t += 1
    for size in chunks:
        ts = np.arange(t, t + size, dtype=np.int64)
        for x in ts.tolist():
            one.add(x, x * 0.5)
        bulk.extend(ts, ts * 0.5)
        t += size
        assert bulk.points() == one.points()
        assert (bulk._stride, bulk._seen, bulk._last) == (one._stride, one._seen, one._last)


@settings(deadline=None)
@given(st.lists(INT64, max_size=20))
def test_iso_utc_many_is_iso_utc(ts: list[int]) -> None:
    assert iso_utc_many(np.array(ts, np.int64)) == [iso_utc(x) for x in ts]


@settings(deadline=None)
@given(st.integers(0, 2**32), st.lists(st.booleans(), min_size=1, max_size=200))
def test_drawn_words_replay_random_and_choice(seed: int, picks: list[bool]) -> None:
    """The kernel's ``random()`` and ``choice`` of two from the words of ``getrandbits``."""
    want, source = random.Random(seed), random.Random(seed)
    n = 2 * len(picks) + 600
    words = np.frombuffer(source.getrandbits(32 * n).to_bytes(4 * n, "little"), "<u4").copy()
    g = np.zeros(nb.N_G, np.int64)
    g[nb.N_WORDS] = words.size
    for choose in picks:
        assert nb._random(words, g) == want.random()
        if choose:
            assert nb._below_two(words, g) == want.choice((0, 1))

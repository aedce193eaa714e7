"""How the decide stage reads plain HOLDs off its columns for the audit chain: their reasons
counted by stretch, and the stretches that one ``count_stretches`` call counts together."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.schemas.decisions import TradingState
from tickwise.streams.engine import risk as rk
from tickwise.streams.engine.decide import _N_CODES, _count_reasons, _StretchColumns

CHECK = settings(max_examples=150, deadline=None)


@st.composite
def _decisions(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n = draw(st.integers(0, 60))
    n_stretches = draw(st.integers(1, 6))
    stretch = np.array(draw(st.lists(st.integers(-1, n_stretches - 1), min_size=n, max_size=n)))
    out = np.zeros((n, rk.N_OUT))
    numbers = st.sampled_from([0.5, -1.25, math.inf, -math.inf, math.nan])
    for d in range(n):
        out[d, rk.O_REASON] = draw(st.integers(0, rk.R_KEEP))
        out[d, rk.O_COST], out[d, rk.O_EDGE] = draw(numbers), draw(numbers)
    held = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, -1.0]), min_size=n, max_size=n)))
    return stretch.astype(np.int64), out, held, n_stretches


@CHECK
@given(_decisions())
def test_reasons_are_counted_by_stretch_and_code_and_odd_numbers_kept_apart(case) -> None:
    stretch, out, held, k = case
    n = stretch.size
    keys, counts, odd = (np.empty(n, np.int64) for _ in range(3))
    some = np.full(_N_CODES, -1, np.int64)
    n_keys, n_odd = _count_reasons(
        stretch, out, held, k, keys, counts, some, odd, np.empty(k, np.int64),
        np.empty(k, np.int64),
    )  # fmt: skip
    expected: Counter[int] = Counter()
    expected_odd = []
    for d in range(n):
        if stretch[d] < 0:
            continue
        code = int(out[d, rk.O_REASON]) * 8 + 4 * (held[d] > 0.0)
        if math.isfinite(out[d, rk.O_COST]) and math.isfinite(out[d, rk.O_EDGE]):
            expected[int(stretch[d]) * _N_CODES + code + 3] += 1
        else:
            expected_odd.append(d)
    got: Counter[int] = Counter()
    for key, count in zip(keys[:n_keys].tolist(), counts[:n_keys].tolist(), strict=True):
        got[key] += count
    assert got == expected
    assert odd[:n_odd].tolist() == expected_odd
    for key in expected:  # a decision of each code, to write the code's text from
        d = some[key % _N_CODES]
        assert stretch[d] >= 0 and int(out[d, rk.O_REASON]) * 8 + 4 * (held[d] > 0) + 3 == (
            key % _N_CODES
        )


def _stretches(rows: list[int], instrument: list[int]) -> _StretchColumns:
    n = len(rows)
    return _StretchColumns(
        rows, np.array(instrument, np.int64), [TradingState.ACTIVE] * n, ["m"] * n, [1] * n,
        [0] * n, ["a"] * n, [0] * n, ["a"] * n, [0.0] * n, [{} for _ in range(n)],
    )  # fmt: skip


@CHECK
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 2)), max_size=40),
)
def test_groups_are_stretches_one_after_the_other_of_one_instrument(visits) -> None:
    """Visited rows are the stretches' first rows (flagged) among other rows; a group is a
    run of stretch rows next to one another among the visited ones, of one instrument."""
    visited = np.arange(len(visits), dtype=np.int64) * 3
    opens = [(int(visited[p]), k) for p, (is_stretch, k) in enumerate(visits) if is_stretch]
    stretches = _stretches([r for r, _ in opens], [k for _, k in opens])
    groups = stretches.groups(visited)
    expected: dict[int, tuple[int, int, int]] = {}
    s = 0
    p = 0
    while p < len(visits):
        if not visits[p][0]:
            p += 1
            continue
        start, s0 = p, s
        while p < len(visits) and visits[p][0] and visits[p][1] == visits[start][1]:
            p, s = p + 1, s + 1
        expected[start] = (s0, s, p)
    assert groups == expected

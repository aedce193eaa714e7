"""``keep_batch_memory``: a batch-sized buffer freed and allocated again reuses its pages."""

from __future__ import annotations

import platform
import resource
import sys

import numpy as np
import pytest

from tickwise.streams.engine.heap import keep_batch_memory

SIZE = 48 << 20  # above the most glibc raises its mmap threshold to by itself, below ours


def faults_touching_a_fresh_buffer() -> int:
    """Minor page faults taken by filling a new 48 MiB buffer (then freed)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffer = np.empty(SIZE, np.uint8)
    buffer.fill(1)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del buffer
    return after - before


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="glibc's allocator only",
)
def test_a_freed_batch_buffer_is_reused_without_new_page_faults() -> None:
    assert keep_batch_memory()
    assert keep_batch_memory()  # calling again changes nothing
    faults_touching_a_fresh_buffer()  # the heap grows to hold it once
    again = [faults_touching_a_fresh_buffer() for _ in range(3)]
    # mapped afresh each time, it would fault once per page it touches (or per huge page: at
    # least 24 of 2 MiB); kept in the heap, its pages are the last buffer's
    assert max(again) < 8, again


def test_numpy_no_longer_asks_for_huge_pages() -> None:
    from numpy._core.multiarray import _set_madvise_hugepage

    keep_batch_memory()
    assert _set_madvise_hugepage(False) is False  # returns the setting it replaces

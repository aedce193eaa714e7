"""``keep_batch_memory``: a batch-sized buffer freed and allocated again reuses its pages."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tickwise.streams.engine.heap import NATIVE, keep_batch_memory, native_defaults

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


# the process's own command line (``main()`` reads ``sys.argv``), then what it left set
PROBE = """
import json, os, sys
from tickwise.streams.cli import main

code = main()
import pyarrow
print(json.dumps({"code": code, "blas": os.environ.get("OPENBLAS_NUM_THREADS"),
                  "pool": pyarrow.default_memory_pool().backend_name}))
"""


def test_the_command_sets_the_native_libraries_before_it_loads_them(tmp_path: Path) -> None:
    """``tickwise`` has pyarrow allocate with the system's allocator (and OpenBLAS start no
    pool of threads), unless the user set otherwise: here the user's BLAS setting stands."""
    env = {k: v for k, v in os.environ.items() if k not in NATIVE}
    env["OPENBLAS_NUM_THREADS"] = "3"
    argv = ["backtest", "--synthetic", "--count", "300", "--out", str(tmp_path), "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True,
        timeout=300, check=True,
    )  # fmt: skip
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report == {"code": 0, "blas": "3", "pool": "system"}


def test_native_defaults_leave_what_is_set() -> None:
    environ = {"ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}
    native_defaults(environ)
    assert environ == {"ARROW_DEFAULT_MEMORY_POOL": "jemalloc", "OPENBLAS_NUM_THREADS": "1"}

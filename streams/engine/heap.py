"""The C allocator's settings for a process that runs the engine over batches.

Every batch allocates its columns and output buffers afresh, most of them larger than glibc's
mmap threshold (128 KiB, raised as such blocks are freed, up to 32 MiB). A block above it is
mapped anew and given back when freed, so its pages are zeroed by the kernel on first touch
every time: a page fault per 4 KiB of every batch's buffers. In a VM that is 5 to 10 % of a
replay of 200,000 ES trades once the process is warm, and more in its first run. Fixing the
threshold above any batch's buffer and keeping freed memory in the heap lets the next batch
reuse the pages the last one touched.

And small pages: numpy asks the kernel for transparent huge pages on every array of 4 MiB or
more (``madvise``), and where the kernel defragments on request (THP ``defrag`` set to
``madvise``, a common default) a first touch of such an array may wait for memory to be
compacted. A replay's threads (``overlap``) touch fresh arrays at once in its first batches:
on 200,000 ES trades in this VM that cost the run 30 to 40 % of its time, far more than huge
pages save in TLB misses over a run of a second or two.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import MutableMapping

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20  # above any batch's buffer at the default block size
TRIM_THRESHOLD = 256 << 20  # free memory the heap keeps at its top before giving it back


def keep_batch_memory() -> bool:
    """Have glibc serve batch-sized blocks from the heap and keep them when freed, and numpy
    ask for no huge pages; False where the C library is not glibc (the heap is left as it is).

    For finite runs (``tickwise backtest``): the heap holds on to up to ``TRIM_THRESHOLD`` of
    freed memory until the process ends, which a long-running worker would rather not.
    """
    _small_pages()
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def _small_pages() -> None:
    """Have numpy stop asking for huge pages (see the module's docstring)."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _set_madvise_hugepage  # type: ignore[no-redef]
    _set_madvise_hugepage(False)


# What the native libraries read from the environment when they load (so before numpy and
# pyarrow are imported). OpenBLAS (numpy's, and scipy's, which numba imports) starts a pool of
# threads that spin on both cores after loading, and tickwise calls no BLAS (its kernels are
# loops); pyarrow's default allocator, mimalloc, hands back freed blocks and faults them in
# again as huge pages, zeroed each time, while glibc keeps them in the heap
# (``keep_batch_memory``). Together they cost a replay of 200,000 ES trades 5 to 40 % of its
# time, varying from run to run.
NATIVE = {"OPENBLAS_NUM_THREADS": "1", "ARROW_DEFAULT_MEMORY_POOL": "system"}


def native_defaults(environ: MutableMapping[str, str]) -> None:
    """Set ``NATIVE`` in ``environ`` where it is not set already (a user's setting stands):
    the ``tickwise`` command does it for itself before it imports a command, and the
    benchmarks for each child they run."""
    for name, value in NATIVE.items():
        environ.setdefault(name, value)

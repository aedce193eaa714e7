"""How the engine compiles a kernel that allocates nothing: every array it touches is given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit


def kernel(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True)`` without numba's reference counting (its NRT).

    Why: numba counts the references to every array a compiled function passes to another
    one, with an atomic increment before the call and a decrement after it, and its pruning
    pass leaves the pairs around calls that may raise. The decide kernel hands execution and
    risk some forty arrays a row: without the counts it runs in a sixth of the time. Without
    the NRT a function cannot allocate (``np.empty`` inside it fails to compile), so a kernel
    built with this takes its scratch arrays from its caller, and nothing it holds is freed
    under it.

    ``nogil``: a kernel lets go of the GIL while it runs, so the reader and writer threads of a
    replay (``overlap``) work beside it; it touches no Python object.
    """
    return njit(cache=True, _nrt=False, nogil=True, **options)  # type: ignore[no-any-return]

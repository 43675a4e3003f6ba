"""Where extractors allocate the large arrays of a batch, and how windows are copied in.

An extractor builds its batch output with :func:`empty` (or :func:`zeros`) instead of
``np.empty``. By default they are the numpy functions. A DataLoader worker sets an allocator
around its read (:func:`allocating`) that hands out memory inside the shared slot its batch will
travel in (:mod:`neuralset.loaders.transport`), so the read writes the batch where the main
process will find it, with no copy in between. An allocator may decline (return None), for
example when the slot is full: the array then comes from numpy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["Allocator", "allocating", "copy_windows", "empty", "time_last", "zeros"]

#: ``fn(shape, dtype) -> array or None`` (None: let numpy allocate)
Allocator = Callable[[tuple[int, ...], np.dtype], np.ndarray | None]


class _Current(threading.local):
    allocator: Allocator | None = None


_CURRENT = _Current()


@contextmanager
def allocating(allocator: Allocator | None) -> Iterator[None]:
    """Use ``allocator`` for the :func:`empty`/:func:`zeros` calls of this thread inside the block."""
    previous = _CURRENT.allocator
    _CURRENT.allocator = allocator
    try:
        yield
    finally:
        _CURRENT.allocator = previous


def empty(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """An uninitialised array for a batch output (from the current allocator if any)."""
    allocator = _CURRENT.allocator
    if allocator is not None:
        out = allocator(tuple(int(s) for s in shape), np.dtype(dtype))
        if out is not None:
            return out
    return np.empty(shape, dtype=dtype)


def zeros(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """A zero-filled array for a batch output (from the current allocator if any)."""
    if _CURRENT.allocator is None:
        return np.zeros(shape, dtype=dtype)
    out = empty(shape, dtype)
    out.fill(0)
    return out


def copy_windows(
    out: np.ndarray,
    arrays: list[np.ndarray],
    pos: np.ndarray,
    first: np.ndarray,
    inside: np.ndarray,
    n_times: int,
    *,
    time_first: bool = False,
) -> None:
    """``out[j] = arrays[pos[j]][first[j]:first[j] + n_times]`` with time moved last, where
    ``inside[j]``; with ``time_first``, ``out`` is ``(batch, time, *features)``, the stored
    layout, and each window is one contiguous block copy (``time_major`` reads).

    One slice per window, copied (and transposed) straight into the output: no gathered
    intermediate, and a cost per window that does not depend on how many recordings the batch
    spans. Short windows of many features (fMRI volumes) are copied one time step at a time:
    numpy's transposing copy would loop over the short time axis innermost (slower).
    """
    which = np.flatnonzero(inside).tolist()
    if not which:
        return
    if time_first:
        for j, p, f in zip(which, pos[which].tolist(), first[which].tolist()):
            out[j] = arrays[p][f : f + n_times]
        return
    if arrays[0].ndim == 2 and n_times * 32 <= arrays[0].shape[1]:
        for j, p, f in zip(which, pos[which].tolist(), first[which].tolist()):
            src, dst = arrays[p], out[j]
            for t in range(n_times):
                dst[:, t] = src[f + t]
        return
    if arrays[0].ndim == 2:
        for j, p, f in zip(which, pos[which].tolist(), first[which].tolist()):
            out[j] = arrays[p][f : f + n_times].T
        return
    axes = (*range(1, arrays[0].ndim), 0)
    for j, p, f in zip(which, pos[which].tolist(), first[which].tolist()):
        out[j] = arrays[p][f : f + n_times].transpose(axes)


def time_last(block: np.ndarray) -> np.ndarray:
    """``(batch, time, *features)`` seen as ``(batch, *features, time)``: a view (what
    ``time_major`` reads return; ``np.moveaxis`` costs 50 us more per batch)."""
    return block.transpose(0, *range(2, block.ndim), 1)

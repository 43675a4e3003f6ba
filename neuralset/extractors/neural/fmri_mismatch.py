"""Reading fMRI runs whose feature counts differ (native-space masks), zero-padded to the widest.

Used by :meth:`~neuralset.extractors.neural.fmri.FmriExtractor.read` with
``feature_mismatch="pad"``: the segments are grouped by the feature count of their run, each
group is read as usual, and its features are written into a batch as wide as the widest run
of the events table (the rest stays 0; :meth:`FmriExtractor.feature_mask` tells them apart).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...segments import Segments
from ...store import Store
from ..base import OutOfBounds, Output

__all__ = ["read_padded", "padding_mask", "mismatch_message"]


def read_padded(
    ex: Any, segments: Segments, store: Store, out_of_bounds: OutOfBounds, widths: dict[int, int]
) -> Output:
    """``ex``'s read of ``segments``, features zero-padded to ``max(widths.values())``.

    ``widths`` maps each run's event row to its feature count; ``ex._runs_of(segments)`` gives
    each segment's run and ``ex._read_aligned`` reads runs of one width.
    """
    n, width = len(segments), max(widths.values())
    rows = ex._runs_of(segments)
    group = np.array([widths.get(int(r), -1) for r in rows])
    data: np.ndarray | None = None
    mask: np.ndarray | None = None
    keep = np.ones(n, dtype=bool)
    for w in np.unique(group):
        which = np.flatnonzero(group == w)
        out = ex._read_aligned(segments.select(which), store, out_of_bounds)
        kept = which if out.keep is None else which[out.keep]
        if out.keep is not None:
            keep[which[~out.keep]] = False
        if data is None:
            data = np.zeros((n, width, *out.data.shape[2:]), dtype=np.float32)
        data[kept, : out.data.shape[1]] = out.data
        if out.mask is not None:
            if mask is None:
                mask = np.zeros((n, out.mask.shape[1]), dtype=bool)
            mask[kept] = out.mask
    assert data is not None
    if out_of_bounds == "drop":
        return Output(data=data[keep], keep=keep)
    return Output(data=data, mask=mask)


def padding_mask(widths: dict[int, int], rows: np.ndarray) -> np.ndarray:
    """``(segments, max width)`` booleans: True for the real features of each segment's run."""
    width = max(widths.values()) if widths else 0
    own = np.array([widths.get(int(r), width) for r in rows])
    return np.arange(width)[None, :] < own[:, None]


def mismatch_message(events: pd.DataFrame, widths: dict[int, int]) -> str:
    """The error for runs with different feature counts, naming each run and its count."""
    listed = ", ".join(f"{events['filepath'].iloc[r]}: {n}" for r, n in widths.items())
    return (
        f"FmriExtractor: the runs have different numbers of features ({listed}); use one "
        "space for every run (a mask file, template_mask='brain', an atlas or a surface) or "
        "set feature_mismatch='pad' to zero-pad them to the widest"
    )

"""Read-time helpers of :mod:`neuralset.extractors.neural.mne.base`: channel intersection and baseline.

Both work on a batch of segments after the base recording read has gathered the windows; they
never change what is stored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from ....segments import Segments
from ....store import Store
from ...base import OutOfBounds, OutOfBoundsError, Output, events_label

__all__ = ["ChannelLayout", "read_intersection", "baseline_means"]


@dataclasses.dataclass(frozen=True)
class ChannelLayout:
    """The recordings of an events table as a read sees them.

    Attributes
    ----------
    keys
        Store key of each recording event row.
    names
        Stored channel names of each recording row (filled with ``channels="intersection"``).
    common
        The output channels with ``channels="intersection"``: those of every recording, in the
        first recording's order.
    """

    keys: dict[int, str]
    names: dict[int, tuple[str, ...]]
    common: tuple[str, ...]

    @classmethod
    def of(cls, keys: dict[int, str], names: dict[int, tuple[str, ...]]) -> ChannelLayout:
        """The layout of recordings with these keys and channel names (``common`` derived)."""
        lists = list(dict.fromkeys(names.values()))
        common = tuple(n for n in lists[0] if all(n in set(o) for o in lists[1:])) if lists else ()
        return cls(keys=keys, names=names, common=common)

    def columns(self, row: int) -> np.ndarray | None:
        """Columns of the stored recording at ``row`` that make the output (None: all)."""
        if not self.names or self.names[row] == self.common:
            return None
        position = {n: i for i, n in enumerate(self.names[row])}
        return np.array([position[n] for n in self.common], dtype=np.int64)


def read_intersection(
    read: Callable[..., Output],
    segments: Segments,
    store: Store,
    layout: ChannelLayout,
    rows: np.ndarray,
    out_of_bounds: OutOfBounds,
) -> Output:
    """Read segments whose recordings store different channels, keeping ``layout["common"]``.

    Parameters
    ----------
    read
        The plain recording read, ``read(segments, store, out_of_bounds=...)``, for segments
        whose recordings share one channel list.
    segments, store
        The segments read and the store holding their recordings.
    layout
        The stored channel names of each recording and the channels kept (``layout.common``).
    rows
        Recording row of each segment (-1 if none).
    out_of_bounds
        What to do with segments that run past their recording (as in ``read``).
    """
    common = layout.common
    groups: dict[tuple[str, ...], list[int]] = {}
    for row in np.unique(rows):
        names = layout.names[int(row)] if row >= 0 else common
        groups.setdefault(names, []).append(int(row))
    if len(groups) == 1 and next(iter(groups)) == common:
        return read(segments, store, out_of_bounds=out_of_bounds)
    n = len(segments)
    keep = np.ones(n, dtype=bool)
    parts: list[tuple[np.ndarray, Output]] = []
    for names, group_rows in groups.items():
        which = np.flatnonzero(np.isin(rows, group_rows))
        part = read(segments.select(which), store, out_of_bounds=out_of_bounds)
        if names != common:
            position = {c: i for i, c in enumerate(names)}
            cols = np.array([position[c] for c in common], dtype=np.int64)
            part = dataclasses.replace(part, data=part.data[:, cols])
        if part.keep is not None:
            keep[which] = part.keep
        parts.append((which, part))
    first = parts[0][1]
    data = np.zeros((n, *first.data.shape[1:]), dtype=np.float32)
    mask = np.zeros((n, first.mask.shape[1]), dtype=bool) if first.mask is not None else None
    for which, part in parts:
        kept = which[part.keep] if part.keep is not None else which
        data[kept] = part.data
        if mask is not None and part.mask is not None:
            mask[kept] = part.mask
    if out_of_bounds == "drop":
        return Output(data=data[keep], keep=keep)
    return Output(data=data, mask=mask)


def baseline_means(
    segments: Segments,
    rows: np.ndarray,
    recordings: dict[int, tuple[np.ndarray, float, np.ndarray | None]],
    baseline: tuple[float, float],
    out_of_bounds: OutOfBounds,
) -> np.ndarray:
    """Per segment and output channel, the mean of the stored series over the baseline interval.

    Like ``mne.Epochs``: the reference sample is the trigger onset rounded to the stored grid
    (the segment start for segments without a trigger); the samples from
    ``ceil(tmin * sfreq)`` to ``floor(tmax * sfreq)`` after it (both included) are averaged.

    Parameters
    ----------
    segments
        The segments.
    rows
        Recording row of each segment (-1: no recording, mean 0).
    recordings
        ``row -> (stored (time, channels) series, sfreq, output columns or None for all)``.
    baseline
        ``(tmin, tmax)`` in seconds relative to the reference sample.
    out_of_bounds
        What to do with a baseline that runs past its recording (as in ``read``).
    """
    bmin, bmax = baseline
    starts = segments.events["start"].to_numpy()
    ref = np.where(segments.trigger >= 0, starts[np.maximum(segments.trigger, 0)], segments.start)
    means: np.ndarray | None = None
    for row, (data, sfreq, cols) in recordings.items():
        which = np.flatnonzero(rows == row)
        width = data.shape[1] if cols is None else len(cols)
        if means is None:
            means = np.zeros((len(segments), width), dtype=np.float64)
        t0 = np.round((ref[which] - starts[row]) * sfreq).astype(np.int64)
        lo, hi = math.ceil(bmin * sfreq - 1e-6), math.floor(bmax * sfreq + 1e-6)
        idx = t0[:, None] + np.arange(lo, max(hi, lo) + 1)[None, :]
        valid = (idx >= 0) & (idx < data.shape[0])
        if not valid.all() and out_of_bounds == "error":
            bad = which[~valid.all(axis=1)][:3]
            raise OutOfBoundsError(
                f"the baseline {baseline} of segments {bad.tolist()} runs past "
                f"{events_label(segments.events, row)}; pass out_of_bounds='drop' or 'pad'"
            )
        gathered = np.asarray(data[np.clip(idx, 0, data.shape[0] - 1)], dtype=np.float64)
        if cols is not None:
            gathered = gathered[..., cols]
        gathered *= valid[..., None]
        means[which] = gathered.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)[:, None]
    if means is None:
        return np.zeros((len(segments), 0))
    return means

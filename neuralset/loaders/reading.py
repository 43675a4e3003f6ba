"""Read-time helpers of :class:`~neuralset.loaders.dataset.SegmentDataset`.

* :func:`read_padded` - a dynamic extractor's output for segments of different durations,
  padded to the longest one of the batch, with a mask of the real samples.
* :func:`sample_times` - the time of each output sample (``batch.times[name]``).
* :func:`augment_rng` / :func:`apply_augment` - per-extractor augmentation at read time,
  seeded by (seed, epoch, extractor, segments), never part of a cache key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ..extractors.base import Extractor, OutOfBounds, OutOfBoundsError, Output
from ..segments import Segments
from ..store import Store

__all__ = ["Augment", "read_padded", "sample_times", "time_origin", "augment_rng", "apply_augment"]

#: ``fn(data, rng) -> data``: the batch's array of one extractor and a seeded generator
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def time_origin(segments: Segments) -> float:
    """Common offset (s) of the segments' starts from their triggers' onsets, else 0.

    When every segment has a trigger and starts at the same offset from it (to 1 µs), sample
    times are relative to the trigger onset (``-0.2 ... 0.6``); otherwise to the window start.
    """
    if not len(segments) or (segments.trigger < 0).any():
        return 0.0
    onset = segments.events["start"].to_numpy()[segments.trigger]
    offset = segments.start - onset
    if float(offset.max() - offset.min()) > 1e-6:
        return 0.0
    return float(np.round(offset[0], 9))


def sample_times(n_times: int, frequency: float, origin: float) -> np.ndarray:
    """``origin + k / frequency`` for ``k < n_times`` (float64)."""
    return origin + np.arange(n_times, dtype=np.float64) / float(frequency)


def read_padded(
    extractor: Extractor, segments: Segments, store: Store, out_of_bounds: OutOfBounds
) -> Output:
    """A dynamic output for segments of different durations, padded to the longest one.

    Every segment is read over the batch's longest duration (from its own start); samples past
    its own end are zeroed and marked False in the returned mask, as are samples outside the
    recording. ``out_of_bounds`` applies to a segment's own samples only: ``"error"`` raises
    when they leave the recording, ``"drop"`` leaves such segments out (``keep``).
    """
    name = type(extractor).__name__
    if extractor.frequency is None:
        raise ValueError(
            f"{name}: variable-length segments need a fixed output rate; set frequency"
        )
    freq = float(extractor.frequency)
    n_own = np.round(np.asarray(segments.duration) * freq).astype(np.int64)
    width = int(n_own.max()) if len(n_own) else 0
    # the same segments over the longest duration, sharing the event index (and its memo)
    extended = segments.with_windows(segments.start, np.full(len(segments), width / freq))
    out = extractor.read(extended, store, out_of_bounds="pad")
    data = out.data
    own = np.arange(width)[None, :] < n_own[:, None]
    inside = out.mask if out.mask is not None else np.ones_like(own)
    lost = own & ~inside
    keep = None
    if lost.any():
        bad = np.flatnonzero(lost.any(axis=1))
        if out_of_bounds == "error":
            raise OutOfBoundsError(
                f"segments {bad[:3].tolist()} run past the start or end of their recording; "
                "pass out_of_bounds='drop' or 'pad', or shorten the windows"
            )
        if out_of_bounds == "drop":
            keep = np.asarray(~lost.any(axis=1), dtype=bool)
    mask = own & inside
    shape = (len(mask),) + (1,) * (data.ndim - 2) + (width,)
    data = np.where(mask.reshape(shape), data, np.float32(0)).astype(data.dtype, copy=False)
    if keep is not None:
        return Output(data=data[keep], mask=mask[keep], keep=keep)
    return Output(data=data, mask=mask)


def augment_rng(seed: int, epoch: int, name: str, indices: np.ndarray) -> np.random.Generator:
    """The generator of one extractor's augmentation for one batch.

    Seeded by the dataset's seed, the epoch, the extractor's name and the batch's positions:
    the same batch of the same epoch gets the same draw in any process.
    """
    digest = hashlib.blake2b(
        name.encode() + np.asarray(indices, dtype=np.int64).tobytes(), digest_size=8
    ).digest()
    return np.random.default_rng([int(seed), int(epoch), int.from_bytes(digest, "little")])


def apply_augment(fn: Augment, name: str, data: np.ndarray, rng: np.random.Generator) -> Any:
    """``fn(data, rng)``, checked to keep the shape (the batch layout depends on it)."""
    out = np.asarray(fn(data, rng))
    if out.shape != data.shape:
        raise ValueError(
            f"augment[{name!r}]: must return an array of the input's shape {data.shape}, got "
            f"{out.shape}"
        )
    return out.astype(data.dtype, copy=False)

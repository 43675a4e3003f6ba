"""grain-compatible random-access sources over a :class:`SegmentDataset` (for JAX users).

grain (google/grain) reads records by index from any object with ``__len__`` and
``__getitem__`` (its ``RandomAccessDataSource`` protocol), then shuffles, batches and
prefetches them. Two sources:

* :class:`GrainSource` - one record per segment: ``{"data": {name: array}, "mask": ...,
  "times": ..., "start": ..., ...}`` without the batch axis; grain's ``.batch()`` stacks them.
  This is what grain's own pipelines expect, but it reads one segment at a time.
* :class:`GrainBatchSource` - one record per *batch* of segments (drawn like
  :class:`~neuralset.loaders.sampling.EpochBatchSampler`), read with one batched read per
  extractor: the faster path; use it with grain's ``IndexSampler`` or ``MapDataset.shuffle``
  (which then shuffles whole batches).

Both are picklable (grain's worker processes get copies) and import nothing from grain.
Read-time augmentations of the dataset are seeded by its :attr:`~SegmentDataset.epoch`: call
``dataset.set_epoch(e)`` between epochs for new draws.

Examples
--------
::

    import grain
    batches = grain.MapDataset.source(GrainSource(dataset)).shuffle(seed=0).batch(32)
    for batch in batches:           # dicts of numpy arrays with a leading batch axis
        step(params, batch["data"]["meg"])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .batch import META_FIELDS
from .dataset import SegmentDataset
from .sampling import EpochBatchSampler, check_batching

__all__ = ["GrainSource", "GrainBatchSource"]


def _record(arrays: dict[str, Any], k: int | None) -> dict[str, Any]:
    """The arrays of a dataset read, or row ``k`` of each (times are shared, not indexed)."""

    def pick(a: Any) -> Any:
        return np.asarray(a) if k is None else np.asarray(a)[k]

    return {
        "data": {n: pick(v) for n, v in arrays["data"].items()},
        "mask": {n: pick(v) for n, v in arrays["mask"].items()},
        "times": {n: np.asarray(v) for n, v in arrays["times"].items()},
        **{f: pick(arrays[f]) for f in META_FIELDS},
    }


class GrainSource:
    """One record per segment of ``dataset`` (grain's ``RandomAccessDataSource`` protocol).

    With ``out_of_bounds="drop"`` a dropped segment gives ``None``: grain's iterators skip it
    once the dataset is an ``IterDataset`` (``MapDataset.source(src).to_iter_dataset()
    .batch(n)``), while ``MapDataset.batch`` and ``grain.DataLoader`` fail on it ("Expected all
    input elements to have the same structure").

    Parameters
    ----------
    dataset
        The :class:`~neuralset.loaders.dataset.SegmentDataset` read.
    """

    def __init__(self, dataset: SegmentDataset) -> None:
        if not isinstance(dataset, SegmentDataset):
            raise TypeError(f"GrainSource: expected SegmentDataset, got {type(dataset).__name__}")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        arrays = self.dataset.read([int(index)])
        if not len(arrays["index"]):
            return None
        return _record(arrays, 0)

    def __repr__(self) -> str:  # grain checkpoints record the source's repr
        return f"GrainSource({self.dataset!r})"


class GrainBatchSource:
    """One record per batch of segments: ``len`` is the number of batches of one epoch.

    Record ``k`` is batch ``k`` of the order drawn from ``seed`` (shuffled when ``shuffle``),
    read with one batched read per extractor; records carry the batch axis already.

    Parameters
    ----------
    dataset
        The :class:`~neuralset.loaders.dataset.SegmentDataset` read.
    batch_size
        Segments per record (> 0).
    shuffle
        Draw a new order of the segments from ``seed`` (else they keep their order).
    seed
        Seed of the order.
    drop_last
        Leave out the last, incomplete batch.
    """

    def __init__(
        self,
        dataset: SegmentDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not isinstance(dataset, SegmentDataset):
            raise TypeError(
                f"GrainBatchSource: expected SegmentDataset, got {type(dataset).__name__}"
            )
        check_batching("GrainBatchSource", batch_size, seed)
        self.dataset = dataset
        self.sampler = EpochBatchSampler(
            len(dataset), batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self._batches = self.sampler.batch_indices(0)
        if not self._batches:  # record k would be k % 0
            raise ValueError(
                f"GrainBatchSource: no batch: drop_last=True leaves out the last, smaller batch, "
                f"and batch_size={batch_size} exceeds the {len(dataset)} segments of the "
                "dataset; lower batch_size, or pass drop_last=False"
            )

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return _record(self.dataset.read(self._batches[int(index) % len(self._batches)]), None)

    def __repr__(self) -> str:
        s = self.sampler
        return (
            f"GrainBatchSource({self.dataset!r}, batch_size={s.batch_size}, "
            f"shuffle={s.shuffle}, seed={s.seed}, drop_last={s.drop_last})"
        )

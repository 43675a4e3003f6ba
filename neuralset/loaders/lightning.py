"""A Lightning ``LightningDataModule`` from a :class:`SegmentDataset` and its splits.

:class:`SegmentDataModule` gives Lightning's ``Trainer`` one torch ``DataLoader`` per split
(``train``, ``val``, ``test``, ``predict``), each over a :meth:`SegmentDataset.subset` of the
dataset, with batched reads and typed :class:`~neuralset.loaders.batch.Batch` objects (which
Lightning moves to the device through their ``.to``). The training loader shuffles with an
:class:`~neuralset.loaders.sampling.EpochBatchSampler` (or the ``sampler`` given, e.g. a
:class:`~neuralset.loaders.sampling.LengthBucketSampler`), so epochs and read-time
augmentations are seeded.

Importing this module imports ``lightning`` (``pip install lightning``); ``import neuralset``
does not.

Examples
--------
::

    module = SegmentDataModule(dataset, splits=segments.trigger_values("split"), batch_size=32)
    lightning.Trainer(max_epochs=10).fit(model, datamodule=module)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning
import numpy as np

from .dataset import SegmentDataset
from .sampling import EpochBatchSampler

__all__ = ["SegmentDataModule", "split_positions", "EmptySplitError"]

SPLITS = ("train", "val", "test", "predict")


class EmptySplitError(ValueError):
    """A split named for training or evaluation has no segment; the message says why."""


def split_positions(
    n: int, splits: Mapping[str, Any] | np.ndarray | list[Any]
) -> dict[str, np.ndarray]:
    """Dataset positions per split name, from ``{name: positions or mask}`` or one name per segment.

    Raises
    ------
    EmptySplitError
        A split is empty, or the per-segment names have no ``train``; the message lists the
        split names found.
    """
    if isinstance(splits, Mapping):
        out = {}
        for name, which in splits.items():
            which = np.asarray(which)
            if which.dtype == bool:
                if len(which) != n:
                    raise ValueError(
                        f"split {name!r}: a mask needs one value per segment ({n}), got {len(which)}"
                    )
                which = np.flatnonzero(which)
            out[str(name)] = which.astype(np.int64)
    else:
        values = np.asarray(splits, dtype=object)
        if len(values) != n:
            raise ValueError(f"splits: one split name per segment ({n}), got {len(values)}")
        names = [str(v) for v in values]
        found = sorted({v for v in names if v not in ("", "None", "nan")})
        out = {name: np.flatnonzero(np.asarray(names) == name) for name in found}
        if "train" not in out:
            raise EmptySplitError(
                f"no segment is in the split 'train' (split names found: {found or 'none'}); "
                "sliding windows take no split from a trigger: give them the split of the "
                "events they cover (neuralset.window_labels.window_labels) or pass positions"
            )
    for name, which in out.items():
        if not len(which):
            raise EmptySplitError(
                f"split {name!r} has no segment (of {n}); check the selection that defines it, "
                "or leave the split out"
            )
    return out


class SegmentDataModule(lightning.LightningDataModule):  # type: ignore[misc]
    """Train/val/test/predict loaders over the splits of a dataset.

    Parameters
    ----------
    dataset
        The :class:`SegmentDataset` (prepared or not: :meth:`prepare_data` prepares it).
    splits
        ``{"train": positions or mask, "val": ..., "test": ...}``, or one split name per
        segment (e.g. ``segments.trigger_values("split")``).
    batch_size
        Segments per batch.
    num_workers, pin_memory, persistent_workers
        DataLoader options.
    sampler
        ``fn(durations) -> batch sampler`` for the training split (e.g.
        ``lambda d: LengthBucketSampler(d, 32)``); default: shuffled batches seeded by ``seed``.
    seed
        Seed of the training order.
    """

    def __init__(
        self,
        dataset: SegmentDataset,
        splits: Mapping[str, Any] | np.ndarray | list[Any],
        *,
        batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        sampler: Callable[[np.ndarray], Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(dataset, SegmentDataset):
            raise TypeError(
                f"SegmentDataModule.dataset: expected SegmentDataset, got {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.positions = split_positions(len(dataset), splits)
        unknown = sorted(set(self.positions) - set(SPLITS))
        if unknown:
            raise ValueError(
                f"SegmentDataModule.splits: unknown split names {unknown}; use {', '.join(SPLITS)}"
            )
        self.batch_size = int(batch_size)
        self.loader_kwargs: dict[str, Any] = {
            "num_workers": num_workers,
            "pin_memory": pin_memory,
            "persistent_workers": persistent_workers and num_workers > 0,
        }
        self.sampler = sampler
        self.seed = int(seed)
        self.subsets: dict[str, SegmentDataset] = {}

    def prepare_data(self) -> None:
        """Prepare the dataset's extractors (incremental; run once, in the main process)."""
        self.dataset.prepare(progress=False)

    def setup(self, stage: str | None = None) -> None:
        """Build the per-split datasets (cheap: selections of the segments)."""
        for name, which in self.positions.items():
            if name not in self.subsets:
                self.subsets[name] = self.dataset.subset(which)

    def _loader(self, name: str, train: bool) -> Any:
        self.setup()
        if name not in self.subsets:
            raise EmptySplitError(
                f"no {name!r} split was given (splits: {', '.join(self.positions)})"
            )
        subset = self.subsets[name]
        if train:
            sampler = (
                self.sampler(np.asarray(subset.segments.duration))
                if self.sampler is not None
                else EpochBatchSampler(len(subset), self.batch_size, seed=self.seed)
            )
            return subset.loader(sampler=sampler, **self.loader_kwargs)
        return subset.loader(self.batch_size, shuffle=False, **self.loader_kwargs)

    def train_dataloader(self) -> Any:
        return self._loader("train", train=True)

    def val_dataloader(self) -> Any:
        return self._loader("val", train=False)

    def test_dataloader(self) -> Any:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> Any:
        return self._loader("predict" if "predict" in self.positions else "test", train=False)

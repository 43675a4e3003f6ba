"""Batch samplers: seeded shuffling per epoch, and bucketing of variable-length segments.

Both are plain Python (no torch import) and work as a torch ``DataLoader(batch_sampler=...)``
and with :class:`~neuralset.loaders.jax_iter.JaxBatchIterator` (``sampler=...``). The batches
they yield are :class:`BatchIndices`: lists of dataset positions that also carry their
``epoch``, which travels with them to DataLoader workers, so that read-time augmentation is
seeded by (seed, epoch, segments) in whichever process reads the batch.

:class:`LengthBucketSampler` puts segments of similar durations together (within pools of
``pool_batches`` batches drawn at random), so that padding to the longest segment of a batch
wastes little, while the order of batches stays random.

Examples
--------
>>> sampler = LengthBucketSampler([1.0, 5.0, 1.1, 4.8, 0.9, 5.2], batch_size=2, seed=0)
>>> sorted(sorted(int(i) for i in b) for b in sampler.batch_indices(0))
[[0, 4], [1, 5], [2, 3]]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["BatchIndices", "EpochBatchSampler", "LengthBucketSampler", "epoch_rng", "is_int"]


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator of epoch ``epoch``'s order: ``numpy.random.default_rng([seed, epoch])``.

    Seeded by the pair, not by ``seed + epoch``, with which the run of seed 1 replayed the
    epochs of the run of seed 0 shifted by one (epoch e of seed 1 was epoch e + 1 of seed 0).
    """
    return np.random.default_rng([int(seed), int(epoch)])


def check_batching(owner: str, batch_size: Any, seed: Any) -> None:
    """``batch_size`` is an int >= 1 and ``seed`` an int (numpy's too, never a bool or a float,
    which ``int()`` would truncate); the error names ``owner.field``."""
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"{owner}.batch_size: must be an int >= 1, got {batch_size!r}")
    if not is_int(seed) or seed < 0:
        raise TypeError(
            f"{owner}.seed: expected an int >= 0 (the order of epoch e is drawn from "
            f"numpy.random.default_rng([seed, e])), got {seed!r}"
        )


def is_int(value: Any) -> bool:
    """An integer (numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class BatchIndices(list):  # type: ignore[type-arg]
    """A list of dataset positions that knows the epoch it was drawn for."""

    epoch: int

    def __init__(self, values: Sequence[int], epoch: int) -> None:
        super().__init__(int(v) for v in values)
        self.epoch = int(epoch)

    def __reduce__(self) -> tuple[type, tuple[list[int], int]]:
        return (BatchIndices, (list(self), self.epoch))


class EpochBatchSampler:
    """Batches of positions ``0..n-1``, shuffled from ``(seed, epoch)``.

    Each ``iter()`` runs the next epoch (``0, 1, ...``); :meth:`set_epoch` chooses one.

    Parameters
    ----------
    n
        Number of segments.
    batch_size
        Segments per batch.
    shuffle
        A new permutation each epoch (from :func:`epoch_rng`: ``default_rng([seed, epoch])``).
    seed
        Base seed.
    drop_last
        Leave out the last, smaller batch.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        check_batching(type(self).__name__, batch_size, seed)
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next ``iter()`` runs."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        """The positions in the order of ``epoch``."""
        if not self.shuffle:
            return np.arange(self.n)
        return epoch_rng(self.seed, epoch).permutation(self.n)

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The positions of each batch of ``epoch``."""
        order = self.order(epoch)
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        return [order[i : i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def __iter__(self) -> Iterator[BatchIndices]:
        epoch = self.epoch
        self.epoch += 1
        for batch in self.batch_indices(epoch):
            yield BatchIndices(batch.tolist(), epoch)


class LengthBucketSampler(EpochBatchSampler):
    """Batches of segments of similar durations, in random order.

    Each epoch, the segments are shuffled, cut into pools of ``pool_batches`` batches, sorted
    by duration within each pool and cut into batches; the batches are then shuffled. With
    ``pool_batches`` 1 this is plain shuffling; with a pool as large as the dataset, batches
    are contiguous in duration.

    Parameters
    ----------
    durations
        Duration of each segment (``segments.duration``).
    batch_size, seed, drop_last
        As :class:`EpochBatchSampler`.
    pool_batches
        Batches per sorting pool.
    """

    def __init__(
        self,
        durations: Sequence[float] | np.ndarray,
        batch_size: int,
        *,
        seed: int = 0,
        drop_last: bool = False,
        pool_batches: int = 50,
    ) -> None:
        durations = np.asarray(durations, dtype=np.float64)
        super().__init__(len(durations), batch_size, shuffle=True, seed=seed, drop_last=drop_last)
        if not is_int(pool_batches) or pool_batches < 1:
            raise ValueError(
                f"LengthBucketSampler.pool_batches: must be an int >= 1, got {pool_batches!r}"
            )
        self.durations = durations
        self.pool_batches = int(pool_batches)

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        rng = epoch_rng(self.seed, epoch)
        order = rng.permutation(self.n)
        pool = self.batch_size * self.pool_batches
        batches = []
        for a in range(0, self.n, pool):
            chunk = order[a : a + pool]
            chunk = chunk[np.argsort(self.durations[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        perm = rng.permutation(len(batches))
        return [batches[i] for i in perm]

    def __len__(self) -> int:
        if not self.drop_last:
            return sum(
                math.ceil(min(self.batch_size * self.pool_batches, self.n - a) / self.batch_size)
                for a in range(0, self.n, self.batch_size * self.pool_batches)
            )
        return sum(
            min(self.batch_size * self.pool_batches, self.n - a) // self.batch_size
            for a in range(0, self.n, self.batch_size * self.pool_batches)
        )

    def padding_fraction(self, epoch: int = 0) -> float:
        """Fraction of padded samples when each batch is padded to its longest segment."""
        total = padded = 0.0
        for b in self.batch_indices(epoch):
            d = self.durations[b]
            total += d.max() * len(d)
            padded += d.max() * len(d) - d.sum()
        return padded / total if total else 0.0

"""Loaders: a torch map-style dataset with batched reads, typed batches and a JAX iterator.

Importing this package imports neither torch nor jax; they are imported when a batch is built.
The Lightning data module (:mod:`neuralset.loaders.lightning`) imports ``lightning`` and is not
imported here.
"""

from .batch import Batch, BatchTypeError, set_typecheck, typecheck_enabled
from .dataset import DatasetNotReadyError, SegmentDataset, collate_fn
from .grain_source import GrainBatchSource, GrainSource
from .jax_iter import JaxBatchIterator
from .sampling import BatchIndices, EpochBatchSampler, LengthBucketSampler

__all__ = [
    "Batch",
    "BatchIndices",
    "BatchTypeError",
    "EpochBatchSampler",
    "GrainBatchSource",
    "GrainSource",
    "LengthBucketSampler",
    "DatasetNotReadyError",
    "JaxBatchIterator",
    "SegmentDataset",
    "collate_fn",
    "set_typecheck",
    "typecheck_enabled",
]

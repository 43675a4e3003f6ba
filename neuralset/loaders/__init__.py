"""Loaders: a torch map-style dataset with batched reads, typed batches and a JAX iterator.

Importing this package imports neither torch nor jax; they are imported when a batch is built.
"""

from .batch import Batch, BatchTypeError, set_typecheck, typecheck_enabled
from .dataset import DatasetNotReadyError, SegmentDataset, collate_fn
from .jax_iter import JaxBatchIterator

__all__ = [
    "Batch",
    "BatchTypeError",
    "DatasetNotReadyError",
    "JaxBatchIterator",
    "SegmentDataset",
    "collate_fn",
    "set_typecheck",
    "typecheck_enabled",
]

"""What the ``prepare`` driver needs of an extractor, declared as protocols.

:mod:`neuralset.execution` sits below :mod:`neuralset.extractors` and never imports it: the
driver (:func:`~neuralset.execution.prepare.run_prepare`), the workers
(:func:`~neuralset.execution.records.work_chunk`) and the executors type the extractor they
run with :class:`Preparable`, which every :class:`~neuralset.extractors.base.Extractor`
satisfies (mypy checks it where ``Extractor.prepare`` calls ``run_prepare``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from ..store import Store

__all__ = ["WorkItem", "WorkResult", "Preparable", "PER_ITEM_MARK", "computes_per_item"]


#: Marker set on a ``compute_many`` that computes its items one by one (the default
#: :meth:`Extractor.compute_many <neuralset.extractors.base.Extractor.compute_many>`).
PER_ITEM_MARK = "__neuralset_per_item__"


def computes_per_item(extractor: Any) -> bool:
    """Whether ``extractor.compute_many`` is the one-by-one default (not overridden).

    The workers then compute such an extractor's items one at a time and store each while
    the next is computed, instead of computing the whole batch first.
    """
    return bool(getattr(getattr(type(extractor), "compute_many", None), PER_ITEM_MARK, False))


class WorkItem(Protocol):
    """A unit of preparation (:class:`~neuralset.extractors.base.Item`): stored under ``key``."""

    @property
    def key(self) -> str:
        """Store key of the item."""
        ...

    @property
    def label(self) -> str:
        """Human-readable name (progress, errors)."""
        ...


class WorkResult(Protocol):
    """What computing an item gives (:class:`~neuralset.extractors.base.Computed`)."""

    @property
    def arrays(self) -> Mapping[str, np.ndarray]:
        """Arrays stored as files (memory-mapped on read); empty for a small value."""
        ...

    @property
    def value(self) -> Any:
        """A small value stored in the index (or None)."""
        ...

    @property
    def meta(self) -> Mapping[str, Any]:
        """Metadata stored with the entry."""
        ...


ItemT = TypeVar("ItemT", bound=WorkItem)


class Preparable(Protocol[ItemT]):
    """An extractor as the ``prepare`` driver sees it.

    The driver lists the :meth:`items`, computes the missing ones ``batch_size`` at a time with
    :meth:`compute_many` through an executor (asking it for a GPU when :attr:`requires_gpu`),
    commits them and calls :meth:`fit`.
    """

    @property
    def batch_size(self) -> int:
        """Items per :meth:`compute_many` call."""
        ...

    @property
    def requires_gpu(self) -> bool:
        """Whether jobs need a GPU."""
        ...

    @property
    def prepare_key(self) -> str:
        """Key of what is prepared (names the extractor in a worker's per-run memo)."""
        ...

    def items(self, events: pd.DataFrame) -> Sequence[ItemT]:
        """The items needed for ``events`` (cheap: no signal read)."""
        ...

    def compute_many(self, items: Sequence[ItemT]) -> Sequence[WorkResult]:
        """One result per item, in order."""
        ...

    def to_storage(self, computed: Any, label: str = "") -> WorkResult:
        """``computed`` as stored (the extractor's storage precision), before it is staged."""
        ...

    def fit(self, events: pd.DataFrame, store: Store) -> None:
        """Runs once every item is stored."""
        ...

"""A map-style dataset over segments that reads whole batches at once.

:class:`SegmentDataset` is what a torch ``DataLoader`` iterates: ``__getitems__(indices)`` (used
by the DataLoader whenever it batches) reads the whole batch with one
``extractor.read(segments.select(indices), store)`` per extractor, and :meth:`SegmentDataset.collate`
turns the result into a typed :class:`~neuralset.loaders.batch.Batch`. The dataset itself is a
plain class (no torch import at ``import neuralset`` time); torch's DataLoader accepts any object
with ``__len__`` and ``__getitem__``. The JAX iterator uses the numpy path (:meth:`read`) and
never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

import numpy as np

from ..extractors.base import Extractor, OutOfBounds
from ..segments import Segments
from ..store import Store
from .batch import META_FIELDS, Batch, default_layout

__all__ = ["SegmentDataset", "DatasetNotReadyError", "collate_fn"]


class DatasetNotReadyError(RuntimeError):
    """Segments lack required events, or extractors are not prepared; the message says what to do."""


class SegmentDataset:
    """Segments + extractors + store, indexable like a torch map-style dataset.

    Parameters
    ----------
    segments
        The windows to read (see :mod:`neuralset.segments`).
    extractors
        ``{name: extractor}``; each name becomes a field of the batches (``batch["meg"]``).
    store
        Where the extractors' prepared data lives (default: :class:`~neuralset.store.Store` at
        its default root).
    out_of_bounds
        Windows running past a recording: ``"error"`` (raise), ``"drop"`` (leave those segments
        out of the batch, which can then be smaller) or ``"pad"`` (zero-fill and add a mask per
        extractor, ``batch.mask[name]``).
    check_shapes
        Check the shapes and dtypes of every batch (see :func:`~neuralset.loaders.batch.set_typecheck`).

    Examples
    --------
    ::

        dataset = SegmentDataset(segments, {"meg": MegExtractor(frequency=100.0)}, store)
        dataset.prepare()
        for batch in dataset.loader(batch_size=32, shuffle=True, num_workers=2):
            batch["meg"]  # Float[Tensor, "batch channels time"]
    """

    def __init__(
        self,
        segments: Segments,
        extractors: Mapping[str, Extractor],
        store: Store | None = None,
        *,
        out_of_bounds: OutOfBounds = "error",
        check_shapes: bool = True,
    ) -> None:
        if not isinstance(segments, Segments):
            raise TypeError(
                f"SegmentDataset.segments: expected Segments, got {type(segments).__name__}; "
                "build them with neuralset.segment_on_triggers or a Segmenter"
            )
        if not isinstance(extractors, Mapping) or not extractors:
            raise TypeError(
                "SegmentDataset.extractors: expected a non-empty dict {name: extractor}, "
                f"got {extractors!r}"
            )
        for name, ext in extractors.items():
            if not isinstance(name, str) or not name.isidentifier() or name in META_FIELDS:
                raise ValueError(
                    f"SegmentDataset.extractors: name {name!r} must be a Python identifier other "
                    f"than {', '.join(META_FIELDS)}"
                )
            if not isinstance(ext, Extractor):
                raise TypeError(
                    f"SegmentDataset.extractors[{name!r}]: expected an Extractor, got {type(ext).__name__}"
                )
        allowed = get_args(OutOfBounds)
        if out_of_bounds not in allowed:
            raise ValueError(
                f"SegmentDataset.out_of_bounds: expected one of {', '.join(map(repr, allowed))}, "
                f"got {out_of_bounds!r}"
            )
        self.segments = segments
        self.extractors = dict(extractors)
        self.store = store if store is not None else Store()
        self.out_of_bounds: OutOfBounds = out_of_bounds
        self.check_shapes = bool(check_shapes)
        self.layout = {
            name: getattr(ext, "batch_layout", None) or default_layout(name, ext.output, _kind(ext))
            for name, ext in self.extractors.items()
        }
        self._checked = False
        segments.index  # noqa: B018 - build the event index once; selections share it

    def __repr__(self) -> str:
        names = ", ".join(f"{k}={type(v).__name__}" for k, v in self.extractors.items())
        return f"SegmentDataset(n={len(self)}, {names}, out_of_bounds={self.out_of_bounds!r})"

    def __len__(self) -> int:
        return len(self.segments)

    # -- preparation -------------------------------------------------------------------------
    def prepare(
        self, executor: Any = None, *, progress: bool = True, retry: bool | None = None
    ) -> dict[str, Any]:
        """Prepare every extractor on the segments' events (incremental).

        ``retry`` recomputes items that failed before (see :meth:`Extractor.prepare`).

        Returns
        -------
        dict
            ``{name: PrepareReport}``.
        """
        reports = {}
        for name, ext in self.extractors.items():
            reports[name] = ext.prepare(
                self.segments.events, self.store, executor=executor, progress=progress, retry=retry
            )
        self._checked = False
        return reports

    def check(self) -> None:
        """Check that every segment has the events each extractor reads and that all are prepared.

        Runs once before the first batch (and again after :meth:`prepare`).

        Raises
        ------
        DatasetNotReadyError
            Naming the extractor, what is missing and what to call.
        """
        events = self.segments.events
        for name, ext in self.extractors.items():
            etype = ext.resolved_event_type
            check_segments = getattr(ext, "check_segments", None)
            if check_segments is not None:  # the extractor says what its segments need
                check_segments(self.segments)
            elif self.out_of_bounds != "drop" and len(self.segments):
                lacking = ~self.segments.has_type(etype)
                if lacking.any():
                    first = np.flatnonzero(lacking)[:3].tolist()
                    raise DatasetNotReadyError(
                        f"extractor {name!r} reads {etype} events, but {int(lacking.sum())} of "
                        f"{len(self.segments)} segments have none (e.g. segments {first}); keep only "
                        f"those with segments.require({etype!r}) or pass out_of_bounds='drop'"
                    )
            missing = ext.is_prepared(events, self.store)
            if missing:
                shown = ", ".join(missing[:3]) + (
                    f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
                )
                raise DatasetNotReadyError(
                    f"extractor {name!r} ({type(ext).__name__}) is not prepared in {self.store}: "
                    f"{len(missing)} items missing: {shown}; call dataset.prepare() first"
                )
        self._checked = True

    # -- reading -----------------------------------------------------------------------------
    def read(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """The numpy arrays of the segments at ``indices`` (one read per extractor).

        Returns
        -------
        dict
            ``{"data": {name: array}, "mask": {name: array}, "start": ..., "duration": ...,
            "timeline": ..., "trigger": ..., "index": ...}``; with ``out_of_bounds="drop"`` the
            segments dropped by any extractor are left out of every array.
        """
        if not self._checked:
            self.check()
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self.segments)
        if len(idx) and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"segment index out of range for a dataset of {n} segments")
        idx = np.where(idx < 0, idx + n, idx)
        sub = self.segments.select(idx)
        data: dict[str, np.ndarray] = {}
        mask: dict[str, np.ndarray] = {}
        keeps: dict[str, np.ndarray] = {}
        for name, ext in self.extractors.items():
            out = ext.read(sub, self.store, out_of_bounds=self.out_of_bounds)
            data[name] = out.data
            if out.mask is not None:
                mask[name] = out.mask
            if out.keep is not None:
                keeps[name] = out.keep
        if self.out_of_bounds == "drop" and keeps:
            keep = np.ones(len(idx), dtype=bool)
            for k in keeps.values():
                keep &= k
            for name in data:
                if name in keeps:
                    data[name] = data[name][keep[keeps[name]]]
                elif not keep.all():
                    data[name] = data[name][keep]
            idx = idx[keep]
            sub = sub.select(keep) if not keep.all() else sub
        return {
            "data": data,
            "mask": mask,
            "start": np.array(sub.start, dtype=np.float64),
            "duration": np.array(sub.duration, dtype=np.float64),
            "timeline": np.array(sub.timeline),
            "trigger": np.array(sub.trigger, dtype=np.int64),
            "index": idx,
        }

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        """The batch of the segments at ``indices`` (what a torch DataLoader calls)."""
        return Batch.from_numpy(self.read(indices), layout=self.layout, check=self.check_shapes)

    def __getitem__(self, i: int) -> Batch:
        """A batch holding the single segment ``i`` (batch axis of size 1)."""
        if isinstance(i, slice):
            return self.__getitems__(np.arange(len(self))[i].tolist())
        return self.__getitems__([int(i)])

    @staticmethod
    def collate(items: Batch | Sequence[Batch]) -> Batch:
        """``collate_fn`` for torch's DataLoader: a Batch passes through, a list is concatenated."""
        if isinstance(items, Batch):
            return items
        items = list(items)
        if items and all(isinstance(b, Batch) for b in items):
            return items[0] if len(items) == 1 else Batch.concat(items)
        raise TypeError(
            f"SegmentDataset.collate expects Batch objects, got {type(items[0]).__name__ if items else 'nothing'}"
        )

    def loader(self, batch_size: int = 32, *, shuffle: bool = False, **kwargs: Any) -> Any:
        """A ``torch.utils.data.DataLoader`` over this dataset with :meth:`collate` set.

        Checks the segments and the store first (in this process, before any worker starts).
        Extra keyword arguments go to the DataLoader (``num_workers``, ``pin_memory``...).
        """
        from torch.utils.data import DataLoader

        if not self._checked:
            self.check()
        kwargs.setdefault("collate_fn", self.collate)
        return DataLoader(self, batch_size=batch_size, shuffle=shuffle, **kwargs)  # type: ignore[arg-type]


def _kind(extractor: Extractor) -> str:
    """jaxtyping dtype class of an extractor's output: ``Int`` for integer labels, else ``Float``."""
    dtype = getattr(extractor, "label_dtype", None)
    if dtype is not None and np.issubdtype(np.dtype(dtype), np.integer):
        return "Int"
    return "Float"


#: Module-level alias of :meth:`SegmentDataset.collate` (``DataLoader(..., collate_fn=collate_fn)``).
collate_fn = SegmentDataset.collate

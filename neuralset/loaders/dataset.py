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
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from ..extractors.base import Extractor, OutOfBounds
from ..segments import Segments
from ..store import Store
from .batch import META_FIELDS, Batch
from .reading import Augment, apply_augment, augment_rng, read_padded, sample_times, time_origin
from .transport import BatchGroup, WireBatch

if TYPE_CHECKING:
    from ..execution import Executor, PrepareReport

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
    variable_length
        Segments of different durations (one per sentence, one per trial): ``"error"``
        (default: dynamic outputs need equal durations) or ``"pad"`` (each batch is padded to
        its longest segment, with ``batch.mask[name]`` True on the real samples; see
        :class:`~neuralset.loaders.sampling.LengthBucketSampler` to batch similar lengths).
    augment
        ``{extractor name: fn(data, rng) -> data}`` applied to each batch at read time, after
        the store read; ``rng`` is seeded by (``seed``, epoch, extractor, segments), so a run is
        reproducible. Augmentation is not part of any cache key: the store is shared with
        un-augmented reads.
    seed
        Seed of the augmentations (and of :meth:`loader`'s shuffling when augmenting).

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
        variable_length: Literal["error", "pad"] = "error",
        augment: Mapping[str, Augment] | None = None,
        seed: int = 0,
    ) -> None:
        _check_arguments(segments, extractors, out_of_bounds, variable_length)
        augment = _checked_augment(augment, extractors)
        _check_durations(segments, extractors, variable_length)
        self.segments = segments
        self.extractors = dict(extractors)
        self.variable_length = variable_length
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.time_origin = time_origin(segments)
        self.store = store if store is not None else Store()
        self.out_of_bounds: OutOfBounds = out_of_bounds
        self.check_shapes = bool(check_shapes)
        self.layout = {name: ext.batch_layout(name) for name, ext in self.extractors.items()}
        self._checked = False
        segments.index  # noqa: B018 - build the event index once; selections share it

    def __repr__(self) -> str:
        names = ", ".join(f"{k}={type(v).__name__}" for k, v in self.extractors.items())
        return f"SegmentDataset(n={len(self)}, {names}, out_of_bounds={self.out_of_bounds!r})"

    def __len__(self) -> int:
        return len(self.segments)

    def set_epoch(self, epoch: int) -> None:
        """The epoch used to seed augmentations when a batch does not carry its own."""
        self.epoch = int(epoch)

    def subset(self, indices: Sequence[int] | np.ndarray) -> SegmentDataset:
        """The same dataset over some of its segments (positions or a boolean mask)."""
        out = SegmentDataset(
            self.segments.select(np.asarray(indices)),
            self.extractors,
            self.store,
            out_of_bounds=self.out_of_bounds,
            check_shapes=self.check_shapes,
            variable_length=self.variable_length,
            augment=self.augment,
            seed=self.seed,
        )
        out.epoch = self.epoch
        return out

    # -- preparation -------------------------------------------------------------------------
    def prepare(
        self,
        executor: Executor | None = None,
        *,
        progress: bool = True,
        retry: bool | None = None,
    ) -> dict[str, PrepareReport]:
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
            ext.check_segments(self.segments)  # what the extractor itself needs of them
            if (
                ext.needs_event_in_every_segment
                and self.out_of_bounds != "drop"
                and len(self.segments)
            ):
                lacking = ~self.segments.has_type(etype)
                if lacking.any():
                    first = np.flatnonzero(lacking)[:3].tolist()
                    raise DatasetNotReadyError(
                        f"extractor {name!r} reads {etype} events, but {int(lacking.sum())} of "
                        f"{len(self.segments)} segments have none (e.g. segments {first}); keep only "
                        f"those with segments.require({etype!r}) or pass out_of_bounds='drop'"
                    )
            keys = ext.store_keys_of(self.segments)  # the reads' own keys, kept for them
            prepared = keys is not None and not self.store.missing(keys)
            missing = [] if prepared else ext.is_prepared(events, self.store)
            if missing:
                shown = ", ".join(missing[:3]) + (
                    f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
                )
                why = self.store.write_denied()
                todo = (
                    f"this store is read-only ({why}): prepare into a writable store, or ask "
                    "whoever maintains it"
                    if why is not None
                    else "call dataset.prepare() first"
                )
                raise DatasetNotReadyError(
                    f"extractor {name!r} ({type(ext).__name__}) is not prepared in {self.store}: "
                    f"{len(missing)} items missing: {shown}; {todo}"
                )
        self._checked = True

    # -- reading -----------------------------------------------------------------------------
    def read(
        self,
        indices: Sequence[int] | np.ndarray,
        *,
        epoch: int | None = None,
        augment: bool = True,
    ) -> dict[str, Any]:
        """The numpy arrays of the segments at ``indices`` (one read per extractor).

        ``epoch`` seeds the augmentations (default: the ``epoch`` the indices carry, see
        :class:`~neuralset.loaders.sampling.BatchIndices`, else :attr:`epoch`);
        ``augment=False`` reads the data as stored (for evaluation and pictures).

        Returns
        -------
        dict
            ``{"data": {name: array}, "mask": {name: array}, "times": {name: array},
            "start": ..., "duration": ..., "timeline": ..., "trigger": ..., "index": ...}``;
            with ``out_of_bounds="drop"`` the segments dropped by any extractor are left out of
            every array.
        """
        if epoch is None:
            epoch = getattr(indices, "epoch", self.epoch)
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
            if self.variable_length == "pad" and ext.output == "dynamic":
                out = read_padded(ext, sub, self.store, self.out_of_bounds)
            else:
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
            for name in mask:
                if name in keeps:
                    mask[name] = mask[name][keep[keeps[name]]]
                elif not keep.all():
                    mask[name] = mask[name][keep]
            idx = idx[keep]
            sub = sub.select(keep) if not keep.all() else sub
        for name, fn in self.augment.items() if augment else ():
            rng = augment_rng(self.seed, int(epoch), name, idx)
            data[name] = apply_augment(fn, name, data[name], rng)
        return {
            "data": data,
            "mask": mask,
            "times": self._times(data, sub),
            "start": np.array(sub.start, dtype=np.float64),
            "duration": np.array(sub.duration, dtype=np.float64),
            "timeline": np.array(sub.timeline),
            "trigger": np.array(sub.trigger, dtype=np.int64),
            "index": idx,
        }

    def _times(self, data: dict[str, np.ndarray], sub: Segments) -> dict[str, np.ndarray]:
        times = {}
        for name, ext in self.extractors.items():
            if ext.output != "dynamic" or data[name].ndim < 2:
                continue
            n_times = data[name].shape[-1]
            freq = ext.frequency
            if freq is None:  # the natural rate of the stored series
                dur = float(sub.duration.max()) if len(sub) else 0.0
                if not dur:
                    continue
                freq = n_times / dur
            times[name] = sample_times(n_times, float(freq), self.time_origin)
        return times

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        """The batch of the segments at ``indices`` (what a torch DataLoader calls)."""
        return Batch.from_numpy(self.read(indices), layout=self.layout, check=self.check_shapes)

    def __getitem__(self, i: int) -> Batch:
        """A batch holding the single segment ``i`` (batch axis of size 1)."""
        if isinstance(i, slice):
            return self.__getitems__(np.arange(len(self))[i].tolist())
        return self.__getitems__([int(i)])

    @staticmethod
    def collate(items: Batch | Sequence[Batch]) -> Any:
        """``collate_fn`` for torch's DataLoader: a Batch passes through, a list is concatenated.

            (A worker's :class:`~neuralset.loaders.transport.WireBatch` passes through too: it
            becomes a Batch when the main process receives it.)

        Parameters
        ----------
        items
            One batch, or a list of batches with the same fields.
        """
        if isinstance(items, Batch | WireBatch | BatchGroup):
            return items
        items = list(items)
        if items and all(isinstance(b, Batch) for b in items):
            return items[0] if len(items) == 1 else Batch.concat(items)
        raise TypeError(
            f"SegmentDataset.collate expects Batch objects, got {type(items[0]).__name__ if items else 'nothing'}"
        )

    def loader(
        self,
        batch_size: int = 32,
        *,
        shuffle: bool = False,
        sampler: Any = None,
        drop_last: bool = False,
        num_workers: int = 0,
        device: Any = None,
        prefetch: int = 2,
        **kwargs: Any,
    ) -> Any:
        """A ``torch.utils.data.DataLoader`` over this dataset, or batches on ``device``.

        Checks the segments and the store first (in this process, before any worker starts).
        ``sampler`` is a batch sampler (e.g. :class:`~neuralset.loaders.sampling.LengthBucketSampler`);
        without one, ``shuffle=True`` draws the order as any torch DataLoader does, from
        torch's random generator (``torch.manual_seed``, or ``generator=``), so that runs seeded
        differently see different orders. ``sampler=EpochBatchSampler(len(dataset), batch_size,
        seed=dataset.seed)`` gives instead the order
        :class:`~neuralset.loaders.jax_iter.JaxBatchIterator` gives for the same seed. An
        augmented dataset without a sampler uses that ``EpochBatchSampler``, so that each batch
        carries its epoch to the workers.

        With ``out_of_bounds="drop"``, a batch whose segments were all dropped is skipped (no
        batch of 0 segments is yielded, as with the JAX iterator); ``len()`` still counts the
        sampler's batches.

        With ``num_workers > 0`` the workers are persistent, forked (on Linux) after
        :meth:`warm_up`, and send their batches through shared memory (see
        :mod:`neuralset.loaders.torch_loader`). Extra keyword arguments go to the DataLoader
        (``pin_memory``, ``persistent_workers=False``, ``multiprocessing_context``...).

        ``device`` (``"cuda"``, ``"cuda:1"``, ``"cpu"``, a ``torch.device``) returns a
        :class:`~neuralset.loaders.device.DeviceLoader` instead: an iterable of batches
        already on the device, copied from pinned memory by a background thread ``prefetch``
        batches ahead of the training step (``pin_memory`` defaults to True for CUDA).
        """
        from .sampling import EpochBatchSampler
        from .torch_loader import build_loader, check_loader_arguments

        batch_size, num_workers = check_loader_arguments(
            batch_size,
            num_workers,
            sampler,
            shuffle,
            drop_last,
            kwargs,
            augmented=bool(self.augment),
        )
        if not self._checked:
            self.check()
        if drop_last and sampler is None and batch_size > len(self):
            raise ValueError(
                f"SegmentDataset.loader: no batch: drop_last=True leaves out the last, smaller "
                f"batch, and batch_size={batch_size} exceeds the {len(self)} segments; lower "
                "batch_size, or pass drop_last=False"
            )
        if sampler is None and self.augment:
            sampler = EpochBatchSampler(
                len(self), batch_size, shuffle=shuffle, seed=self.seed, drop_last=drop_last
            )
        if device is not None:
            from .device import DeviceLoader, device_options

            kwargs = device_options(device, kwargs)
        loader = build_loader(
            self,
            batch_size,
            shuffle=shuffle,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=num_workers,
            kwargs=kwargs,
        )
        if device is None:
            return loader
        return DeviceLoader(loader, device, prefetch=prefetch)

    def warm_up(self) -> None:
        """Compute what the first reads need (store keys) and open the stored files.

        Called by :meth:`loader` before workers start, so that forked workers inherit it, and
        by each worker; cheap when already done.
        """
        if not self._checked:
            self.check()
        for ext in self.extractors.values():
            ext.warm_up(self.segments, self.store)


def _check_arguments(
    segments: Any, extractors: Any, out_of_bounds: Any, variable_length: Any
) -> None:
    """The arguments of :class:`SegmentDataset`, each named in the error with the fix."""
    if not isinstance(segments, Segments):
        raise TypeError(
            f"SegmentDataset.segments: expected Segments, got {type(segments).__name__}; "
            "build them with neuralset.segment_on_triggers or a Segmenter"
        )
    if not len(segments):
        raise ValueError(
            "SegmentDataset.segments: no segment, so no batch; check the selection that built "
            "them (segments.split(name) and segment_on_triggers(...) say what they found)"
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
    if variable_length not in ("error", "pad"):
        raise ValueError(
            f"SegmentDataset.variable_length: expected 'error' or 'pad', got {variable_length!r}"
        )


def _checked_augment(
    augment: Mapping[str, Augment] | None, extractors: Mapping[str, Extractor]
) -> dict[str, Augment]:
    """``augment`` as a dict, each key an extractor name and each value a function."""
    out = dict(augment or {})
    for name, fn in out.items():
        if name not in extractors:
            raise ValueError(
                f"SegmentDataset.augment: {name!r} is not an extractor name "
                f"({', '.join(extractors)})"
            )
        if not callable(fn):
            raise TypeError(f"SegmentDataset.augment[{name!r}]: expected fn(data, rng) -> data")
    return out


def _check_durations(
    segments: Segments, extractors: Mapping[str, Extractor], variable_length: str
) -> None:
    """Segments of different durations need ``variable_length="pad"`` for dynamic outputs."""
    dur = np.asarray(segments.duration)
    varying = len(dur) > 1 and float(dur.max() - dur.min()) > 1e-9
    dynamic = [n for n, e in extractors.items() if e.output == "dynamic"]
    if varying and dynamic and variable_length == "error":
        raise ValueError(
            f"SegmentDataset: the segments have different durations ({dur.min():g} to "
            f"{dur.max():g} s) and {', '.join(map(repr, dynamic))} are dynamic; pass "
            "variable_length='pad' to pad each batch to its longest segment (with a mask)"
        )


#: Module-level alias of :meth:`SegmentDataset.collate` (``DataLoader(..., collate_fn=collate_fn)``).
collate_fn = SegmentDataset.collate

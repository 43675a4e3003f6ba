"""The torch DataLoader of :meth:`SegmentDataset.loader <neuralset.loaders.SegmentDataset.loader>`.

What it sets up, so that workers help or stay out of the way:

* workers that last (``persistent_workers=True`` by default): an epoch does not start new
  processes;
* workers forked (on Linux) from a warmed-up process: :meth:`SegmentDataset.warm_up` computes
  the store keys and opens the memory maps before the fork, so every worker starts with them
  (``worker_init_fn`` warms up the workers that did not inherit them); the shape checks are
  set up there too (jaxtyping's import and first check, tens of ms per process);
* a head start: while the workers start (first epoch), the main process reads the first groups
  itself (about :data:`HEAD_START_S` of reading), in the same order;
* few, small messages: a worker reads a *group* of consecutive batches per task (enough to
  fill about :data:`GROUP_BYTES`), builds them inside a shared slot
  (:mod:`neuralset.loaders.transport`) and sends one message of a few kB for the group. The
  main process copies nothing and pays the queue round trip once per group, and
  :class:`SegmentLoader` hands the batches out one by one. The shape checks run in the
  worker, on the numpy arrays;
* no bookkeeping without workers: with ``num_workers=0`` :class:`SegmentLoader` reads each
  batch in its own loop (what torch's single-process iterator does, at a fifth less cost per
  batch of 32).

``device=`` returns a :class:`~neuralset.loaders.device.DeviceLoader` around the DataLoader:
batches arrive on the accelerator, copied from pinned memory while the previous step computes.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import numbers
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..extractors.buffers import allocating
from .batch import META_FIELDS, Batch, run_check, typecheck_enabled
from .sampling import is_int
from .transport import (
    BatchGroup,
    SharedSlots,
    SlotWriter,
    WireBatch,
    slot_bytes_for,
    wire_batch,
)

if TYPE_CHECKING:
    from .dataset import SegmentDataset

__all__ = [
    "LoaderDataset",
    "IndexGroup",
    "GroupSampler",
    "loader_options",
    "check_loader_arguments",
    "build_loader",
    "group_size",
    "GROUP_BYTES",
]

#: Bytes of batches a worker reads per task (one queue round trip), at most 32 batches.
GROUP_BYTES = 16 * 2**20
_MAX_GROUP = 32
#: Seconds of reading the main process does itself while its workers start (first epoch).
HEAD_START_S = 0.05


class IndexGroup(list):  # type: ignore[type-arg]
    """The index lists of the consecutive batches a worker reads in one task."""


def group_size(batch_bytes: int) -> int:
    """Batches per worker task for batches of ``batch_bytes`` (1 for large batches)."""
    return max(1, min(_MAX_GROUP, GROUP_BYTES // max(int(batch_bytes), 1)))


class GroupSampler:
    """Groups of ``k`` consecutive batches of a batch sampler (one worker task each).

    :meth:`draw` draws the groups of the next epoch ahead; the next iteration yields the
    ones handed back with :meth:`plan` instead of drawing again.
    """

    def __init__(self, inner: Any, k: int) -> None:
        self.inner = inner
        self.k = int(k)
        self._planned: list[IndexGroup] | None = None

    def __len__(self) -> int:
        return math.ceil(len(self.inner) / self.k)

    def draw(self) -> list[IndexGroup]:
        """The groups of the next epoch (drawn from the inner sampler now)."""
        return list(self._groups())

    def plan(self, groups: list[IndexGroup]) -> None:
        """Make the next iteration yield ``groups``."""
        self._planned = list(groups)

    def __iter__(self) -> Iterator[IndexGroup]:
        if self._planned is not None:
            planned, self._planned = self._planned, None
            yield from planned
            return
        yield from self._groups()

    def _groups(self) -> Iterator[IndexGroup]:
        group = IndexGroup()
        for batch in self.inner:
            group.append(batch)
            if len(group) == self.k:
                yield group
                group = IndexGroup()
        if group:
            yield group


class LoaderDataset:
    """What the DataLoader iterates: the dataset, plus the shared slots of each worker.

    In the main process (``num_workers=0``) a batch is built in place; in a worker, a task
    (one batch, or an :class:`IndexGroup`) is read, checked on its numpy arrays and sent as
    :class:`~neuralset.loaders.transport.WireBatch` objects sharing one slot.
    """

    def __init__(self, dataset: SegmentDataset, slots: Sequence[SharedSlots] | None) -> None:
        self.dataset = dataset
        self.slots = list(slots) if slots else []

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, indices: Sequence[Any]) -> Any:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is None:
            if isinstance(indices, IndexGroup):
                return BatchGroup(self.dataset.__getitems__(b) for b in indices)
            return self.dataset.__getitems__(indices)
        slots = self.slots[info.id] if info.id < len(self.slots) else None
        slot = slots.acquire() if slots is not None else None
        writer = SlotWriter(slots, slot) if slots is not None and slot is not None else None
        try:
            group = indices if isinstance(indices, IndexGroup) else [indices]
            wires = [self._wire(b, writer) for b in group]
        except BaseException:
            if writer is not None:
                writer.slots.release(writer.slot)
            raise
        if writer is not None and not any(w.payload["slot"] is not None for w in wires):
            writer.slots.release(writer.slot)  # nothing went into it
        return BatchGroup(wires) if isinstance(indices, IndexGroup) else wires[0]

    def _wire(self, indices: Sequence[int], writer: SlotWriter | None) -> WireBatch:
        ds = self.dataset
        with allocating(writer):  # extractors build their outputs in the slot
            arrays = ds.read(indices)
        _check_read(ds, arrays)
        return wire_batch(arrays, writer, ds.layout, check=False)

    def __getitem__(self, i: int) -> Batch | WireBatch:
        out: Batch | WireBatch = self.__getitems__([int(i)])
        return out

    def __getstate__(self) -> dict[str, Any]:
        # shared slots travel by fork only; a spawned worker sends its batches pickled
        return {"dataset": self.dataset, "slots": []}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.dataset = state["dataset"]
        self.slots = state["slots"]


def _has_rows(batch: Any) -> bool:
    """False for a batch whose segments ``out_of_bounds="drop"`` all left out (skipped, as
    by the JAX iterator: a batch of 0 segments gives a NaN mean loss)."""
    index = getattr(batch, "index", None)
    return index is None or int(index.shape[0]) > 0


@functools.lru_cache(maxsize=1)
def _segment_loader_class() -> type:
    from torch.utils.data import DataLoader

    class SegmentLoader(DataLoader):  # type: ignore[misc,type-arg]
        """A ``torch.utils.data.DataLoader`` whose workers read groups of batches per task.

        Iterating it yields one :class:`~neuralset.loaders.batch.Batch` at a time and
        ``len()`` counts batches, as for any DataLoader.
        """

        def __init__(self, *args: Any, n_batches: int, head_groups: int = 0, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.n_batches = int(n_batches)
            self.head_groups = int(head_groups)

        def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
            if self.num_workers == 0 and not self.pin_memory:
                return self._in_process()
            return self._through_torch()

        def _in_process(self) -> Iterator[Any]:
            """``num_workers=0``: each batch read here, in the batch sampler's order.

            What torch's single-process iterator does (``collate_fn(dataset.__getitems__(
            indices))``) without its bookkeeping per batch, which costs about a fifth of
            reading a batch of 32 MEG windows.
            """
            read = self.dataset.dataset.__getitems__
            collate = self.collate_fn
            for indices in self.batch_sampler:
                batch = collate(read(indices))
                if _has_rows(batch):
                    yield batch

        def _through_torch(self) -> Iterator[Any]:
            head: list[IndexGroup] = []
            sampler = self.batch_sampler
            starting = self.num_workers > 0 and getattr(self, "_iterator", None) is None
            if starting and self.head_groups and isinstance(sampler, GroupSampler):
                # workers are starting: read the first groups here meanwhile (same order)
                groups = sampler.draw()
                head, rest = groups[: self.head_groups], groups[self.head_groups :]
                sampler.plan(rest)
            items = super().__iter__()  # starts the workers, queues their first tasks
            for group in head:
                for indices in group:
                    batch = self.dataset.dataset.__getitems__(indices)
                    if _has_rows(batch):
                        yield batch
            for item in items:
                for batch in item if isinstance(item, BatchGroup) else (item,):
                    if _has_rows(batch):
                        yield batch

        def __len__(self) -> int:
            return self.n_batches

    SegmentLoader.__module__ = __name__
    return SegmentLoader


def __getattr__(name: str) -> Any:
    if name == "SegmentLoader":  # a torch class, built on first use
        return _segment_loader_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def loader_options(num_workers: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    """DataLoader keyword arguments with neuralset's defaults filled in (never overriding).

    With workers: ``persistent_workers=True``, ``prefetch_factor=2`` and, on Linux, the
    ``fork`` start method (workers inherit the warmed-up caches and the shared slots).
    """
    out = dict(kwargs)
    out["num_workers"] = int(num_workers)
    if num_workers > 0:
        out.setdefault("persistent_workers", True)
        out.setdefault("prefetch_factor", 2)
        if out.get("multiprocessing_context") is None and sys.platform.startswith("linux"):
            out["multiprocessing_context"] = "fork"
    return out


def _count(name: str, value: Any, least: int) -> int:
    """``value`` as an int >= ``least`` (numpy integers too), or an error naming ``name``."""
    if not is_int(value) or value < least:
        raise ValueError(
            f"SegmentDataset.loader.{name}: must be an integer >= {least}, got {value!r}"
        )
    return int(value)


def _check_sampler(sampler: Any, shuffle: bool, drop_last: bool) -> None:
    """A batch sampler (lists of positions), given without ``shuffle``/``drop_last``."""
    from torch.utils import data

    # torch's samplers of single positions (DataLoader(sampler=...) takes those)
    singles: tuple[type, ...] = (data.RandomSampler, data.SequentialSampler)
    singles += (data.SubsetRandomSampler, data.WeightedRandomSampler, data.DistributedSampler)
    one_by_one = isinstance(sampler, singles)
    if isinstance(sampler, Sequence | np.ndarray) and len(sampler):
        one_by_one = isinstance(sampler[0], numbers.Integral)
    if one_by_one or not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__")):
        raise TypeError(
            f"SegmentDataset.loader.sampler: expected a batch sampler (an iterable of lists of "
            f"positions, with len()), got {type(sampler).__name__}"
            + (
                ", which yields one position at a time (batches of one segment); wrap it: "
                "torch.utils.data.BatchSampler(sampler, batch_size, drop_last)"
                if one_by_one
                else "; e.g. neuralset.loaders.LengthBucketSampler or torch's BatchSampler"
            )
        )
    for flag, value in (("shuffle", shuffle), ("drop_last", drop_last)):
        if value:
            raise ValueError(
                f"SegmentDataset.loader: {flag}=True has no effect with a sampler, which "
                f"chooses the batches itself; drop {flag}=True (or set it on the sampler)"
            )


def check_loader_arguments(
    batch_size: Any,
    num_workers: Any,
    sampler: Any,
    shuffle: bool,
    drop_last: bool,
    kwargs: dict[str, Any],
    *,
    augmented: bool = False,
) -> tuple[int, int]:
    """The arguments of :meth:`SegmentDataset.loader`, checked before any read or worker.

    ``augmented``: the dataset augments, so without a sampler the order comes from an
    :class:`~neuralset.loaders.sampling.EpochBatchSampler` seeded by the dataset's seed.
    Returns ``(batch_size, num_workers)`` as ints; raises naming the argument and the fix.
    """
    import torch

    if "batch_sampler" in kwargs:
        raise TypeError(
            "SegmentDataset.loader: pass a batch sampler as sampler=..., not batch_sampler= "
            "(the loader gives the DataLoader its own batch sampler)"
        )
    generator = kwargs.get("generator")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"SegmentDataset.loader.generator: expected a torch.Generator, got "
            f"{type(generator).__module__}.{type(generator).__qualname__}; pass "
            "torch.Generator().manual_seed(seed)"
        )
    if generator is not None and shuffle and augmented and sampler is None:
        raise ValueError(
            "SegmentDataset.loader.generator: an augmented dataset shuffles with an "
            "EpochBatchSampler seeded by SegmentDataset.seed, so the generator would not "
            "change the order; set the dataset's seed (SegmentDataset(..., seed=...)) or pass "
            "sampler=EpochBatchSampler(len(dataset), batch_size, seed=...) instead"
        )
    if sampler is not None:
        _check_sampler(sampler, shuffle, drop_last)
    return _count("batch_size", batch_size, 1), _count("num_workers", num_workers, 0)


def _uses_fork(options: dict[str, Any]) -> bool:
    ctx = options.get("multiprocessing_context")
    if ctx is None:
        method = multiprocessing.get_start_method(allow_none=True)
        return sys.platform.startswith("linux") and method in (None, "fork")
    name = ctx if isinstance(ctx, str) else ctx.get_start_method()
    return bool(name == "fork")


class _WorkerInit:
    """``worker_init_fn``: warm the dataset up, then call the user's function (picklable)."""

    def __init__(self, dataset: SegmentDataset, user: Callable[[int], Any] | None) -> None:
        self.dataset = dataset
        self.user = user

    def __call__(self, worker_id: int) -> None:
        self.dataset.warm_up()  # nearly free when inherited from the parent by fork
        if self.user is not None:
            self.user(worker_id)


def _batch_sampler(
    dataset: SegmentDataset,
    batch_size: int,
    shuffle: bool,
    drop_last: bool,
    options: dict[str, Any],
) -> Any:
    """torch's own batch sampler for ``batch_size``/``shuffle`` (with its ``generator``)."""
    from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

    generator = options.pop("generator", None)
    inner = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return BatchSampler(inner, batch_size, drop_last)


def _check_read(dataset: SegmentDataset, arrays: dict[str, Any]) -> None:
    """Check the shapes of a :meth:`SegmentDataset.read` result (unless checks are off)."""
    if dataset.check_shapes and typecheck_enabled():
        meta = {k: arrays[k] for k in META_FIELDS}
        run_check(np.ndarray, arrays["data"], arrays["mask"], meta, dataset.layout, arrays["times"])


def build_loader(
    dataset: SegmentDataset,
    batch_size: int,
    *,
    shuffle: bool,
    sampler: Any,
    drop_last: bool,
    num_workers: int,
    kwargs: dict[str, Any],
) -> Any:
    """The DataLoader of :meth:`SegmentDataset.loader` (see the module docstring)."""
    options = loader_options(num_workers, kwargs)
    options.setdefault("collate_fn", dataset.collate)
    if sampler is None:
        sampler = _batch_sampler(dataset, batch_size, shuffle, drop_last, options)
    n_batches = len(sampler)
    slots: list[SharedSlots] = []
    head_groups = 0
    if num_workers > 0:
        dataset.warm_up()  # before the workers fork: they inherit open maps and keys
        options["worker_init_fn"] = _WorkerInit(dataset, options.get("worker_init_fn"))
        t0 = time.perf_counter()
        sample = dataset.read(np.arange(min(batch_size, len(dataset))), augment=False)
        read_s = time.perf_counter() - t0
        # the first check of a process imports jaxtyping and builds its checker (tens of ms):
        # done here, before the fork, neither the workers nor the head start pay it again
        _check_read(dataset, sample)
        one = slot_bytes_for(sample, margin=1.0)
        k = group_size(one)
        sampler = GroupSampler(sampler, k)
        head_groups = math.ceil(HEAD_START_S / max(read_s * k, 1e-6))
        if _uses_fork(options):
            n_slots = int(options.get("prefetch_factor") or 2) + 2
            size = slot_bytes_for(sample, margin=1.25 * k)
            slots = [SharedSlots(n_slots, size) for _ in range(num_workers)]
    view = LoaderDataset(dataset, slots)
    cls = _segment_loader_class()
    return cls(view, batch_sampler=sampler, n_batches=n_batches, head_groups=head_groups, **options)

"""A JAX batch iterator over a :class:`~neuralset.loaders.dataset.SegmentDataset`.

Deterministic like grain's samplers: the order of epoch ``e`` is the permutation drawn from
``numpy.random.default_rng([seed, e])``, so the same seed gives the same order on any machine
and every epoch differs. A background thread reads the next ``prefetch`` batches (numpy reads
release the GIL) and moves them to the device while the training step runs. Batches are
:class:`JaxBatch` equinox modules (pytrees: they pass through ``jax.jit``).

jax and equinox are imported on first iteration, never at ``import neuralset`` time; torch is
not needed at all.
"""

from __future__ import annotations

import functools
import math
import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .batch import META_FIELDS, run_check, typecheck_enabled
from .dataset import SegmentDataset
from .sampling import epoch_rng, is_int

__all__ = ["JaxBatchIterator", "jax_batch_class", "resolve_device"]

_DONE = object()


@functools.lru_cache(maxsize=1)
def jax_batch_class() -> type:
    """The :class:`JaxBatch` equinox module class (built on first use: imports equinox)."""
    import equinox as eqx
    import jax

    class JaxBatch(eqx.Module):  # type: ignore[misc]
        """A batch of jax arrays keyed by extractor name (an equinox module, hence a pytree).

        Like the torch :class:`~neuralset.loaders.batch.Batch`, a read-only
        :class:`~collections.abc.Mapping` of the extractor outputs: ``batch["meg"]``,
        ``batch.keys()``, ``.values()``, ``.items()``, ``len(batch)``, ``for name in batch``;
        ``size`` is the number of segments.

        Attributes
        ----------
        data
            ``{name: Float[Array, "batch ..."]}``.
        mask
            ``{name: Bool[Array, "batch time"]}`` for outputs read with ``out_of_bounds="pad"``
            (or ``variable_length="pad"``).
        times
            ``{name: Array["time"]}``: the time of each sample of a dynamic output (s).
        start, duration
            Window start and duration (s); float32 unless ``jax_enable_x64`` is on.
        timeline, trigger, index
            Timeline code, trigger event row and dataset position of each segment.
        """

        data: dict[str, jax.Array]
        mask: dict[str, jax.Array]
        times: dict[str, jax.Array]
        start: jax.Array
        duration: jax.Array
        timeline: jax.Array
        trigger: jax.Array
        index: jax.Array

        def __getitem__(self, name: str) -> jax.Array:
            if not isinstance(name, str):
                raise TypeError(
                    f"a JaxBatch is keyed by extractor name ({', '.join(self.data)}), got {name!r}"
                )
            try:
                return self.data[name]
            except KeyError:
                raise KeyError(
                    f"no field {name!r} in this batch; fields: {', '.join(self.data)}"
                ) from None

        def __iter__(self) -> Iterator[str]:
            return iter(self.data)

        def __len__(self) -> int:
            return len(self.data)

        def __contains__(self, name: object) -> bool:
            return name in self.data

        def keys(self) -> Any:
            return self.data.keys()

        def values(self) -> Any:
            return self.data.values()

        def items(self) -> Any:
            return self.data.items()

        def get(self, name: str, default: Any = None) -> Any:
            return self.data.get(name, default)

        @property
        def size(self) -> int:
            return int(self.start.shape[0])

    Mapping.register(JaxBatch)  # a read-only mapping of the extractor outputs, like torch's Batch
    JaxBatch.__module__ = __name__
    JaxBatch.__qualname__ = "JaxBatch"  # found by pickle through the module __getattr__
    return JaxBatch


def __getattr__(name: str) -> Any:
    if name == "JaxBatch":  # built on first use (imports equinox)
        return jax_batch_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_device(device: Any) -> Any:
    """The ``jax.Device`` that ``device`` names: None (JAX's default device) and devices pass
    through; a string is a platform (``"cpu"``, ``"gpu"`` or ``"cuda"``, ``"tpu"``) with an
    optional index (``"gpu:1"``), as torch writes devices.

    Raises
    ------
    ValueError
        Naming ``JaxBatchIterator.device`` and the devices JAX sees, when the string names no
        platform JAX has here, or an index past its devices.
    """
    if not isinstance(device, str):
        return device
    import jax

    platform, _, index = device.strip().lower().partition(":")
    platform = {"cuda": "gpu"}.get(platform, platform)
    seen = ", ".join(f"{d.platform}:{d.id}" for d in jax.devices())
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    position = int(index) if index.isdigit() else -1 if index else 0
    if not 0 <= position < len(devices):
        raise ValueError(
            f"JaxBatchIterator.device: {device!r} is no device JAX sees here (it sees {seen}); "
            "pass 'cpu', 'gpu', 'gpu:1', a jax.Device or None (JAX's default device)"
        )
    return devices[position]


def _check_sampler(sampler: Any, shuffle: bool, drop_last: bool) -> None:
    """A sampler with ``batch_indices(epoch)`` and ``len()``, given without the flags it
    replaces (they would be ignored silently)."""
    if not callable(getattr(sampler, "batch_indices", None)) or not hasattr(sampler, "__len__"):
        raise TypeError(
            f"JaxBatchIterator.sampler: expected a sampler with batch_indices(epoch) and len() "
            f"(e.g. neuralset.loaders.LengthBucketSampler), got {type(sampler).__name__}"
        )
    for flag, value, default in (("shuffle", shuffle, True), ("drop_last", drop_last, False)):
        if bool(value) != default:
            raise ValueError(
                f"JaxBatchIterator: {flag}={value!r} has no effect with a sampler, which "
                f"chooses the batches itself; leave {flag} out (or set it on the sampler)"
            )


class JaxBatchIterator:
    """Iterate a dataset as batches of jax arrays, shuffled deterministically, with prefetch.

    Parameters
    ----------
    dataset
        A :class:`~neuralset.loaders.dataset.SegmentDataset` (its numpy path is used).
    batch_size
        Segments per batch (>= 1).
    shuffle
        Draw a new permutation each epoch from ``(seed, epoch)`` (see
        :func:`~neuralset.loaders.sampling.epoch_rng`); in order otherwise.
    seed
        Base seed of the permutations.
    drop_last
        Leave out the last, smaller batch.
    prefetch
        Batches read ahead by a background thread (0: read in the calling thread).
    device
        ``jax.Device`` to put the arrays on, or its name as torch writes it (``"cpu"``,
        ``"gpu"`` or ``"cuda"``, ``"gpu:1"``; see :func:`resolve_device`); JAX's default
        device if ``None``.
    sampler
        A batch sampler with ``batch_indices(epoch)`` and ``len()`` (e.g.
        :class:`~neuralset.loaders.sampling.LengthBucketSampler`); it replaces ``batch_size``,
        ``shuffle``, ``seed`` and ``drop_last`` for choosing the batches (``shuffle=False`` or
        ``drop_last=True`` with a sampler is an error: set them on the sampler).

    Notes
    -----
    Each ``iter(...)`` runs one epoch and advances :attr:`epoch`; :meth:`epoch_iter` runs a
    given epoch. With ``out_of_bounds="drop"``, batches are smaller by the segments left out,
    and a batch left with none is skipped (an empty batch would give a NaN mean loss and a
    new shape to compile), so an epoch may have fewer than ``len()`` batches.

    Examples
    --------
    ::

        it = JaxBatchIterator(dataset, batch_size=32, seed=0)
        for epoch in range(10):
            for batch in it:          # epoch 0, 1, ...
                loss = step(params, batch["meg"])
    """

    def __init__(
        self,
        dataset: SegmentDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        prefetch: int = 2,
        device: Any = None,
        sampler: Any = None,
    ) -> None:
        if not isinstance(dataset, SegmentDataset):
            raise TypeError(
                f"JaxBatchIterator.dataset: expected SegmentDataset, got {type(dataset).__name__}"
            )
        if not is_int(batch_size) or batch_size < 1:
            raise ValueError(
                f"JaxBatchIterator.batch_size: must be an int >= 1, got {batch_size!r}"
            )
        if not is_int(prefetch) or prefetch < 0:
            raise ValueError(f"JaxBatchIterator.prefetch: must be an int >= 0, got {prefetch!r}")
        if not is_int(seed) or seed < 0:
            raise TypeError(
                f"JaxBatchIterator.seed: expected an int >= 0 (the permutation of epoch e is "
                f"drawn from numpy.random.default_rng([seed, e])), got {seed!r}"
            )
        if sampler is not None:
            _check_sampler(sampler, shuffle, drop_last)
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.prefetch = int(prefetch)
        self.device = resolve_device(device)
        self.sampler = sampler
        self.epoch = 0
        if sampler is None and not len(self):
            raise ValueError(
                f"JaxBatchIterator: no batch: drop_last=True leaves out the last, smaller batch, "
                f"and batch_size={batch_size} exceeds the {len(dataset)} segments of the "
                "dataset; lower batch_size, or pass drop_last=False"
            )

    def __len__(self) -> int:
        if self.sampler is not None:
            return len(self.sampler)
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """Dataset positions in the order of ``epoch``."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return epoch_rng(self.seed, epoch).permutation(n)

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The positions of each batch of ``epoch``."""
        if self.sampler is not None:
            return [np.asarray(b) for b in self.sampler.batch_indices(epoch)]
        order = self.order(epoch)
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        return [order[i : i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def __iter__(self) -> Iterator[Any]:
        epoch = self.epoch
        self.epoch += 1
        return self.epoch_iter(epoch)

    def _make(self, indices: np.ndarray, epoch: int) -> Any | None:
        import jax

        arrays = self.dataset.read(indices, epoch=epoch)
        if not len(arrays["index"]):  # out_of_bounds="drop" left out all its segments
            return None
        if self.dataset.check_shapes and typecheck_enabled():
            run_check(
                np.ndarray,
                arrays["data"],
                arrays["mask"],
                {k: arrays[k] for k in META_FIELDS},
                self.dataset.layout,
                arrays["times"],
            )
        leaves = {
            "data": arrays["data"],
            "mask": arrays["mask"],
            "times": arrays["times"],
            **{k: arrays[k] for k in META_FIELDS},
        }
        leaves = jax.device_put(leaves, self.device)
        return jax_batch_class()(**leaves)

    def epoch_iter(self, epoch: int) -> Iterator[Any]:
        """Iterate the batches of ``epoch`` (does not change :attr:`epoch`)."""
        if not self.dataset._checked:
            self.dataset.check()  # fail here, in the caller's thread, with the fix in the message
        batches = self.batch_indices(epoch)
        if self.prefetch == 0:
            for indices in batches:
                batch = self._make(indices, epoch)
                if batch is not None:
                    yield batch
            return
        q: queue.Queue[Any] = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def produce() -> None:
            try:
                for indices in batches:
                    if stop.is_set():
                        return
                    item = self._make(indices, epoch)
                    if item is None:
                        continue
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
            except BaseException as err:  # handed to the consumer
                q.put(err)
                return
            q.put(_DONE)

        thread = threading.Thread(target=produce, name="neuralset-jax-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)

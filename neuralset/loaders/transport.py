"""Batches from DataLoader workers to the main process through shared memory, without copies.

A torch DataLoader worker normally returns tensors that torch moves to a new shared-memory
segment each (one ``shm_open``, ``mmap`` and file-descriptor transfer per tensor of every
batch). For batches read in a millisecond this costs more than the read, and ``num_workers=2``
ran ten times slower than reading in the main process.

Here each worker owns a few fixed *slots* in an anonymous shared memory map created by the main
process before the workers fork (:class:`SharedSlots`). The worker writes the batch's large
arrays into a free slot and sends a small message (slot number, shapes, dtypes, memory order
and the metadata arrays, a few kB). The main process turns the message back into a
:class:`~neuralset.loaders.batch.Batch` whose tensors are views of the slot: no copy on its
side. The slot is handed back to its worker when the last tensor viewing it is freed (a
``weakref.finalize`` on the buffer object the views share), so a batch kept by the user is
never overwritten. When every slot is in use, or a batch is larger than a slot, the batch
travels the ordinary way (pickled arrays), which is slower but always correct.

Slots need memory shared by inheritance, hence workers started with ``fork`` (the default on
Linux); with ``spawn`` or ``forkserver`` the ordinary path is used.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import mmap
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .batch import META_FIELDS

__all__ = [
    "BatchGroup",
    "SharedSlots",
    "SlotWriter",
    "WireBatch",
    "dense_order",
    "from_placed",
    "wire_batch",
    "slot_bytes_for",
]

_ALIGN = 64
_IDS = itertools.count()
#: Slots of the loaders of this process, by id (the main process resolves messages here).
_SLOTS: weakref.WeakValueDictionary[int, SharedSlots] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


#: Where an array lies in a slot: ``(offset, shape, dtype, axes from slowest to fastest)``,
#: the axes None for a C-contiguous array.
Placed = tuple[int, tuple[int, ...], str, tuple[int, ...] | None]


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def slot_bytes_for(arrays: Mapping[str, Any], margin: float = 1.25) -> int:
    """A slot size for batches like ``arrays`` (a :meth:`SegmentDataset.read` result)."""
    total = sum(_aligned(a.nbytes) for _, _, a in _fields(arrays))
    return max(mmap.PAGESIZE, int(total * margin) // mmap.PAGESIZE * mmap.PAGESIZE + mmap.PAGESIZE)


class SharedSlots:
    """Fixed-size slots in anonymous shared memory, written by one worker, read by the main
    process.

    Created by the main process before the workers fork (they inherit the same pages). A
    flag byte per slot says whether it is free (0, set by the main process once no tensor
    views it) or holds a batch (1, set by the worker before writing it).

    Parameters
    ----------
    n_slots
        Number of slots (batches of this worker in flight or held by the user at once).
    slot_bytes
        Size of each slot (see :func:`slot_bytes_for`).
    """

    def __init__(self, n_slots: int, slot_bytes: int) -> None:
        if n_slots < 1 or slot_bytes < 1:
            raise ValueError(
                f"SharedSlots: need n_slots, slot_bytes >= 1, got {n_slots}, {slot_bytes}"
            )
        self.n_slots = int(n_slots)
        self.slot_bytes = int(slot_bytes)
        self.buffer = mmap.mmap(-1, self.n_slots * self.slot_bytes)  # MAP_SHARED | MAP_ANONYMOUS
        self._flags_map = mmap.mmap(-1, self.n_slots)
        self.flags = np.frombuffer(self._flags_map, dtype=np.uint8)
        self._leases: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        with _LOCK:
            self.id = next(_IDS)
            _SLOTS[self.id] = self

    def __repr__(self) -> str:
        busy = int(self.flags.sum())
        return (
            f"SharedSlots(id={self.id}, {busy}/{self.n_slots} in use, {self.slot_bytes} bytes each)"
        )

    # -- worker side -----------------------------------------------------------------------
    def acquire(self) -> int | None:
        """The first free slot, marked in use (None when all are in use).

        The lowest-numbered free slot, so that a worker keeps writing into the same few slots
        when batches are freed promptly: the first write into a page of shared memory costs
        about as much as reading the batch (the kernel allocates and zeroes it), a later one
        a tenth of that.
        """
        free = np.flatnonzero(self.flags == 0)
        if not len(free):
            return None
        slot = int(free[0])
        self.flags[slot] = 1
        return slot

    def view(self, slot: int, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A writable array over part of a slot (worker side)."""
        count = math.prod(shape)
        start = slot * self.slot_bytes + offset
        return np.frombuffer(self.buffer, dtype=dtype, count=count, offset=start).reshape(shape)

    # -- main-process side -----------------------------------------------------------------
    def lease(self, slot: int) -> Any:
        """A buffer object over one slot; the slot is freed when it (and every view) is gone.

        The batches of one message group share one lease: while any of them lives, the slot
        stays taken.
        """
        with _LOCK:
            buf = self._leases.get(slot)
            if buf is None:
                buf = (ctypes.c_char * self.slot_bytes).from_buffer(
                    self.buffer, slot * self.slot_bytes
                )
                weakref.finalize(buf, _release, self.flags, slot)
                self._leases[slot] = buf
        return buf

    def release(self, slot: int) -> None:
        """Mark a slot free (what the lease's finalizer does)."""
        _release(self.flags, slot)


def _release(flags: np.ndarray, slot: int) -> None:
    flags[slot] = 0


class SlotWriter:
    """Writes one batch into one acquired slot (worker side): bump allocation from its start.

    Used as the allocator of the read (:func:`neuralset.extractors.buffers.allocating`), so
    that extractors build their outputs in the slot; :meth:`place` then finds each array there,
    or copies it in when it was built elsewhere.
    """

    def __init__(self, slots: SharedSlots, slot: int) -> None:
        self.slots = slots
        self.slot = slot
        self.used = 0
        base = np.frombuffer(slots.buffer, dtype=np.uint8, count=1).__array_interface__["data"][0]
        self.start = int(base) + slot * slots.slot_bytes

    def __call__(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        nbytes = math.prod(shape) * dtype.itemsize
        if self.used + nbytes > self.slots.slot_bytes:
            return None
        out = self.slots.view(self.slot, self.used, shape, dtype)
        self.used += _aligned(nbytes)
        return out

    def place(self, arr: np.ndarray) -> Placed | None:
        """``(offset, shape, dtype, order)`` of ``arr`` in the slot (copied in if needed), or
        None when it does not fit.

        ``order`` lists the axes from the slowest in memory to the fastest (None: C order): an
        array built in the slot as an axis permutation of a C-contiguous block (a
        ``time_major`` read, see :class:`~neuralset.extractors.recording.RecordingExtractor`)
        is found there as it is.
        """
        address = int(arr.__array_interface__["data"][0])
        order = None if arr.flags.c_contiguous else dense_order(arr)
        if self.start <= address < self.start + self.slots.slot_bytes:
            if arr.flags.c_contiguous or order is not None:
                return (address - self.start, tuple(arr.shape), arr.dtype.str, order)
        # copied in, in its own memory order (a block copy for a permuted block)
        stored = arr if order is None else arr.transpose(order)
        target = self(tuple(stored.shape), arr.dtype)
        if target is None:
            return None
        target[...] = stored
        offset = int(target.__array_interface__["data"][0]) - self.start
        return (offset, tuple(arr.shape), arr.dtype.str, order)


def dense_order(arr: np.ndarray) -> tuple[int, ...] | None:
    """The axes of ``arr`` from the slowest in memory to the fastest, when ``arr`` is an axis
    permutation of a C-contiguous block (None otherwise: strided, overlapping, or reversed)."""
    if arr.flags.c_contiguous:
        return tuple(range(arr.ndim))
    order = tuple(sorted(range(arr.ndim), key=lambda a: -arr.strides[a]))
    return order if arr.transpose(order).flags.c_contiguous else None


def from_placed(buf: Any, placed: Placed) -> np.ndarray:
    """The array :meth:`SlotWriter.place` put in a slot, as a view of ``buf`` (the slot)."""
    offset, shape, dtype, order = placed
    flat = np.frombuffer(buf, dtype=dtype, count=math.prod(shape), offset=offset)
    if order is None:
        return flat.reshape(shape)
    back = sorted(range(len(order)), key=order.__getitem__)  # the inverse permutation
    return flat.reshape(tuple(shape[a] for a in order)).transpose(back)


class BatchGroup(list):  # type: ignore[type-arg]
    """The batches of one worker task (several consecutive batches sent in one message)."""


class WireBatch:
    """What a worker sends for one batch: slot references plus the small arrays, pickled.

    Unpickling it (in the main process) gives the :class:`~neuralset.loaders.batch.Batch`
    directly, its large tensors viewing the slot.
    """

    __slots__ = ("payload",)

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        return (_rebuild, (self.payload,))

    def batch(self) -> Any:
        """The batch (in the process that wrote it: tests, ``num_workers=0``)."""
        return _rebuild(self.payload)


def wire_batch(
    arrays: Mapping[str, Any],
    writer: SlotWriter | None,
    layout: Mapping[str, str],
    check: bool,
) -> WireBatch:
    """Pack a :meth:`SegmentDataset.read` result for the trip to the main process.

    Every array (data, masks, times, metadata) goes into ``writer``'s slot, where the read may
    already have built it, as long as it fits; the others are pickled with the message.
    """
    placed: list[tuple[str, str, Placed]] = []
    inline: list[tuple[str, str, np.ndarray]] = []
    for group, name, arr in _fields(arrays):
        where = writer.place(arr) if writer is not None else None
        if where is None:
            inline.append((group, name, arr))
        else:
            placed.append((group, name, where))
    used = writer is not None and bool(placed)
    return WireBatch(
        {
            "slots": writer.slots.id if used and writer is not None else None,
            "slot": writer.slot if used and writer is not None else None,
            "placed": placed,
            "inline": inline,
            "layout": dict(layout),
            "check": bool(check),
        }
    )


def _fields(arrays: Mapping[str, Any]) -> Iterator[tuple[str, str, np.ndarray]]:
    """``(group, name, array)`` of every array of a read result (group "meta": metadata)."""
    for group in ("data", "mask", "times"):
        for name, arr in arrays.get(group, {}).items():
            yield group, name, np.asarray(arr)
    for name in META_FIELDS:
        yield "meta", name, np.asarray(arrays[name])


def _rebuild(payload: dict[str, Any]) -> Any:
    import torch

    from .batch import Batch

    fields: dict[str, dict[str, Any]] = {"data": {}, "mask": {}, "times": {}, "meta": {}}
    if payload["slot"] is not None:
        slots = _SLOTS.get(payload["slots"])
        if slots is None:
            raise RuntimeError(
                "a batch from a DataLoader worker refers to shared slots that this process "
                "does not have (its loader was garbage-collected, or the batch was pickled "
                "again); iterate the loader returned by SegmentDataset.loader()"
            )
        buf = slots.lease(payload["slot"])
        for group, name, placed in payload["placed"]:
            fields[group][name] = torch.from_numpy(from_placed(buf, placed))
    for group, name, arr in payload["inline"]:
        if not arr.flags.writeable:
            arr = arr.copy()
        fields[group][name] = torch.from_numpy(arr)
    return Batch(
        fields["data"],
        mask=fields["mask"],
        times=fields["times"],
        layout=payload["layout"],
        check=payload["check"],
        **fields["meta"],
    )

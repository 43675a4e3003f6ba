"""The per-process cache of memory-mapped store arrays that batch reads gather from.

Every :class:`~neuralset.extractors.recording.RecordingExtractor` read takes its recordings from
one :class:`MappedArrays` per process (:data:`MAPPED`):

* opened once: a recording is memory-mapped on first use and kept open, so a batch costs no
  ``open``/``mmap`` and no index lookup. A DataLoader worker forked after
  :meth:`SegmentDataset.warm_up <neuralset.loaders.SegmentDataset.warm_up>` inherits the open
  maps of its parent (the pages are shared, not copied);
* bounded: at most ``NEURALSET_MAX_OPEN_ARRAYS`` arrays (default 4096) and
  ``NEURALSET_MAX_MAPPED_MB`` mebibytes of them (default 4096) stay mapped; the least recently
  used are closed first. What a process keeps does not grow with the number of recordings of a
  study past these bounds;
* revalidated: an entry deleted or rewritten by this process (:meth:`Store.delete
  <neuralset.store.Store.delete>`, a new commit) is closed at once; one changed by another
  process (another inode or modification time) is opened again after at most ``recheck_s``
  seconds (default 1). The check (one ``os.stat``) runs on the first read of an array by each
  :class:`~neuralset.events.index.EventIndex` (each dataset), then at most once per
  ``recheck_s``, instead of once per array per batch. Store entries are written to a temporary
  file and renamed, so a map opened before a rewrite keeps reading complete data.

Cache keys are ``(str(store.root), entry key)``.
"""

from __future__ import annotations

import functools
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import NamedTuple

import numpy as np

from ..memo import Memo, Slot

__all__ = ["MappedArrays", "MAPPED", "Opened"]

#: Per event index: the cache keys this index has validated (so each dataset checks once).
_VALIDATED: Slot[set[Hashable]] = Slot("mapped arrays validated by this index")


class Opened(NamedTuple):
    """An open (memory-mapped) array, its rate and what identifies its file."""

    data: np.ndarray
    sfreq: float
    path: str
    stamp: tuple[int, int]  # (inode, modification time in ns)


class _Entry:
    __slots__ = ("opened", "checked", "nbytes")

    def __init__(self, opened: Opened, checked: float) -> None:
        self.opened = opened
        self.checked = checked
        self.nbytes = int(opened.data.nbytes)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        out = int(value)
    except ValueError:
        raise ValueError(f"${name}: expected a positive integer, got {value!r}") from None
    if out < 1:
        raise ValueError(f"${name}: expected a positive integer, got {value!r}")
    return out


def file_stamp(path: str) -> tuple[int, int]:
    """``(inode, mtime_ns)`` of a file (what a rewrite changes)."""
    st = os.stat(path)
    return (st.st_ino, st.st_mtime_ns)


class MappedArrays:
    """A bounded, least-recently-used cache of open memory-mapped arrays (one per process).

    Parameters
    ----------
    max_count
        Arrays kept open at most (default ``$NEURALSET_MAX_OPEN_ARRAYS`` or 4096).
    max_bytes
        Bytes of open arrays at most (default ``$NEURALSET_MAX_MAPPED_MB`` MiB or 4 GiB).
    recheck_s
        Seconds between two revalidations of an open array by the same event index.
    """

    def __init__(
        self,
        max_count: int | None = None,
        max_bytes: int | None = None,
        recheck_s: float = 1.0,
    ) -> None:
        self.max_count = max_count or _env_int("NEURALSET_MAX_OPEN_ARRAYS", 4096)
        self.max_bytes = max_bytes or _env_int("NEURALSET_MAX_MAPPED_MB", 4096) * 2**20
        self.recheck_s = float(recheck_s)
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays currently open."""
        return self._bytes

    def get(self, key: Hashable, open_fn: Callable[[], Opened], memo: Memo) -> Opened:
        """The open array of ``key``, opened by ``open_fn()`` when absent or rewritten.

        ``memo`` (an event index's) records which keys were validated on its behalf.
        """
        entry = self._entries.get(key)
        if entry is not None:
            validated = memo.get_or_set(_VALIDATED, set)
            now = time.monotonic()
            if key in validated and now - entry.checked < self.recheck_s:
                self._entries.move_to_end(key)
                return entry.opened
            try:
                fresh = file_stamp(entry.opened.path) == entry.opened.stamp
            except OSError:
                fresh = False
            if fresh:
                entry.checked = now
                validated.add(key)
                self._entries.move_to_end(key)
                return entry.opened
            self._drop(key)
        opened = open_fn()
        self._add(key, opened)
        memo.get_or_set(_VALIDATED, set).add(key)
        return opened

    def get_many(
        self, keys: list[Hashable], open_fn: Callable[[Hashable], Opened], memo: Memo
    ) -> list[Opened]:
        """:meth:`get` of each of ``keys`` (``open_fn(key)`` opens one): the arrays of one batch.

        Entries validated recently for ``memo`` cost one dictionary lookup each, so a batch
        spanning hundreds of recordings pays little more than one spanning a few.
        """
        validated = memo.get_or_set(_VALIDATED, set)
        now = time.monotonic()
        entries = self._entries
        out = []
        for key in keys:
            entry = entries.get(key)
            if entry is not None and key in validated and now - entry.checked < self.recheck_s:
                entries.move_to_end(key)
                out.append(entry.opened)
            else:
                out.append(self.get(key, functools.partial(open_fn, key), memo))
        return out

    def _add(self, key: Hashable, opened: Opened) -> None:
        entry = _Entry(opened, time.monotonic())
        self._entries[key] = entry
        self._bytes += entry.nbytes
        while len(self._entries) > 1 and (
            len(self._entries) > self.max_count or self._bytes > self.max_bytes
        ):
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.nbytes

    def forget(self, root: str, key: str) -> None:
        """Close ``key`` of the store at ``root`` (called when this process deletes or rewrites
        it, so that the next read opens it again at once)."""
        self._drop((root, key))

    def clear(self) -> None:
        """Close every array (they are unmapped once no batch refers to them)."""
        self._entries.clear()
        self._bytes = 0


#: The process's cache (inherited, open maps included, by forked DataLoader workers).
MAPPED = MappedArrays()

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
  seconds (default 1, or ``$NEURALSET_RECHECK_S``). The check (one ``os.stat``) runs on the first read of an array by each
  :class:`~neuralset.events.index.EventIndex` (each dataset), then at most once per
  ``recheck_s``, instead of once per array per batch. Store entries are written to a temporary
  file and renamed, so a map opened before a rewrite keeps reading complete data.

The same policy covers the source files recordings are keyed by (see
:mod:`neuralset.extractors.recording_table`): :attr:`MappedArrays.generation` counts this
process's writes (a commit, a delete, :meth:`MappedArrays.revalidate`, the start of every
``prepare``); the caches built on this one check everything again when it changes.

Cache keys are ``(str(store.root), entry key)``.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import NamedTuple

import numpy as np

from ..memo import Memo, Slot

__all__ = ["MappedArrays", "MAPPED", "MappedEntry", "Opened", "revalidate"]

#: Per event index: the cache keys this index has validated (so each dataset checks once).
_VALIDATED: Slot[set[Hashable]] = Slot("mapped arrays validated by this index")


class Opened(NamedTuple):
    """An open (memory-mapped) array, its rate and what identifies its file."""

    data: np.ndarray
    sfreq: float
    path: str
    stamp: tuple[int, int]  # (inode, modification time in ns)


class MappedEntry:
    """One open array of the cache: what was opened and when it was last checked.

    Only the cache holds entries (callers may hold weak references to them): an entry closed
    by the cache (evicted, forgotten, rewritten) is gone at once.
    """

    __slots__ = ("opened", "checked", "nbytes", "__weakref__")

    def __init__(self, opened: Opened, checked: float) -> None:
        self.opened = opened
        self.checked = checked
        self.nbytes = int(opened.data.nbytes)


def _env_number(
    name: str, default: float, parse: Callable[[str], float], least: float, expected: str
) -> float:
    """``parse($name)`` (``default`` when unset), refused below ``least`` naming ``expected``."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        out = parse(value)
    except ValueError:
        out = math.nan
    if not out >= least:
        raise ValueError(f"${name}: expected {expected}, got {value!r}")
    return out


def _env_int(name: str, default: int) -> int:
    return int(_env_number(name, default, int, 1, "a positive integer"))


def _env_seconds(name: str, default: float) -> float:
    return float(_env_number(name, default, float, 0.0, "a number of seconds >= 0"))


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
        Seconds between two revalidations of an open array (or of a recording's source file)
        by the same event index (default ``$NEURALSET_RECHECK_S`` or 1; 0 checks on every
        read).
    """

    def __init__(
        self,
        max_count: int | None = None,
        max_bytes: int | None = None,
        recheck_s: float | None = None,
    ) -> None:
        self.max_count = max_count or _env_int("NEURALSET_MAX_OPEN_ARRAYS", 4096)
        self.max_bytes = max_bytes or _env_int("NEURALSET_MAX_MAPPED_MB", 4096) * 2**20
        self.recheck_s = (
            _env_seconds("NEURALSET_RECHECK_S", 1.0) if recheck_s is None else recheck_s
        )
        #: Changes with each write of this process that a cached read must see at once.
        self.generation = 0
        self._entries: OrderedDict[Hashable, MappedEntry] = OrderedDict()
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
        return self._entry(key, open_fn, memo).opened

    def _entry(self, key: Hashable, open_fn: Callable[[], Opened], memo: Memo) -> MappedEntry:
        entry = self._entries.get(key)
        if entry is not None:
            validated = memo.get_or_set(_VALIDATED, set)
            now = time.monotonic()
            if key in validated and now - entry.checked < self.recheck_s:
                self._entries.move_to_end(key)
                return entry
            try:
                fresh = file_stamp(entry.opened.path) == entry.opened.stamp
            except OSError:
                fresh = False
            if fresh:
                entry.checked = now
                validated.add(key)
                self._entries.move_to_end(key)
                return entry
            self._drop(key)
        entry = self._add(key, open_fn())
        memo.get_or_set(_VALIDATED, set).add(key)
        return entry

    def get_many(
        self, keys: list[Hashable], open_fn: Callable[[Hashable], Opened], memo: Memo
    ) -> list[Opened]:
        """:meth:`get` of each of ``keys`` (``open_fn(key)`` opens one): the arrays of one batch."""
        return [e.opened for e in self.entries(keys, open_fn, memo)]

    def entries(
        self, keys: list[Hashable], open_fn: Callable[[Hashable], Opened], memo: Memo
    ) -> list[MappedEntry]:
        """The entries of :meth:`get_many` (a caller may keep weak references to them).

        Entries validated recently for ``memo`` cost one dictionary lookup each.
        """
        validated = memo.get_or_set(_VALIDATED, set)
        now = time.monotonic()
        entries = self._entries
        out = []
        for key in keys:
            entry = entries.get(key)
            if entry is not None and key in validated and now - entry.checked < self.recheck_s:
                entries.move_to_end(key)
                out.append(entry)
            else:
                out.append(self._entry(key, functools.partial(open_fn, key), memo))
        return out

    def _add(self, key: Hashable, opened: Opened) -> MappedEntry:
        entry = MappedEntry(opened, time.monotonic())
        self._entries[key] = entry
        self._bytes += entry.nbytes
        while len(self._entries) > 1 and (
            len(self._entries) > self.max_count or self._bytes > self.max_bytes
        ):
            self._drop(next(iter(self._entries)))
        return entry

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.nbytes

    def forget(self, root: str, key: str) -> None:
        """Close ``key`` of the store at ``root`` (called when this process deletes or rewrites
        it, so that the next read opens it again at once)."""
        self.generation += 1
        self._drop((root, key))

    def revalidate(self) -> None:
        """Make the next read of every array, and of every recording's store key, check its
        files again (at once rather than within ``recheck_s``)."""
        self.generation += 1
        for entry in self._entries.values():
            entry.checked = -math.inf

    def clear(self) -> None:
        """Close every array (they are unmapped once no batch refers to them)."""
        self.generation += 1
        self._entries.clear()
        self._bytes = 0


#: The process's cache (inherited, open maps included, by forked DataLoader workers).
MAPPED = MappedArrays()


def revalidate() -> None:
    """Check every file again on the next read: the store's arrays and the source files that
    recordings are keyed by (:meth:`MappedArrays.revalidate` of :data:`MAPPED`).

    Reads notice a file changed by another program within ``MAPPED.recheck_s`` seconds (1 by
    default); call this after replacing a recording yourself to have the very next read see
    it. ``prepare`` calls it (before its own work).
    """
    MAPPED.revalidate()

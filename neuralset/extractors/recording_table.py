"""Per dataset: the store key and the open stored array of each recording, as arrays.

A batch read of a :class:`~neuralset.extractors.recording.RecordingExtractor` needs, for each
recording its windows come from, the recording's store key (derived from its source file: path,
size and modification time, or a hash of its content) and its memory-mapped stored array. A
:class:`RecordingTable` keeps both for every recording event of an events table, memoised on the
table's :class:`~neuralset.events.index.EventIndex` (shared by every selection of the same
segments, so by every batch of a dataset), as arrays over the recordings. A batch whose
recordings were all checked recently costs a few numpy operations over its recordings, however
many recordings the study has: no dictionary lookup, ``os.stat`` or Python loop per recording.

Revalidation follows the store cache's policy (:mod:`neuralset.store.mapped`):

* a recording's source file is checked (one ``os.stat``: inode, size, modification and change
  times) on its first read through the table, then at most once per ``MAPPED.recheck_s``
  seconds (default 1, ``$NEURALSET_RECHECK_S``; 0 checks on every read). A file replaced since
  gets its key computed again (hashed again with ``content_hash``), so the same segments never
  read the entry of the file it replaced once the change is noticed: at most ``recheck_s``
  seconds after a change made outside neuralset (another process, or a library writing the
  file), and at once after this process's own writes: ``prepare`` (it starts with
  :func:`~neuralset.store.mapped.revalidate`), a commit or delete in the store, or an explicit
  :func:`~neuralset.store.mapped.revalidate`;
* a recording's stored array is taken from the process's bounded cache
  (:data:`~neuralset.store.mapped.MAPPED`), which the table refers to weakly: an array that
  the cache closes (evicted past its bounds, deleted or rewritten) is opened again through it.
"""

from __future__ import annotations

import math
import os
import time
import weakref
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from ..memo import Memo, Slot
from ..segments import Segments
from ..store.mapped import MAPPED, MappedEntry, Opened
from .base import source_path

if TYPE_CHECKING:
    from .base import Item

__all__ = ["BatchRecordings", "RecordingTable", "recording_table", "source_stamp"]

#: Per ``prepare_key`` (and event type): the table of an event index.
_TABLES: Slot[RecordingTable] = Slot("store key and open array per recording")

Stamp = tuple[int, ...]


def source_stamp(path: str) -> Stamp | None:
    """What changes when a file, or a file it is read with (a BrainVision ``.eeg``,
    :func:`neuralset.studies.file_state.companion_files`), is replaced or rewritten: inode, size, mtime
    and ctime of each (None when the file cannot be read)."""
    stamp = _file_stamp(path)
    if stamp is None or not path.lower().endswith(_WITH_COMPANIONS):
        return stamp
    from ..studies.file_state import companion_files

    for part in companion_files(Path(path)):
        stamp += _file_stamp(str(part)) or (-1,)
    return stamp


#: Recordings that may be read with companion files (folders: CTF ``.ds``, EGI ``.mff``).
_WITH_COMPANIONS = (".vhdr", ".set", ".fif", ".fif.gz", ".ds", ".mff")


def _file_stamp(path: str) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class BatchRecordings(NamedTuple):
    """The recordings of one batch (sorted by event row) with their open stored arrays."""

    rows: np.ndarray
    arrays: list[np.ndarray]
    sfreq: np.ndarray
    n_samples: np.ndarray
    slots: np.ndarray
    table: RecordingTable

    def key(self, p: int) -> str:
        """Store key of the batch's ``p``-th recording."""
        return str(self.table.keys[int(self.slots[p])])


class _Arrays:
    """The open arrays of one store, per recording slot.

    ``data[s]`` refers to the array of the cache entry of slot ``s`` only while the cache keeps
    that entry: a weak reference to the entry clears it (and ``alive[s]``) when the cache
    closes it, so the table never keeps an array mapped past the cache's bounds.
    """

    __slots__ = ("data", "alive", "checked", "sfreq", "n_samples", "_refs")

    def __init__(self, m: int) -> None:
        self.data = np.full(m, None, dtype=object)
        self.alive = np.zeros(m, dtype=bool)
        self.checked = np.full(m, -math.inf)
        self.sfreq = np.full(m, math.nan)
        self.n_samples = np.zeros(m, dtype=np.int64)
        self._refs: dict[int, weakref.ref[MappedEntry]] = {}

    def hold(self, s: int, entry: MappedEntry) -> None:
        """Slot ``s`` refers to ``entry`` until the cache closes it."""

        def closed(ref: weakref.ref[MappedEntry], s: int = s) -> None:
            if self._refs.get(s) is ref:
                self.close(s)

        self._refs[s] = weakref.ref(entry, closed)
        self.data[s] = entry.opened.data
        self.alive[s] = True
        self.checked[s] = entry.checked
        self.sfreq[s] = entry.opened.sfreq
        self.n_samples[s] = entry.opened.data.shape[0]

    def close(self, s: int) -> None:
        """Slot ``s`` refers to no array (opened again through the cache on its next read)."""
        self._refs.pop(s, None)
        self.data[s] = None
        self.alive[s] = False
        self.checked[s] = -math.inf


class RecordingTable:
    """Store key and open stored array of every recording event of one events table.

    Built by :func:`recording_table` (memoised on the event index, per extractor). Slots are the
    positions of the recording rows among :attr:`rows` (the sorted event rows of the type).

    Parameters
    ----------
    events
        The events table.
    rows
        Sorted event rows of the extractor's event type.
    items
        The extractor's ``items(events)`` (whose keys are the store keys), called on the rows
        whose file is new or changed.
    label
        The event type, for errors.
    """

    def __init__(
        self,
        events: pd.DataFrame,
        rows: np.ndarray,
        items: Callable[[pd.DataFrame], list[Item]],
        label: str,
    ) -> None:
        m = len(rows)
        self.events = events
        self.rows = rows
        self.label = label
        self._items = items
        self.keys: list[str | None] = [None] * m
        self.stamps: list[Stamp | None] = [None] * m
        self.paths: list[str | None] = [None] * m
        self.checked = np.full(m, -math.inf)
        #: How many times a recording's key changed (its file was replaced).
        self.version = 0
        self.generation = MAPPED.generation
        self._arrays: dict[str, _Arrays] = {}

    def slots(self, rows: np.ndarray) -> np.ndarray:
        """Positions of event ``rows`` among the recording rows (an error for other rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        slots = np.searchsorted(self.rows, rows)
        if len(rows):
            found = slots < len(self.rows)
            found[found] = self.rows[slots[found]] == rows[found]
            if not found.all():
                bad = rows[~found][:3].tolist()
                raise ValueError(f"event rows {bad} are not {self.label} events")
        return slots

    def _limit(self) -> float:
        """Checks older than this (monotonic) time are due; after a write of this process
        (a new :attr:`MappedArrays.generation <neuralset.store.mapped.MappedArrays.generation>`)
        every check is."""
        if self.generation != MAPPED.generation:
            self.generation = MAPPED.generation
            self.checked[:] = -math.inf
            for arrays in self._arrays.values():
                arrays.checked[:] = -math.inf
        return time.monotonic() - MAPPED.recheck_s

    def keys_of(self, slots: np.ndarray) -> list[str]:
        """Store keys of the recordings at ``slots`` (their files checked as the module says)."""
        self._check_keys(slots, self._limit())
        keys = self.keys
        return [keys[s] for s in slots.tolist()]  # type: ignore[misc]

    def _check_keys(self, slots: np.ndarray, limit: float) -> None:
        due = self.checked[slots] <= limit
        if due.any():
            self._refresh_keys(np.unique(slots[due]))

    def _refresh_keys(self, due: np.ndarray) -> None:
        """Check the files of ``due`` slots; compute the key of those new or changed."""
        now = time.monotonic()
        missing = [s for s in due.tolist() if self.paths[s] is None]
        if missing:
            for s, path in zip(missing, source_path(self.events, self.rows[missing])):
                self.paths[s] = str(path)
        stale: list[tuple[int, Stamp | None]] = []
        for s in due.tolist():
            stamp = source_stamp(str(self.paths[s]))
            if self.keys[s] is not None and stamp is not None and self.stamps[s] == stamp:
                self.checked[s] = now
            else:
                stale.append((s, stamp))
        if not stale:
            return
        items = self._items(self.events.iloc[self.rows[[s for s, _ in stale]]])
        for (s, stamp), item in zip(stale, items, strict=True):
            old = self.keys[s]
            if old is not None and old != item.key:
                self.version += 1
                for arrays in self._arrays.values():
                    arrays.close(s)
            self.keys[s] = item.key
            self.stamps[s] = stamp
            self.checked[s] = now if stamp is not None else -math.inf

    def open(
        self, root: str, slots: np.ndarray, open_fn: Callable[[Hashable], Opened], memo: Memo
    ) -> BatchRecordings:
        """The recordings at ``slots`` (unique, sorted) with their open stored arrays.

        ``open_fn((root, key))`` opens one stored array (see :meth:`MappedArrays.entries
        <neuralset.store.mapped.MappedArrays.entries>`); ``memo`` is the event index's. When
        every recording was checked recently, this is a few numpy operations.
        """
        limit = self._limit()
        self._check_keys(slots, limit)
        arrays = self._arrays.get(root)
        if arrays is None:
            arrays = self._arrays[root] = _Arrays(len(self.rows))
        need = (arrays.checked[slots] <= limit) | ~arrays.alive[slots]
        if need.any():
            self._open_slots(arrays, root, slots[need], open_fn, memo)
        data = arrays.data[slots]  # (strong references from here on)
        if arrays.alive[slots].all():
            listed = data.tolist()
        else:  # the cache closed some while opening others: more than its bounds in one batch
            keys = [str(self.keys[s]) for s in slots.tolist()]
            listed = [
                e.opened.data for e in MAPPED.entries([(root, k) for k in keys], open_fn, memo)
            ]
        return BatchRecordings(
            self.rows[slots], listed, arrays.sfreq[slots], arrays.n_samples[slots], slots, self
        )

    def _open_slots(
        self,
        arrays: _Arrays,
        root: str,
        slots: np.ndarray,
        open_fn: Callable[[Hashable], Opened],
        memo: Memo,
    ) -> None:
        """Open, or check, through the cache the arrays of ``slots``."""
        keys = [str(self.keys[s]) for s in slots.tolist()]
        entries = MAPPED.entries([(root, k) for k in keys], open_fn, memo)
        for s, entry in zip(slots.tolist(), entries):
            arrays.hold(s, entry)


def recording_table(
    segments: Segments,
    etype: str,
    prepare_key: str,
    items: Callable[[pd.DataFrame], list[Item]],
) -> RecordingTable:
    """The :class:`RecordingTable` of ``segments``' events for one extractor (memoised)."""
    memo = segments.index.memo
    found = memo.get(_TABLES, prepare_key, etype)
    if found is not None:
        return found
    events = segments.events
    rows = np.flatnonzero((events["type"] == etype).to_numpy()).astype(np.int64)
    table = RecordingTable(events, rows, items, etype)
    return memo.get_or_set(_TABLES, lambda: table, prepare_key, etype)

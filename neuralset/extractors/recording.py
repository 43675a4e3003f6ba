"""Recording extractors: one stored, time-major series per recording event.

Reading gathers all the windows of a batch from each recording's memory-mapped array with one
vectorised fancy-index (see :class:`RecordingExtractor`).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from ..config import config
from ..memo import Memo, Slot
from ..segments import Segments
from ..store import MissingEntryError, Store
from ..store.mapped import MAPPED, Opened
from ..store.mapped import file_stamp as array_stamp
from . import buffers
from .base import (
    Computed,
    Extractor,
    ExtractorNotPreparedError,
    Item,
    OutOfBounds,
    OutOfBoundsError,
    Output,
    _finite_or_zero,
    events_label,
    source_identity,
    source_path,
)
from .recording_spans import (
    RecordingOverlapError,
    check_no_overlap,
    covering_recording,
    outside_error,
)

__all__ = ["RecordingExtractor", "RecordingOverlapError", "check_no_overlap", "file_stamp"]

#: Store key of each recording event row, per extractor ``prepare_key``, with the stamp of
#: the file it was derived from (see :func:`file_stamp`).
_RECORDING_KEYS: Slot[dict[int, tuple[str, tuple[int, ...] | None]]] = Slot(
    "store key and file stamp per recording row"
)
#: Source file of each recording event row.
_RECORDING_PATHS: Slot[dict[int, str]] = Slot("source file per recording row")
#: How many times a recording row's key changed (its file was replaced), per ``prepare_key``:
#: memos derived from the keys (channel layouts) are qualified by it.
_KEYS_VERSION: Slot[list[int]] = Slot("recording keys version")


@config
class RecordingExtractor(Extractor):
    """An extractor with one stored, time-major series per recording event.

    Subclasses implement :meth:`compute_recording` returning ``(data, sfreq, meta)`` with
    ``data`` shaped ``(time, *features)`` and sample 0 at the recording event's ``start``.

    Parameters
    ----------
    content_hash
        Key each recording by a hash of its file's content instead of its size and modification
        time (slower to key; survives copies that change modification times).
    """

    content_hash: bool = False

    def items(self, events: pd.DataFrame) -> list[Item]:
        rows = np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())
        paths = source_path(events, rows)
        roots = (
            events["study_root"].to_numpy()[rows]
            if "study_root" in events.columns
            else [None] * len(rows)
        )
        out = []
        for row, path, root in zip(rows, paths, roots):
            ev = events.iloc[int(row)]
            ident = source_identity(
                path, root if isinstance(root, str) else None, content_hash=self.content_hash
            )
            payload = {
                "path": str(path),
                "row": int(row),
                "start": float(ev["start"]),
                "duration": float(ev["duration"]),
                "offset": _finite_or_zero(ev.get("offset", 0.0)),
                "timeline": str(ev["timeline"]),
            }
            key = self.item_key(ident, payload["offset"], payload["duration"])
            out.append(Item(key=key, label=str(path), payload=payload))
        return out

    def check_table(self, events: pd.DataFrame) -> None:
        """The base checks, then: recordings of one timeline do not overlap (a window there
        could be read from either; see :func:`check_no_overlap`)."""
        super().check_table(events)
        check_no_overlap(events, self.resolved_event_type)

    def compute(self, item: Item) -> Computed:
        data, sfreq, meta = self.compute_recording(item.payload)
        data = np.ascontiguousarray(data, dtype=np.float32)
        return Computed(arrays={"data": data}, meta={"sfreq": float(sfreq), **meta})

    @abc.abstractmethod
    def compute_recording(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        """``(data, sfreq, meta)`` of a recording: ``data`` is ``(time, *features)``."""

    def _recording_keys(
        self, segments: Segments, *, out_of_bounds: OutOfBounds = "error"
    ) -> tuple[np.ndarray, dict[int, str]]:
        """Recording row of each segment (-1 if none) and the store key per row.

        The recording is the one spanning the segment's start; with ``out_of_bounds="pad"`` a
        segment starting before every recording takes the first recording it overlaps.
        """
        etype = self.resolved_event_type
        index = segments.index
        rows = covering_recording(segments, etype)
        if out_of_bounds == "pad" and (rows < 0).any():
            lacking = np.flatnonzero(rows < 0)
            seg, ev = index.overlapping(
                segments.timeline[lacking], segments.start[lacking], segments.stop[lacking], etype
            )
            if len(seg):
                first_pair = np.unique(seg, return_index=True)[1]
                rows[lacking[seg[first_pair]]] = ev[first_pair]
        return rows, self.recording_keys(segments, np.unique(rows[rows >= 0]))

    def recording_keys(self, segments: Segments, rows: np.ndarray) -> dict[int, str]:
        """Store key of the recording at each event row of ``rows`` (recording events).

        Memoised on the segments' event index (:attr:`~neuralset.events.index.EventIndex.memo`),
        which every selection of the same segments shares, and revalidated on every call by
        one ``os.stat`` of each recording file: a file replaced since (new inode, size, mtime
        or ctime) gets its key computed again (hashed again with ``content_hash``), so the
        same segments never read the entry of the file it replaced.
        """
        memo = segments.index.memo
        table = memo.table(_RECORDING_KEYS, self.prepare_key)
        paths = memo.table(_RECORDING_PATHS)
        needed: list[int] = np.asarray(rows, dtype=np.int64).tolist()
        out: dict[int, str] = {}
        stale: list[tuple[int, tuple[int, ...] | None]] = []
        for row in needed:
            path = paths.get(row)
            if path is None:
                path = paths[row] = str(source_path(segments.events, [row])[0])
            stamp = file_stamp(path)
            hit = table.get(row)
            if hit is not None and stamp is not None and hit[1] == stamp:
                out[row] = hit[0]
            else:
                stale.append((row, stamp))
        if stale:
            rows_ = [r for r, _ in stale]
            for (row, stamp), item in zip(stale, self.items(segments.events.iloc[rows_])):
                old = table.get(row)
                if old is not None and old[0] != item.key:
                    memo.get_or_set(_KEYS_VERSION, lambda: [0], self.prepare_key)[0] += 1
                table[row] = (item.key, stamp)
                out[row] = item.key
        return {r: out[r] for r in needed}

    def keys_version(self, segments: Segments) -> int:
        """How many times :meth:`recording_keys` found a recording file replaced (for the
        memos derived from the keys)."""
        return segments.index.memo.get_or_set(_KEYS_VERSION, lambda: [0], self.prepare_key)[0]

    def _open_recording(
        self, store: Store, key: str, events: pd.DataFrame, row: int, memo: Memo | None = None
    ) -> tuple[np.ndarray, float]:
        """The memory-mapped stored series of a recording and its rate.

        Kept open in the process's bounded cache (:mod:`neuralset.extractors.mapped`) and
        revalidated there. Only a missing entry is "not prepared": a damaged, deleted or
        unreadable array file raises the store's error naming it.
        """
        (opened,) = self._open_recordings(store, [key], events, [row], memo or Memo())
        return opened.data, opened.sfreq

    def _open_recordings(
        self, store: Store, keys: list[str], events: pd.DataFrame, rows: list[int], memo: Memo
    ) -> list[Opened]:
        """:meth:`_open_recording` of several recordings (one cache pass for a batch)."""
        root = str(store.root)
        row_of = dict(zip(keys, rows))

        def open_fn(cache_key: Any) -> Opened:
            key = cache_key[1]
            try:
                # a plain ndarray view of the memory map: same pages, no np.memmap overhead
                data = store.get_arrays(key)["data"].view(np.ndarray)
                sfreq = float(store.meta(key)["sfreq"])
                path = str(store.array_dir(key) / "data.npy")
                return Opened(data, sfreq, path, array_stamp(path))
            except MissingEntryError as err:  # damaged or unreadable files raise as themselves
                raise ExtractorNotPreparedError(
                    f"{type(self).__name__} has no stored data for "
                    f"{events_label(events, row_of[key])}; "
                    "call extractor.prepare(events, store) (or dataset.prepare()) first"
                ) from err

        return MAPPED.get_many([(root, k) for k in keys], open_fn, memo)

    def warm_up(self, segments: Segments, store: Store) -> None:
        """Compute the store key of every recording and open them (before workers fork)."""
        rows = np.unique(covering_recording(segments, self.resolved_event_type))
        keys = self.recording_keys(segments, rows[rows >= 0])
        for row, key in list(keys.items())[: MAPPED.max_count]:
            self._open_recording(store, key, segments.events, row, segments.index.memo)

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        rec_rows, keys = self._recording_keys(segments, out_of_bounds=out_of_bounds)
        if out_of_bounds != "drop" and (rec_rows < 0).any():
            raise outside_error(segments, rec_rows, self.resolved_event_type)
        rate = self.frequency
        if rate is None and keys:  # "keep each file's rate": the batch's recordings must agree
            rate = self._stored_rate(store, keys, segments)
        if self.output == "dynamic":
            return self._read_windows(segments, store, rec_rows, keys, out_of_bounds, rate)
        return self._read_static(segments, store, rec_rows, keys, out_of_bounds)

    def _recordings(
        self, segments: Segments, store: Store, rec_rows: np.ndarray, keys: dict[int, str]
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, float, float]]:
        """``(row, positions, data, sfreq, start)`` of each recording read by the batch."""
        all_rows = len(keys) == 1 and bool((rec_rows >= 0).all())
        event_start = segments.index.event_start
        memo = segments.index.memo
        for row, key in keys.items():
            which = np.arange(len(segments)) if all_rows else np.flatnonzero(rec_rows == row)
            data, sfreq = self._open_recording(store, key, segments.events, row, memo)
            if self.frequency is not None and abs(sfreq - self.frequency) > 1e-6:
                raise ValueError(
                    f"stored recording {key} is at {sfreq} Hz but the extractor asks {self.frequency} Hz"
                )
            yield row, which, data, sfreq, float(event_start[row])

    def _read_windows(
        self,
        segments: Segments,
        store: Store,
        rec_rows: np.ndarray,
        keys: dict[int, str],
        out_of_bounds: OutOfBounds,
        rate: float | None,
    ) -> Output:
        """Dynamic output ``(batch, *features, time)`` at ``rate``.

        Each window inside its recording is one slice copied straight into the output (time
        moved last); windows running past a recording take the padded path.
        """
        n = len(segments)
        n_times = self._window_samples(segments, rate)
        rows = np.fromiter(keys, dtype=np.int64, count=len(keys))
        if not len(rows):
            out = np.zeros((n, 0, n_times), dtype=np.float32)
            return _windows_output(out, None, rec_rows, out_of_bounds)
        memo = segments.index.memo
        opened = self._open_recordings(
            store, [keys[r] for r in rows.tolist()], segments.events, rows.tolist(), memo
        )
        self._check_rates(segments, store, rows, [o.sfreq for o in opened], keys)
        arrays = [o.data for o in opened]
        has = rec_rows >= 0
        pos = np.where(has, np.searchsorted(rows, rec_rows), 0)
        rec_start = segments.index.event_start[rows][pos]
        sfreq = np.array([o.sfreq for o in opened])[pos]
        first = np.round((segments.start - rec_start) * sfreq).astype(np.int64)
        n_rec = np.array([a.shape[0] for a in arrays], dtype=np.int64)[pos]
        inside = has & (first >= 0) & (first + n_times <= n_rec)
        # rows without a recording only exist with out_of_bounds="drop" and are dropped
        out = buffers.empty((n, *arrays[0].shape[1:], n_times), np.float32)
        buffers.copy_windows(out, arrays, pos, first, inside, n_times)
        mask = None
        if not inside.all():
            mask = np.ones((n, n_times), dtype=bool)
            mask[~has] = False
            partial = np.flatnonzero(has & ~inside)
            for p in np.unique(pos[partial]).tolist():
                which = partial[pos[partial] == p]
                mask[which] = self._read_partial(
                    out, which, arrays[p], first[which], n_times, out_of_bounds,
                    (segments, int(rows[p]), float(sfreq[which[0]])),
                )  # fmt: skip
        return _windows_output(out, mask, rec_rows, out_of_bounds)

    def _check_rates(
        self,
        segments: Segments,
        store: Store,
        rows: np.ndarray,
        rates: list[float],
        keys: dict[int, str],
    ) -> None:
        if self.frequency is None:
            return
        for row, sfreq in zip(rows.tolist(), rates):
            if abs(sfreq - self.frequency) > 1e-6:
                raise ValueError(
                    f"stored recording {keys[row]} is at {sfreq} Hz but the extractor asks "
                    f"{self.frequency} Hz"
                )

    def _read_partial(
        self,
        out: np.ndarray,
        which: np.ndarray,
        data: np.ndarray,
        first: np.ndarray,
        n_times: int,
        out_of_bounds: OutOfBounds,
        where: tuple[Segments, int, float],
    ) -> np.ndarray:
        """Windows of one recording that run past its start or end: zero outside (the mask)."""
        segments, row, sfreq = where
        idx = first[:, None] + np.arange(n_times)[None, :]
        n_rec = data.shape[0]
        valid = (idx >= 0) & (idx < n_rec)
        self._check_bounds(valid, which, out_of_bounds, segments, row, n_rec, sfreq)
        gathered = np.take(data, np.clip(idx, 0, n_rec - 1), axis=0)
        gathered[~valid] = 0
        out[which] = np.moveaxis(gathered, 1, -1)
        return valid

    def _stored_rate(self, store: Store, keys: dict[int, str], segments: Segments) -> float:
        """With ``frequency=None``: the one rate the batch's recordings are stored at."""
        rates = {
            row: self._open_recording(store, key, segments.events, row, segments.index.memo)[1]
            for row, key in keys.items()
        }
        distinct = sorted(set(rates.values()))
        if len(distinct) > 1:
            first = next(r for r, v in rates.items() if v == distinct[0])
            other = next(r for r, v in rates.items() if v == distinct[1])
            raise ValueError(
                f"{type(self).__name__}.frequency is None (each file's rate), but this batch mixes "
                f"{events_label(segments.events, first)} at {distinct[0]:g} Hz and "
                f"{events_label(segments.events, other)} at {distinct[1]:g} Hz; set "
                f"{type(self).__name__}.frequency to resample every recording to one rate"
            )
        return float(distinct[0])

    def _window_samples(self, segments: Segments, rate: float | None) -> int:
        """Samples per dynamic window at ``rate`` (segments of a batch share one duration)."""
        if not len(segments):
            return 0
        dur = segments.duration
        if float(dur.max() - dur.min()) > 1e-8 + 1e-5 * abs(float(dur[0])):
            raise ValueError("dynamic outputs need segments of equal duration within a batch")
        return int(round(float(dur[0]) * rate)) if rate else 0

    def _read_static(
        self,
        segments: Segments,
        store: Store,
        rec_rows: np.ndarray,
        keys: dict[int, str],
        out_of_bounds: OutOfBounds,
    ) -> Output:
        """Static output ``(batch, *features)``: the window mean, or the sample at the trigger."""
        chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        feature_shape: tuple[int, ...] = (0,)
        for row, which, data, sfreq, rec_start in self._recordings(segments, store, rec_rows, keys):
            feature_shape = data.shape[1:]
            idx = self._static_samples(segments, which, rec_start, sfreq)
            n_rec = data.shape[0]
            valid = (idx >= 0) & (idx < n_rec)
            self._check_bounds(valid, which, out_of_bounds, segments, row, n_rec, sfreq)
            # (k, time, *features); float32 before summing (a float16 store would overflow)
            gathered = data[np.clip(idx, 0, n_rec - 1)].astype(np.float32, copy=False)
            expand = (1,) * len(feature_shape)
            if not valid.all():
                gathered = np.where(valid.reshape(valid.shape + expand), gathered, 0)
            if self.aggregation == "mean":
                gathered = gathered.sum(axis=1) / np.maximum(valid.sum(axis=1), 1).reshape(
                    (-1, *expand)
                )
            else:
                gathered = gathered[:, 0]
            chunks.append((which, np.asarray(gathered, dtype=np.float32), valid))
        return _assemble_static(len(segments), chunks, feature_shape, out_of_bounds, rec_rows)

    def _static_samples(
        self, segments: Segments, which: np.ndarray, rec_start: float, sfreq: float
    ) -> np.ndarray:
        """``(k, width)`` sample indices averaged (``"mean"``) or taken (``"trigger"``)."""
        if self.aggregation == "trigger":
            trigger_start = segments.index.event_start[np.maximum(segments.trigger[which], 0)]
            return np.round((trigger_start - rec_start) * sfreq).astype(np.int64)[:, None]
        first = np.round((segments.start[which] - rec_start) * sfreq).astype(np.int64)
        lengths = np.round(segments.duration[which] * sfreq).astype(np.int64)
        width = int(lengths.max()) if len(lengths) else 0
        return first[:, None] + np.arange(max(width, 1))[None, :]

    def _check_bounds(
        self,
        valid: np.ndarray,
        which: np.ndarray,
        out_of_bounds: str,
        segments: Segments,
        row: int,
        n_rec: int,
        sfreq: float,
    ) -> None:
        if out_of_bounds != "error":
            return
        ok_rows = valid.all(axis=1)
        if not ok_rows.all():
            bad = which[~ok_rows][:3]
            raise OutOfBoundsError(
                f"segments {bad.tolist()} run past the start or end of {events_label(segments.events, row)} "
                f"({n_rec} samples at {sfreq} Hz); pass out_of_bounds='drop' or 'pad', "
                "or shorten the windows"
            )


def file_stamp(path: str) -> tuple[int, ...] | None:
    """What changes when a file is replaced or rewritten: inode, size, mtime and ctime (None
    when it cannot be read)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _assemble_static(
    n: int,
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    feature_shape: tuple[int, ...],
    out_of_bounds: str,
    rec_rows: np.ndarray,
) -> Output:
    """The static output of a batch from its per-recording chunks ``(positions, values, valid)``."""
    data = np.zeros((n, *feature_shape), dtype=np.float32)
    mask = np.zeros((n, 1), dtype=bool)
    for which, values, valid in chunks:
        data[which] = values
        mask[which] = valid.all(axis=1, keepdims=True)
    keep = rec_rows >= 0
    if out_of_bounds == "drop":
        keep &= mask.all(axis=1)
        return Output(data=data[keep], keep=keep)
    if out_of_bounds == "pad":
        return Output(data=data, mask=mask)
    return Output(data=data)


def _windows_output(
    out: np.ndarray, mask: np.ndarray | None, rec_rows: np.ndarray, out_of_bounds: str
) -> Output:
    """The dynamic output with its mask (``"pad"``) or kept rows (``"drop"``)."""
    mask_all = np.asarray(rec_rows >= 0 if mask is None else mask.all(axis=1))
    if out_of_bounds == "drop":
        keep = (rec_rows >= 0) & mask_all
        return Output(data=out if keep.all() else out[keep], keep=keep)
    if out_of_bounds == "pad":
        if mask is None:
            mask = np.repeat((rec_rows >= 0)[:, None], out.shape[-1], axis=1)
        return Output(data=out, mask=mask)
    return Output(data=out)

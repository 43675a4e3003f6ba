"""Recording extractors: one stored, time-major series per recording event.

Reading gathers all the windows of a batch from each recording's memory-mapped array with one
vectorised fancy-index (see :class:`RecordingExtractor`).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Hashable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from ..config import config
from ..hashing import KEY_EXCLUDED
from ..memo import Memo
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
from .recording_table import BatchRecordings, RecordingTable, recording_table, source_stamp

__all__ = ["RecordingExtractor", "RecordingOverlapError", "check_no_overlap", "file_stamp"]


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
    time_major
        Dynamic reads keep time as the slowest axis after the batch in memory: the output still
        has the shape ``(batch, *features, time)``, as a strided view of a ``(batch, time,
        *features)`` array (as torch's ``channels_last``). Each window is then one block copy of
        the stored rows instead of a transposing copy (fMRI volumes read about 1.5x as fast),
        and the transposition, if the model needs one, happens where the batch is used (on the
        GPU, say). Tensors built on these arrays are not contiguous: ``.reshape`` works,
        ``.view`` across the last axes does not. Changes no value, hence no key.
    """

    content_hash: bool = False
    time_major: bool = dataclasses.field(default=False, metadata=KEY_EXCLUDED)

    def items(self, events: pd.DataFrame) -> list[Item]:
        rows = np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())
        paths = source_path(events, rows)
        columns = events.columns

        def column(name: str, default: Any = None) -> list[Any]:
            if name not in columns:
                return [default] * len(rows)
            return events[name].iloc[rows].tolist()  # type: ignore[no-any-return]

        out = []
        for row, path, root, start, duration, offset, timeline in zip(
            rows.tolist(),
            paths,
            column("study_root"),
            column("start"),
            column("duration"),
            column("offset", 0.0),
            column("timeline"),
        ):
            ident = source_identity(
                path, root if isinstance(root, str) else None, content_hash=self.content_hash
            )
            payload = {
                "path": str(path),
                "row": row,
                "start": float(start),
                "duration": float(duration),
                "offset": _finite_or_zero(offset),
                "timeline": str(timeline),
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

    def sample_index(self, seconds: np.ndarray, sfreq: np.ndarray | float) -> np.ndarray:
        """Sample nearest to each time from a recording's start: numpy's ``round``, as MNE's
        ``time_as_index`` (a tie goes to the even sample); fMRI takes the later one."""
        return np.round(np.asarray(seconds) * sfreq).astype(np.int64)

    def _covering(self, segments: Segments, out_of_bounds: OutOfBounds) -> np.ndarray:
        """Recording row of each segment (-1 if none).

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
        return rows

    def store_keys_of(self, segments: Segments) -> list[str]:
        """The store key of each recording, from the recording table the reads use (computed
        there once, for the check and the reads)."""
        table = self.recording_table(segments)
        return table.keys_of(np.arange(len(table.rows)))

    def recording_table(self, segments: Segments) -> RecordingTable:
        """Store key and open array of each recording of ``segments``' events (memoised on
        their event index; see :mod:`neuralset.extractors.recording_table`)."""
        return recording_table(segments, self.resolved_event_type, self.prepare_key, self.items)

    def recording_keys(self, segments: Segments, rows: np.ndarray) -> dict[int, str]:
        """Store key of the recording at each event row of ``rows`` (recording events).

        Memoised on the segments' event index (:attr:`~neuralset.events.index.EventIndex.memo`),
        which every selection of the same segments shares. Each recording file is checked
        again (one ``os.stat``) at most once per ``MAPPED.recheck_s`` seconds, and at once
        after this process prepares or writes the store: a file replaced since (new inode,
        size, mtime or ctime) gets its key computed again (hashed again with
        ``content_hash``), so the same segments stop reading the entry of the file it replaced
        (see :mod:`neuralset.extractors.recording_table`).
        """
        table = self.recording_table(segments)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        return dict(zip(rows.tolist(), table.keys_of(table.slots(rows))))

    def keys_version(self, segments: Segments) -> int:
        """How many times :meth:`recording_keys` found a recording file replaced (for the
        memos derived from the keys)."""
        return self.recording_table(segments).version

    def _open_recording(
        self, store: Store, key: str, events: pd.DataFrame, row: int, memo: Memo | None = None
    ) -> tuple[np.ndarray, float]:
        """The memory-mapped stored series of a recording and its rate.

        Kept open in the process's bounded cache (:mod:`neuralset.store.mapped`) and
        revalidated there. Only a missing entry is "not prepared": a damaged, deleted or
        unreadable array file raises the store's error naming it.
        """
        opened = MAPPED.get_many(
            [(str(store.root), key)], self._opener(store, events, {key: row}.get), memo or Memo()
        )[0]
        return opened.data, opened.sfreq

    def _opener(self, store: Store, events: pd.DataFrame, row_of: Any) -> Any:
        """``open_fn((root, key))`` of the store's cache; ``row_of(key)`` names the event."""

        def open_fn(cache_key: Hashable) -> Opened:
            key = cache_key[1]  # type: ignore[index]
            try:
                # a plain ndarray view of the memory map: same pages, no np.memmap overhead
                data = store.get_arrays(key)["data"].view(np.ndarray)
                sfreq = float(store.meta(key)["sfreq"])
                path = str(store.array_dir(key) / "data.npy")
                return Opened(data, sfreq, path, array_stamp(path))
            except MissingEntryError as err:  # damaged or unreadable files raise as themselves
                raise ExtractorNotPreparedError(
                    f"{type(self).__name__} has no stored data for "
                    f"{events_label(events, row_of(key))}; "
                    "call extractor.prepare(events, store) (or dataset.prepare()) first"
                ) from err

        return open_fn

    def _open_batch(self, segments: Segments, store: Store, rows: np.ndarray) -> BatchRecordings:
        """The recordings at event ``rows`` (unique, sorted) with their open stored arrays."""
        table = self.recording_table(segments)

        def row_of(key: str) -> int:
            return int(table.rows[table.keys.index(key)])

        return table.open(
            str(store.root),
            table.slots(rows),
            self._opener(store, segments.events, row_of),
            segments.index.memo,
        )

    def warm_up(self, segments: Segments, store: Store) -> None:
        """Compute the store key of every recording and open them (before workers fork)."""
        rows = np.unique(covering_recording(segments, self.resolved_event_type))
        rows = rows[rows >= 0]
        self.recording_keys(segments, rows)
        self._open_batch(segments, store, rows[: MAPPED.max_count])

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        rec_rows = self._covering(segments, out_of_bounds)
        has = rec_rows >= 0
        if out_of_bounds != "drop" and not has.all():
            raise outside_error(segments, rec_rows, self.resolved_event_type)
        # each segment's position among the batch's recordings (0 where it has none); a
        # sorted unique plus a binary search costs a third of np.unique(return_inverse=True)
        present = rec_rows[has]
        rows = np.unique(present)
        pos = np.zeros(len(rec_rows), dtype=np.int64)
        pos[has] = np.searchsorted(rows, present)
        batch = self._open_batch(segments, store, rows)
        rate = self.frequency
        if rate is None and len(rows):  # "keep each file's rate": the batch's must agree
            rate = self._stored_rate(batch, segments)
        self._check_rates(batch)
        if self.output == "dynamic":
            return self._read_windows(segments, batch, rec_rows, pos, out_of_bounds, rate)
        return self._read_static(segments, batch, rec_rows, pos, out_of_bounds)

    def _recordings(
        self, segments: Segments, batch: BatchRecordings, rec_rows: np.ndarray, pos: np.ndarray
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, float, float]]:
        """``(row, positions, data, sfreq, start)`` of each recording read by the batch."""
        all_rows = len(batch.rows) == 1 and bool((rec_rows >= 0).all())
        event_start = segments.index.event_start
        for p, row in enumerate(batch.rows.tolist()):
            which = (
                np.arange(len(segments))
                if all_rows
                else np.flatnonzero((pos == p) & (rec_rows >= 0))
            )
            yield row, which, batch.arrays[p], float(batch.sfreq[p]), float(event_start[row])

    def _read_windows(
        self,
        segments: Segments,
        batch: BatchRecordings,
        rec_rows: np.ndarray,
        pos: np.ndarray,
        out_of_bounds: OutOfBounds,
        rate: float | None,
    ) -> Output:
        """Dynamic output ``(batch, *features, time)`` at ``rate``.

        Each window inside its recording is one slice copied straight into the output (time
        moved last); windows running past a recording take the padded path. The cost per
        batch beyond the copies is a few numpy operations, whatever the number of recordings.
        """
        n = len(segments)
        n_times = self._window_samples(segments, rate)
        if not len(batch.rows):
            out = np.zeros((n, 0, n_times), dtype=np.float32)
            return _windows_output(out, None, rec_rows, out_of_bounds)
        arrays = batch.arrays
        has = rec_rows >= 0
        rec_start = segments.index.event_start[batch.rows][pos]
        sfreq = batch.sfreq[pos]
        first = self.sample_index(segments.start - rec_start, sfreq)
        inside = has & (first >= 0) & (first + n_times <= batch.n_samples[pos])
        # rows without a recording only exist with out_of_bounds="drop" and are dropped
        features = arrays[0].shape[1:]
        if self.time_major:  # (batch, time, *features) in memory, seen time last
            block = buffers.empty((n, n_times, *features), np.float32)
            buffers.copy_windows(block, arrays, pos, first, inside, n_times, time_first=True)
            out = buffers.time_last(block)
        else:
            out = buffers.empty((n, *features, n_times), np.float32)
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
                    (segments, int(batch.rows[p]), float(sfreq[which[0]])),
                )  # fmt: skip
        return _windows_output(out, mask, rec_rows, out_of_bounds)

    def _check_rates(self, batch: BatchRecordings) -> None:
        """The stored rates of the batch's recordings are the extractor's ``frequency``."""
        if self.frequency is None:
            return
        bad = np.flatnonzero(np.abs(batch.sfreq - self.frequency) > 1e-6)
        if len(bad):
            raise ValueError(
                f"stored recording {batch.key(int(bad[0]))} is at {batch.sfreq[bad[0]]} Hz but "
                f"the extractor asks {self.frequency} Hz"
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

    def _stored_rate(self, batch: BatchRecordings, segments: Segments) -> float:
        """With ``frequency=None``: the one rate the batch's recordings are stored at."""
        if (batch.sfreq == batch.sfreq[0]).all():  # the usual case, without a sort
            return float(batch.sfreq[0])
        distinct = np.unique(batch.sfreq)
        if len(distinct) > 1:
            first = int(batch.rows[np.flatnonzero(batch.sfreq == distinct[0])[0]])
            other = int(batch.rows[np.flatnonzero(batch.sfreq == distinct[1])[0]])
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
        batch: BatchRecordings,
        rec_rows: np.ndarray,
        pos: np.ndarray,
        out_of_bounds: OutOfBounds,
    ) -> Output:
        """Static output ``(batch, *features)``: the window mean, or the sample at the trigger."""
        chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        feature_shape: tuple[int, ...] = (0,)
        for row, which, data, sfreq, rec_start in self._recordings(segments, batch, rec_rows, pos):
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
        """``(k, width)`` sample indices averaged (``"mean"``) or taken (``"trigger"``: at the
        trigger's onset, or at the start of a segment without trigger, a sliding window)."""
        if self.aggregation == "trigger":  # a segment without trigger: its start, as baseline
            trigger = segments.trigger[which]
            onset = np.where(
                trigger >= 0,
                segments.index.event_start[np.maximum(trigger, 0)],
                segments.start[which],
            )
            return self.sample_index(onset - rec_start, sfreq)[:, None]
        first = self.sample_index(segments.start[which] - rec_start, sfreq)
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
            short = int((~valid[~ok_rows]).sum(axis=1).max())
            why = (  # a window ending at the recording's end, its start and length each rounded
                f"by one sample of rounding to the {sfreq:g} Hz grid (the window's first sample "
                "and its length are rounded apart); "
                if short == 1
                else f"by up to {short} samples; "
            )
            raise OutOfBoundsError(
                f"segments {bad.tolist()} run past the start or end of "
                f"{events_label(segments.events, row)} ({n_rec} samples at {sfreq:g} Hz) {why}"
                "pass out_of_bounds='drop' or 'pad' (zeros, masked), or shorten the windows"
            )


#: What changes when a file is replaced or rewritten (see
#: :func:`~neuralset.extractors.recording_table.source_stamp`).
file_stamp = source_stamp


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

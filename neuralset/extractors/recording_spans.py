"""Where a window of a recording extractor is read: the recording covering it.

Each timeline usually holds one recording of a type (one subject, session or run): the
recording of a window is then a table lookup (:func:`covering_recording`). Several recordings
on one timeline must follow one another; overlapping ones are an error naming them
(:func:`check_no_overlap`), raised by ``prepare`` and by every read, since a window there
could come from either.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..events.index import EventIndex
from ..memo import Slot
from ..segments import Segments
from .base import OutOfBoundsError, events_label

__all__ = [
    "RecordingOverlapError",
    "check_no_overlap",
    "covering_recording",
    "nearest_sample",
    "outside_error",
]

#: Per event type: the span of each timeline's one recording (None: several per timeline).
_RECORDING_SPANS: Slot[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = Slot(
    "recording span table"
)


def nearest_sample(seconds: np.ndarray | float, sfreq: np.ndarray | float) -> np.ndarray:
    """Index of the sample nearest to each time (seconds from the recording's first sample).

    ``floor(t * sfreq + 0.5)``: a time halfway between two samples takes the later one, the
    first sample inside a window ``[t, ...)``. numpy's ``round`` takes the even one instead,
    which sends onsets 1, 3, 5, 7 s at TR 2 s to volumes 0, 2, 2, 4 (two events 2 s apart
    on one volume, lags alternating between -1 s and +1 s). fMRI reads use this (the
    volumes of :class:`~neuralset.extractors.neural.fmri.FmriExtractor` and the HRF
    regressors on the same grid); MNE recordings keep numpy's rounding, MNE's own.

    Examples
    --------
    >>> nearest_sample(np.array([1.0, 3.0, 5.0, 7.0, 5.9]), 0.5).tolist()
    [1, 2, 3, 4, 3]
    """
    pos = np.asarray(seconds, dtype=np.float64) * sfreq
    return np.floor(pos + (0.5 + 1e-6)).astype(np.int64)  # 1e-6: float error at exact halves


def outside_error(segments: Segments, rec_rows: np.ndarray, etype: str) -> OutOfBoundsError:
    """Segments that start in no recording: without any recording on their timeline (drop them
    with ``require``), or beside one (before its start or past its end: pad, drop or move)."""
    lacking = np.flatnonzero(rec_rows < 0)
    near = segments.select(lacking).has_type(etype)
    if not near.all():
        bad = lacking[~near][:3]
        return OutOfBoundsError(
            f"segments {bad.tolist()} lie in no {etype} recording of their timeline; drop them "
            f"with segments.require('{etype}') or read with out_of_bounds='drop'"
        )
    first = int(lacking[0])
    seg, ev = segments.index.overlapping(
        segments.timeline[[first]], segments.start[[first]], segments.stop[[first]], etype
    )
    row = int(ev[0])
    start = float(segments.events["start"].iloc[row])
    stop = start + float(segments.events["duration"].iloc[row])
    where = "before the start" if segments.start[first] < start else "past the end"
    return OutOfBoundsError(
        f"segments {lacking[:3].tolist()} start outside their {etype} recording (segment "
        f"{first} starts at {segments.start[first]:g} s, {where} of "
        f"{events_label(segments.events, row)}, which spans {start:g} to {stop:g} s); read "
        "with out_of_bounds='pad' (zeros, with a mask) or 'drop', or change the segments' offset"
    )


def covering_recording(
    segments: Segments, etype: str, start: np.ndarray | None = None
) -> np.ndarray:
    """``segments.index.covering(timeline, start, start, etype)``, with a lookup-table fast path.

    ``start`` defaults to the segments' starts (an fMRI read passes them shifted by the
    hemodynamic delay). When each timeline has at most one event of ``etype`` (the usual one
    recording per timeline), the answer is a table lookup plus two comparisons, instead of a
    grouped binary search; the table is memoised on the event index.
    """
    index = segments.index
    s = segments.start if start is None else start
    spans = index.memo.get_or_set(_RECORDING_SPANS, lambda: _span_table(index, etype), etype)
    if spans is None:
        return index.covering(segments.timeline, s, s, etype)
    row_of, lo, hi = spans
    tl = segments.timeline
    ok = (lo[tl] <= s) & (hi[tl] >= s - 1e-9)
    return np.where(ok, row_of[tl], -1)


class RecordingOverlapError(ValueError):
    """Two recordings of one type overlap on a timeline: a window there is ambiguous."""


def check_no_overlap(events: pd.DataFrame, etype: str) -> None:
    """Raise :class:`RecordingOverlapError` naming two ``etype`` recordings that overlap on one
    timeline (one after the other is fine: each window is read from the one covering it)."""
    rows = np.flatnonzero((events["type"] == etype).to_numpy())
    if len(rows) < 2:
        return
    tl = events["timeline"].cat.codes.to_numpy()[rows]
    start = events["start"].to_numpy()[rows]
    stop = start + events["duration"].to_numpy()[rows]
    order = np.lexsort((start, tl))
    tl, start, stop, rows = tl[order], start[order], stop[order], rows[order]
    ends = _running_stop(tl, stop)
    clash = np.flatnonzero((tl[1:] == tl[:-1]) & (start[1:] < ends[:-1] - 1e-9))
    if not len(clash):
        return
    later = int(clash[0]) + 1
    earlier = int(np.flatnonzero((tl == tl[later]) & (stop > start[later] + 1e-9))[0])
    a, b = int(rows[earlier]), int(rows[later])
    raise RecordingOverlapError(
        f"{etype} recordings overlap on timeline {str(events['timeline'].iloc[a])!r}: "
        f"{_span_label(events, a)} and {_span_label(events, b)}; a window there could be read "
        "from either. Give each recording its own timeline (one per subject, session or run), "
        "or keep one of them (a Query on the events; BidsStudy(spaces=...) for fMRI spaces)"
    )


def _running_stop(tl: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Per position (sorted by timeline then start), the latest stop so far on its timeline."""
    out = stop.copy()
    cut = np.flatnonzero(tl[1:] != tl[:-1]) + 1
    for a, b in zip(np.r_[0, cut], np.r_[cut, len(tl)]):
        out[a:b] = np.maximum.accumulate(stop[a:b])
    return out


def _span_label(events: pd.DataFrame, row: int) -> str:
    ev = events.iloc[row]
    start, stop = float(ev["start"]), float(ev["start"]) + float(ev["duration"])
    return f"{ev.get('filepath', f'row {row}')} (row {row}, {start:g} to {stop:g} s)"


def _span_table(index: EventIndex, etype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per timeline code: the row, start and stop of its one ``etype`` event (None when a
    timeline has several, which must not overlap)."""
    events = index.events
    rows = np.flatnonzero((events["type"] == etype).to_numpy())
    tl = events["timeline"].cat.codes.to_numpy().astype(np.int64)[rows]
    n_tl = len(index.timelines)
    if len(rows) and np.bincount(tl, minlength=n_tl).max() > 1:
        check_no_overlap(events, etype)
        return None
    start = events["start"].to_numpy()[rows]
    stop = np.maximum(start + events["duration"].to_numpy()[rows], np.nextafter(start, np.inf))
    row_of = np.full(n_tl, -1, dtype=np.int64)
    lo = np.full(n_tl, np.inf)
    hi = np.full(n_tl, -np.inf)
    row_of[tl], lo[tl], hi[tl] = rows, start, stop
    return row_of, lo, hi

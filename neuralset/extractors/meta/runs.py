"""Reading windows of per-run series that a wrapper stored itself (e.g. HRF regressors).

A *run* is an event of a grid type (``Fmri``) whose stored array is time-major,
``(time, features)``, sample ``k`` at ``run start + k / frequency``. :func:`read_run_windows`
gathers the windows of a batch of segments from these arrays, with the semantics of
:class:`~neuralset.extractors.recording.RecordingExtractor` reads (dynamic windows, static mean
or trigger sample, ``out_of_bounds`` modes).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...segments import Segments
from ..base import OutOfBounds, OutOfBoundsError, Output
from ..recording_spans import nearest_sample

__all__ = ["run_rows", "read_run_windows"]


def run_rows(segments: Segments, grid: str, out_of_bounds: OutOfBounds) -> np.ndarray:
    """Row of the ``grid`` event spanning each segment's start (-1 if none).

    With ``out_of_bounds="pad"``, a segment starting before every run takes the first run it
    overlaps.
    """
    index = segments.index
    rows = index.covering(segments.timeline, segments.start, segments.start, grid)
    if out_of_bounds == "pad" and (rows < 0).any():
        lacking = np.flatnonzero(rows < 0)
        seg, ev = index.overlapping(
            segments.timeline[lacking], segments.start[lacking], segments.stop[lacking], grid
        )
        if len(seg):
            first = np.unique(seg, return_index=True)[1]
            rows[lacking[seg[first]]] = ev[first]
    return rows


def read_run_windows(
    segments: Segments,
    open_run: Callable[[int], np.ndarray],
    *,
    grid: str,
    frequency: float,
    output: str,
    aggregation: str,
    out_of_bounds: OutOfBounds,
    owner: str,
) -> Output:
    """The windows of ``segments`` in the stored runs (``open_run(row) -> (time, features)``)."""
    n = len(segments)
    rows = run_rows(segments, grid, out_of_bounds)
    if out_of_bounds != "drop" and (rows < 0).any():
        bad = np.flatnonzero(rows < 0)[:3].tolist()
        raise OutOfBoundsError(
            f"{owner}: segments {bad} start outside every {grid} run of their timeline; "
            f"keep them with segments.require('{grid}') or read with out_of_bounds='drop'"
        )
    dynamic = output == "dynamic"
    dur = segments.duration
    if dynamic and n and float(dur.max() - dur.min()) > 1e-8 + 1e-5 * abs(float(dur[0])):
        raise ValueError("dynamic outputs need segments of equal duration within a batch")
    n_times = int(round(float(dur[0]) * frequency)) if dynamic and n else 0
    starts = segments.index.event_start.astype(np.float64, copy=False)
    data: np.ndarray | None = None
    width = n_times if dynamic else 1
    valid_all = np.zeros((n, width), dtype=bool)
    for row in np.unique(rows[rows >= 0]):
        which = np.flatnonzero(rows == row)
        series = open_run(int(row))
        first = nearest_sample(segments.start[which] - starts[row], frequency)
        idx, in_window = _window_samples(
            segments, which, first, starts, row, frequency, n_times, dynamic, aggregation
        )
        inside = (idx >= 0) & (idx < len(series))
        valid = inside & in_window
        complete = (inside | ~in_window).all(axis=1)
        if out_of_bounds == "error" and not complete.all():
            bad = which[~complete][:3].tolist()
            raise OutOfBoundsError(
                f"{owner}: segments {bad} run past the {grid} run of row {row} "
                f"({len(series)} samples at {frequency} Hz); pass out_of_bounds='drop' or 'pad'"
            )
        gathered = np.asarray(series[np.clip(idx, 0, len(series) - 1)], dtype=np.float32)
        gathered[~valid] = 0.0  # (k, time, features)
        if data is None:
            shape = (n, series.shape[1], n_times) if dynamic else (n, series.shape[1])
            data = np.zeros(shape, dtype=np.float32)
        if dynamic:
            data[which] = np.moveaxis(gathered, 1, -1)
            valid_all[which] = valid
        else:
            data[which] = gathered.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)[:, None]
            valid_all[which, 0] = complete
    if data is None:
        data = np.zeros((n, 0, n_times) if dynamic else (n, 0), dtype=np.float32)
    return _windows_output(data, valid_all, rows, out_of_bounds)


def _windows_output(
    data: np.ndarray, valid: np.ndarray, rows: np.ndarray, out_of_bounds: OutOfBounds
) -> Output:
    """The :class:`Output` of the windows read, per ``out_of_bounds`` (``valid``: real samples)."""
    if out_of_bounds == "drop":
        keep = (rows >= 0) & valid.all(axis=1)
        return Output(data=data[keep], keep=keep)
    if out_of_bounds == "pad":
        return Output(data=data, mask=valid)
    return Output(data=data)


def _window_samples(
    segments: Segments,
    which: np.ndarray,
    first: np.ndarray,
    starts: np.ndarray,
    row: int,
    frequency: float,
    n_times: int,
    dynamic: bool,
    aggregation: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Run sample indices of the windows of segments ``which`` and which are in the window."""
    if dynamic:
        idx = first[:, None] + np.arange(n_times)[None, :]
        return idx, np.ones(idx.shape, dtype=bool)
    if aggregation == "trigger":
        trig = segments.trigger[which]
        ref = np.where(trig >= 0, starts[np.maximum(trig, 0)], segments.start[which])
        idx = nearest_sample(ref - starts[row], frequency)[:, None]
        return idx, np.ones(idx.shape, dtype=bool)
    # the mean over the window's samples (at least one)
    lengths = np.maximum(np.round(segments.duration[which] * frequency).astype(np.int64), 1)
    steps = np.arange(int(lengths.max()))[None, :]
    return first[:, None] + steps, steps < lengths[:, None]

"""Stimulus features convolved with a haemodynamic response, on the fMRI grid: :class:`HrfConvolve`.

What nilearn's :func:`nilearn.glm.first_level.compute_regressor` does for one condition, done
for every feature of an extractor at once (vectorised over features) and stored per fMRI run:

1. the *high-resolution regressor*: each event is a boxcar of its feature vector over
   ``[onset, onset + duration)`` on nilearn's oversampled grid (``oversampling`` samples per
   frame, from ``min_onset`` seconds before the first frame; onsets placed with
   ``searchsorted``, a zero duration lasting one sample) - or, for a dynamic extractor, its
   series itself at its own frequency;
2. convolution with nilearn's kernels (:func:`~nilearn.glm.first_level.glover_hrf`,
   :func:`~nilearn.glm.first_level.spm_hrf`, and their time and dispersion derivatives);
3. linear interpolation at the frame times ``run start + k / frequency``;
4. with derivatives, each basis column orthogonalised against the previous ones, per feature
   (nilearn's ``orthogonalize``).

Registered YAML kind: ``hrf_convolve``.
"""

from __future__ import annotations

import time
import weakref
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import ConfigError, config, register
from ...hashing import chain_keys, structural_key
from ...memo import Slot
from ...segments import Segments
from ...store import Store
from ..base import Computed, Extractor, ExtractorNotPreparedError, Item, OutOfBounds, Output
from ..event_features import EventFeatureExtractor
from ..recording import RecordingExtractor
from .runs import read_run_windows
from .wrapper import Wrapper, own_vectors

__all__ = [
    "HrfConvolve",
    "HrfModel",
    "hrf_kernels",
    "sample_events",
    "interp_rows",
    "orthogonalize_basis",
]

HrfModel = Literal[
    "glover",
    "spm",
    "glover + derivative",
    "glover + derivative + dispersion",
    "spm + derivative",
    "spm + derivative + dispersion",
]


def hrf_kernels(model: str, t_r: float, oversampling: int) -> list[np.ndarray]:
    """nilearn's kernels for ``model``, sampled every ``t_r / oversampling`` s (sum-normalised)."""
    from nilearn.glm import first_level

    base = "glover" if model.startswith("glover") else "spm"
    names = [f"{base}_hrf"]
    if "derivative" in model:
        names.append(f"{base}_time_derivative")
    if "dispersion" in model:
        names.append(f"{base}_dispersion_derivative")
    return [np.asarray(getattr(first_level, n)(t_r, oversampling), np.float64) for n in names]


def sample_events(
    onsets: np.ndarray,
    durations: np.ndarray,
    values: np.ndarray,
    frame_times: np.ndarray,
    oversampling: int,
    min_onset: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxcars of ``values`` ``(events, features)`` on nilearn's high-resolution grid.

    The grid and the placement are those of nilearn's ``compute_regressor`` (its
    ``_sample_condition``), for every feature column at once, except that events ending before
    the grid starts are left out (nilearn warns that they are "not considered", but stacks them
    at the grid's first sample: the words of an earlier run on the same timeline would make one
    spurious impulse there). Returns ``(regressor, times)``, ``(samples, features)`` and
    ``(samples,)``.
    """
    n = len(frame_times)
    lo, hi = float(frame_times.min()), float(frame_times.max())
    n_hr = (n - 1) / (hi - lo) * (hi * (1 + 1.0 / (n - 1)) - lo - min_onset) * oversampling + 1
    times = np.linspace(lo + min_onset, hi * (1 + 1.0 / (n - 1)), int(np.rint(n_hr)))
    last = len(times) - 1
    values = np.asarray(values, dtype=np.float64).reshape(len(onsets), -1)
    kept = onsets + durations >= times[0]
    onsets, durations, values = onsets[kept], durations[kept], values[kept]
    regressor = np.zeros((len(times), values.shape[1]))
    t_on = np.minimum(np.searchsorted(times, onsets), last)
    t_off = np.minimum(np.searchsorted(times, onsets + durations), last)
    t_off = np.where((t_off < last) & (t_off == t_on), t_off + 1, t_off)
    np.add.at(regressor, t_on, values)
    np.subtract.at(regressor, t_off, values)
    return np.cumsum(regressor, axis=0), times


def interp_rows(x_new: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Linear interpolation of the rows of ``y`` ``(len(x), ...)`` at ``x_new`` (``x`` sorted)."""
    i = np.clip(np.searchsorted(x, x_new, side="right") - 1, 0, len(x) - 2)
    w = ((x_new - x[i]) / (x[i + 1] - x[i])).reshape((-1,) + (1,) * (y.ndim - 1))
    return y[i] + (y[i + 1] - y[i]) * w


def orthogonalize_basis(x: np.ndarray) -> np.ndarray:
    """``(time, features, basis)``: each basis column minus its projection on the previous ones.

    Per feature, nilearn's ``orthogonalize`` (``X[:, i] -= X[:, i] @ X[:, :i] @ pinv(X[:, :i])``,
    scipy's ``pinv`` tolerance).
    """
    x = np.array(x, dtype=np.float64)
    n = x.shape[0]
    for i in range(1, x.shape[2]):
        prev = np.moveaxis(x[:, :, :i], 0, 1)  # (features, time, i)
        pinv = np.linalg.pinv(prev, rtol=max(n, i) * np.finfo(np.float64).eps)  # (f, i, time)
        coef = np.einsum("nd,dni->di", x[:, :, i], prev)
        x[:, :, i] -= np.einsum("di,din->nd", coef, pinv)
    return x


@register("hrf_convolve")
@config
class HrfConvolve(Wrapper):
    """A stimulus extractor convolved with a haemodynamic response, sampled on the fMRI grid.

    ``prepare`` prepares the inner extractor, then computes, for every run (event of type
    ``grid``), the regressors of the inner extractor's events of the run's timeline at the
    frame times ``run start + k / frequency`` (``k < round(run duration * frequency)``), and
    stores them, ``(frames, features * basis)`` (feature-major: feature 0's HRF column, then
    its derivatives, then feature 1...). Equal to nilearn's ``compute_regressor`` called per
    feature column with ``(onsets, durations, amplitudes=that feature)`` and these frame times.
    Reading takes each segment's window on that grid, like a recording.

    The inner extractor decides the input: with ``output="static"`` each event is a boxcar of
    its own vector (read as with ``aggregation="trigger"``: events overlapping it do not blend
    in; nilearn's model); with a
    dynamic output and a ``frequency``, its series over the run (from ``min_onset`` before it)
    is convolved with the kernel sampled at that frequency.

    The convolution is light: it runs in the process that calls ``prepare``, after the inner
    extractor's items are stored (through the executor given).

    Parameters
    ----------
    extractor
        The stimulus extractor (static, or dynamic with a frequency).
    hrf
        nilearn's HRF model name.
    frequency
        The frame rate (1 / TR), required.
    grid
        Event type of the runs whose frames set the grid.
    oversampling, min_onset
        As in nilearn's ``compute_regressor`` (events starting more than ``-min_onset`` s
        before the first frame are clamped to that time, as nilearn does; events that have
        ended by then, such as those of an earlier run on the same timeline, are left out).

    Examples
    --------
    >>> words = WordLength(output="static", aggregation="trigger")  # doctest: +SKIP
    >>> HrfConvolve(extractor=words, hrf="glover", frequency=0.5)  # doctest: +SKIP
    """

    derived_fields: ClassVar[tuple[str, ...]] = ()
    #: 2: events ending before a run's grid are left out (were stacked at its first sample)
    #: 3: each event's own vector, also with aggregation="mean" (overlapping events blended)
    _version: ClassVar[int] = 3

    extractor: Extractor
    hrf: HrfModel = "glover"
    grid: str = "Fmri"
    oversampling: int = 50
    min_onset: float = -24.0

    def _check(self) -> None:
        if self.frequency is None:
            raise ConfigError(
                "HrfConvolve.frequency: give the fMRI frame rate (1 / TR, e.g. 0.5 for TR = 2 s)"
            )
        if self.oversampling < 1:
            raise ConfigError(f"HrfConvolve.oversampling: must be >= 1, got {self.oversampling}")
        if self.min_onset > 0:
            raise ConfigError(f"HrfConvolve.min_onset: must be <= 0 s, got {self.min_onset}")
        inner = self.extractor
        if np.issubdtype(inner.output_dtype, np.integer):
            raise ConfigError(
                f"HrfConvolve.extractor: {type(inner).__name__} reads class positions "
                f"({inner.output_dtype}), not amplitudes (convolved, each class would weigh its "
                "position in the vocabulary); convolve amplitudes: a Pulse per condition, an "
                "EventField, stimulus features"
            )
        if inner.output == "dynamic" and inner.frequency is None:
            raise ConfigError(
                f"HrfConvolve.extractor: {type(inner).__name__} is dynamic without a frequency; "
                "give it output='static' (each event a boxcar of its vector, as nilearn's "
                "compute_regressor) or a frequency (its series is convolved)"
            )

    @property
    def resolved_event_type(self) -> str:
        return self.grid

    @property
    def n_basis(self) -> int:
        """Columns per feature: 1, 2 (+ time derivative) or 3 (+ dispersion derivative)."""
        return 1 + self.hrf.count("+")

    # -- prepare ------------------------------------------------------------------------
    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """The runs of ``grid`` exist and span 2 frames or more (before the inner prepare)."""
        from ...events.selectors import types_present

        runs = (events["type"] == self.grid).to_numpy()
        if not runs.any():
            raise ValueError(
                f"HrfConvolve.grid: the events table has no {self.grid!r} event (the runs whose "
                f"frames set the grid; {types_present(events)}); set grid to the event type of "
                "the fMRI runs"
            )
        frames = np.rint(events["duration"].to_numpy(np.float64)[runs] * float(self.frequency or 0))
        if (frames < 2).any():
            short = int(np.argmax(frames < 2))
            row = int(np.flatnonzero(runs)[short])
            raise ValueError(
                f"HrfConvolve: the {self.grid} event of row {row} spans {int(frames[short])} "
                f"frame(s) at {self.frequency} Hz; nilearn's regressors need at least 2: check "
                "its duration and HrfConvolve.frequency (1 / TR)"
            )

    def items(self, events: pd.DataFrame) -> list[Item]:
        codes = events["timeline"].cat.codes.to_numpy()
        types = events["type"].to_numpy()
        starts, durations = events["start"].to_numpy(), events["duration"].to_numpy()
        grid_rows = np.flatnonzero(types == self.grid)
        table = _table_identity(self.extractor, events)
        out = []
        for row in grid_rows:
            n_frames = int(round(float(durations[row]) * float(self.frequency or 0.0)))
            content = _content_identity(self.extractor, events, codes == codes[row])
            ident = (float(starts[row]), n_frames, table, content)
            key = chain_keys(self.prepare_key, structural_key(ident))
            label = (
                f"HRF of {type(self.extractor).__name__} on {events_label_short(events, int(row))}"
            )
            out.append(Item(key=key, label=label, payload={"row": int(row), "n_frames": n_frames}))
        return out

    def prepare_own(
        self, events: pd.DataFrame, store: Store, *, executor: Any, progress: bool, retry: Any
    ) -> Any:
        from tqdm.auto import tqdm

        from ...execution import PrepareReport
        from ...store import provenance

        t0 = time.perf_counter()
        items = self.items(events)
        missing = set(store.missing([i.key for i in items]))
        holder = _segments(events, [], [], [], [])
        todo = [i for i in items if i.key in missing]
        for item in tqdm(todo, desc="prepare HrfConvolve", unit="run", disable=not progress):
            data = self.regressors(events, store, item.payload, holder)
            meta = {"sfreq": float(self.frequency or 0.0), "hrf": self.hrf, "n_basis": self.n_basis}
            computed = self.to_storage(Computed(arrays={"data": data}, meta=meta), item.label)
            prov = provenance(self, source=item.label, item_key=item.key)
            store.put_arrays(
                item.key, computed.arrays, meta=computed.meta, label=item.label, prov=prov
            )
        return PrepareReport(
            total=len(items),
            cached=len(items) - len(todo),
            computed=len(todo),
            seconds=time.perf_counter() - t0,
        )

    def regressors(
        self, events: pd.DataFrame, store: Store, payload: dict[str, Any], holder: Segments
    ) -> np.ndarray:
        """The convolved features of one run: ``(frames, features * basis)`` float32."""
        row, n = int(payload["row"]), int(payload["n_frames"])
        freq = float(self.frequency or 0.0)
        if n < 2:
            raise ValueError(
                f"HrfConvolve: the {self.grid} event of row {row} spans {n} frame(s) at "
                f"{freq} Hz; nilearn's regressors need at least 2"
            )
        frame_times = float(events["start"].iloc[row]) + np.arange(n) / freq
        code = int(events["timeline"].cat.codes.iloc[row])
        inner = self.extractor
        if inner.output == "static":
            high, times, t_r, oversampling = self._boxcars(events, store, code, frame_times, holder)
        else:
            high, times, t_r, oversampling = self._series(events, store, code, frame_times, holder)
        basis = []
        for kernel in hrf_kernels(self.hrf, t_r, oversampling):
            from scipy.signal import fftconvolve

            conv = fftconvolve(high, kernel[:, None], axes=0)[: len(times)]
            basis.append(interp_rows(frame_times, times, conv))
        stacked = np.stack(basis, axis=-1)  # (frames, features, basis)
        if stacked.shape[-1] > 1:
            stacked = orthogonalize_basis(stacked)
        return np.ascontiguousarray(stacked.reshape(n, -1), dtype=np.float32)

    def _boxcars(
        self,
        events: pd.DataFrame,
        store: Store,
        code: int,
        frame_times: np.ndarray,
        holder: Segments,
    ) -> tuple[np.ndarray, np.ndarray, float, int]:
        inner = self.extractor
        types = events["type"].to_numpy()
        all_rows = np.flatnonzero(types == inner.resolved_event_type)
        if not len(all_rows):
            raise ValueError(f"HrfConvolve: no {inner.resolved_event_type} events to convolve")
        codes = events["timeline"].cat.codes.to_numpy()
        rows = all_rows[codes[all_rows] == code]
        onsets = events["start"].to_numpy(np.float64)[rows]
        durations = events["duration"].to_numpy(np.float64)[rows]
        # one static read per event: the event's own vector (its window is its span)
        probe = rows if len(rows) else all_rows[:1]
        segs = _segments(
            events,
            events["start"].to_numpy(np.float64)[probe],
            np.maximum(events["duration"].to_numpy(np.float64)[probe], 1e-6),
            np.full(len(probe), codes[probe[0]], dtype=np.int32),
            probe,
            holder,
        )
        read = own_vectors(inner, inner.resolved_event_type).read(segs, store).data
        values = np.asarray(read, dtype=np.float64).reshape(len(probe), -1)
        if not len(rows):  # a run without stimuli: zero regressors of the right width
            values = values[:0]
        high, times = sample_events(
            onsets, durations, values, frame_times, self.oversampling, self.min_onset
        )
        t_r = float(np.min(np.diff(frame_times)))
        return high, times, t_r, self.oversampling

    def _series(
        self,
        events: pd.DataFrame,
        store: Store,
        code: int,
        frame_times: np.ndarray,
        holder: Segments,
    ) -> tuple[np.ndarray, np.ndarray, float, int]:
        f_in = float(self.extractor.frequency or 0.0)
        t0 = float(frame_times[0]) + self.min_onset
        n_in = int(np.ceil((float(frame_times[-1]) - t0) * f_in)) + 2
        seg = _segments(
            events, [t0], [n_in / f_in], np.array([code], np.int32), np.array([-1]), holder
        )
        series = self.extractor.read(seg, store, out_of_bounds="pad").data[0]
        high = np.asarray(series, dtype=np.float64).reshape(-1, series.shape[-1]).T
        return high, t0 + np.arange(high.shape[0]) / f_in, 1.0 / f_in, 1

    def listed_items(self, events: pd.DataFrame) -> list[Item]:
        """:meth:`items`, remembered for the same events table (checks, then reads, of a dataset).

        ``prepare`` always lists them afresh.
        """
        memo_key = (id(events), self.prepare_key)
        hit = _LISTED.get(memo_key)
        if hit is not None and hit[0]() is events:
            return hit[1]
        items = self.items(events)
        if len(_LISTED) > 64:
            for k in [k for k, (ref, _) in _LISTED.items() if ref() is None]:
                del _LISTED[k]
        _LISTED[memo_key] = (weakref.ref(events), items)
        return items

    def is_prepared(self, events: pd.DataFrame, store: Store) -> list[str]:
        missing = [label for inner in self.inners() for label in inner.is_prepared(events, store)]
        if missing:  # the regressors need the inner extractor first
            return missing
        items = self.listed_items(events)
        absent = set(store.missing([i.key for i in items]))
        return [i.label for i in items if i.key in absent]

    # -- read ---------------------------------------------------------------------------
    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        keys = segments.index.memo.get_or_set(
            _RUN_KEYS,
            lambda: {item.payload["row"]: item.key for item in self.listed_items(segments.events)},
            self.prepare_key,
        )
        opened = segments.index.memo.table(_OPENED, str(store.root))

        def open_run(row: int) -> np.ndarray:
            key = keys[row]
            if key not in opened:
                if not store.has(key):
                    raise ExtractorNotPreparedError(
                        f"HrfConvolve has no stored regressors for the {self.grid} event of row "
                        f"{row}; call extractor.prepare(events, store) first"
                    )
                opened[key] = store.get_arrays(key)["data"]
            return np.asarray(opened[key])

        return read_run_windows(
            segments,
            open_run,
            grid=self.grid,
            frequency=float(self.frequency or 0.0),
            output=self.output,
            aggregation=self.aggregation,
            out_of_bounds=out_of_bounds,
            owner="HrfConvolve",
        )


#: Store key of each run's regressors (``{row: key}``), per ``prepare_key``.
_RUN_KEYS: Slot[dict[int, str]] = Slot("HRF regressors key per run")
#: Opened regressor arrays by store key, per store root.
_OPENED: Slot[dict[str, np.ndarray]] = Slot("opened HRF regressors")
#: items listed per (events table, key): (weak reference to the table, items)
_LISTED: dict[tuple[int, str], tuple[weakref.ref[pd.DataFrame], list[Item]]] = {}


def events_label_short(events: pd.DataFrame, row: int) -> str:
    return f"{events['type'].iloc[row]} {row} ({events['timeline'].iloc[row]})"


def _segments(
    events: pd.DataFrame,
    start: Any,
    duration: Any,
    timeline: Any,
    trigger: Any,
    holder: Segments | None = None,
) -> Segments:
    """Segments over ``events`` sharing the event index (and memo) of ``holder``."""
    timeline = np.asarray(timeline, dtype=np.int32)
    trigger = np.asarray(trigger, dtype=np.int64)
    if holder is not None and holder.events is events:
        return holder.with_windows(start, duration, timeline=timeline, trigger=trigger)
    return Segments(
        events=events,
        start=np.asarray(start, dtype=np.float64),
        duration=np.asarray(duration, dtype=np.float64),
        timeline=timeline,
        trigger=trigger,
    )


def _table_identity(extractor: Extractor, events: pd.DataFrame) -> tuple[Any, ...]:
    """What an extractor fitted on the whole table depends on (a PCA's training rows)."""
    fit_key = extractor.fit_key(events)
    own: tuple[Any, ...] = () if fit_key is None else (fit_key,)
    if isinstance(extractor, Wrapper):
        return own + tuple(_table_identity(i, events) for i in extractor.inners())
    return own


def _content_identity(extractor: Extractor, events: pd.DataFrame, in_timeline: np.ndarray) -> Any:
    """The stored identity of an extractor's events in one timeline, with their spans."""
    if isinstance(extractor, Wrapper):
        return tuple(_content_identity(i, events, in_timeline) for i in extractor.inners())
    rows = np.flatnonzero(
        in_timeline & (events["type"] == extractor.resolved_event_type).to_numpy()
    )
    spans = (events["start"].to_numpy()[rows], events["duration"].to_numpy()[rows])
    try:
        if isinstance(extractor, EventFeatureExtractor):
            return spans, tuple(extractor.row_keys(events, rows))
        if isinstance(extractor, RecordingExtractor):
            return spans, tuple(item.key for item in extractor.items(events.iloc[rows]))
    except NotImplementedError:
        pass
    return spans, structural_key(events.iloc[rows])

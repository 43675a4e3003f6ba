"""Event feature extractors: one feature vector or series per event, painted over time."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..config import ConfigError, config
from ..events.selectors import types_present
from ..hashing import KEY_EXCLUDED, chained_keys
from ..memo import Slot
from ..segments import Segments
from ..store import EntryKindError, MissingEntryError, Store
from . import buffers
from .base import Extractor, ExtractorNotPreparedError, OutOfBounds, Output, events_label

__all__ = ["EventFeatureExtractor", "Series", "resample_series"]

#: Store key of each event row, per extractor ``prepare_key``.
_ROW_KEYS: Slot[_RowKeys] = Slot("store key per event row")
#: Stored values by store key, per store root.
_VALUES: Slot[dict[str, np.ndarray | Series]] = Slot("stored values by key")
#: Per ``prepare_key`` and store: the values of the event rows already read, by row position.
_ROW_VALUES: Slot[_RowValues] = Slot("stored value per event row")
#: Values a dataset keeps in memory at most (per store).
_MAX_VALUES = 100_000


class _RowValues:
    """The value of each event row of a type once read (an array over the rows), so that a
    batch whose values were all read before costs a few numpy operations."""

    __slots__ = ("rows", "values", "loaded")

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.values = np.full(len(rows), None, dtype=object)
        self.loaded = np.zeros(len(rows), dtype=bool)

    def get(self, rows: np.ndarray) -> list[Any] | None:
        """The values of event ``rows`` when all were read before, else None."""
        slots = np.searchsorted(self.rows, rows)
        if not len(rows) or slots.max() >= len(self.rows):
            return None if len(rows) else []
        if not self.loaded[slots].all() or not (self.rows[slots] == rows).all():
            return None
        return self.values[slots].tolist()  # type: ignore[no-any-return]

    def put(self, rows: np.ndarray, values: list[Any]) -> None:
        """Keep the values of event ``rows`` (up to :data:`_MAX_VALUES` rows)."""
        slots = np.searchsorted(self.rows, rows)
        for s, row, value in zip(slots.tolist(), rows.tolist(), values):
            if s < len(self.rows) and self.rows[s] == row and not self.loaded[s]:
                if self.loaded.sum() >= _MAX_VALUES:
                    return
                self.values[s] = value
                self.loaded[s] = True


class _RowKeys:
    """The store key of each row of an events table once computed (an array over the rows):
    the keys of a batch or of every event are one gather, not a dict lookup per row."""

    __slots__ = ("keys", "known")

    def __init__(self, n_rows: int) -> None:
        self.keys = np.full(n_rows, None, dtype=object)
        self.known = np.zeros(n_rows, dtype=bool)


@dataclasses.dataclass(frozen=True)
class Series:
    """A stored per-event feature series: ``data`` is ``(time, *features)`` at ``sfreq`` Hz.

    Sample ``i`` is at ``start + i / sfreq`` seconds after the event's onset (``start``: the
    ``"start"`` entry of the stored meta, 0 when absent; e.g. the centre of a speech model's
    first receptive field).
    """

    data: np.ndarray
    sfreq: float
    start: float = 0.0


def resample_series(series: Series, times: np.ndarray) -> np.ndarray:
    """Values of ``series`` at ``times`` (seconds from the event onset), ``(len(times), *features)``.

    Upsampling (or equal rates) interpolates linearly between stored samples; downsampling
    (by more than 1.5x) averages the linear interpolant over ``[t - 0.5 / f, t + 0.5 / f]``
    around each time, where ``f`` is the output rate implied by ``times`` (a box anti-aliasing
    filter, clipped to the stored span). Times before the first or after the last stored sample
    take the nearest sample. Stored sample ``i`` is at ``series.start + i / series.sfreq``.
    """
    data = np.asarray(series.data, dtype=np.float32)
    n = data.shape[0]
    times = np.asarray(times, dtype=np.float64)
    if n == 0:
        return np.zeros((len(times), *data.shape[1:]), np.float32)
    pos = np.round((times - series.start) * series.sfreq, 6)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    ratio = step * series.sfreq
    if ratio > 1.5 and n > 1:  # downsampling: mean of the interpolant over the output sample's bin
        flat = data.reshape(n, -1).astype(np.float64)
        steps = (flat[1:] + flat[:-1]) / 2
        csum = np.concatenate([np.zeros((1, flat.shape[1])), np.cumsum(steps, axis=0)])

        def integral(x: np.ndarray) -> np.ndarray:  # integral of the linear interpolant from 0 to x
            x = np.clip(x, 0, n - 1)
            k = np.minimum(np.floor(x).astype(np.int64), n - 2)
            w = (x - k)[:, None]
            return csum[k] + w * flat[k] + w**2 / 2 * (flat[k + 1] - flat[k])

        a, b = np.clip(pos - ratio / 2, 0, n - 1), np.clip(pos + ratio / 2, 0, n - 1)
        width = (b - a)[:, None]
        edge = flat[np.round(a).astype(np.int64)]  # windows wholly outside the span: nearest sample
        out = np.where(width > 1e-9, (integral(b) - integral(a)) / np.maximum(width, 1e-9), edge)
        return out.reshape((len(times), *data.shape[1:])).astype(np.float32)
    pos = np.clip(pos, 0, n - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (pos - i0).reshape((-1,) + (1,) * (data.ndim - 1)).astype(np.float32)
    return (data[i0] * (1 - w) + data[i1] * w).astype(np.float32)


def _static_of(value: np.ndarray | Series) -> np.ndarray:
    """The static vector of a stored value: itself, or the mean over time of a series."""
    if isinstance(value, Series):
        return np.asarray(value.data, dtype=np.float32).mean(axis=0)
    return value


@config
class EventFeatureExtractor(Extractor):
    """An extractor with one feature vector or series per event (stimuli, labels).

    Subclasses implement :meth:`items` (one item per distinct event content),
    :meth:`compute_many` and :meth:`row_keys`. A computed item is either *static*, a
    :class:`Computed` whose ``value`` is a float array of shape ``(*features)``, or *dynamic*, a
    :class:`Computed` with ``arrays={"data": (time, *features)}`` and ``meta={"sfreq": rate}``
    (sample ``i`` at ``i / rate`` s after the event onset, e.g. a model's latent rate), or
    ``meta={"sfreq": rate, "start": t0}`` for samples at ``t0 + i / rate`` s.

    Reading with ``output="dynamic"`` paints each event over the segment's time grid at
    ``frequency`` (static vectors repeated over ``[start, stop)``; series resampled with
    :func:`resample_series`; where events overlap, the later one in the table wins; with
    ``frequency=None`` the stored rate of the series is used). With ``output="static"``, a series
    is first averaged over time; ``aggregation="trigger"`` returns the trigger event's vector and
    ``"mean"`` averages the vectors of the events overlapping the window.

    Parameters
    ----------
    time_major
        Dynamic reads keep time as the slowest axis after the batch in memory: the output still
        has the shape ``(batch, *features, time)``, as a strided view of a ``(batch, time,
        *features)`` array. An event's vector is then painted as one contiguous block per
        segment instead of one strided write per feature: painting 384-d vectors is about twice
        as fast. Tensors built on these arrays are not contiguous (``.reshape`` works,
        ``.view`` across the last axes does not). Changes no value, hence no key.
    """

    #: stored values do not depend on the painting frequency either
    read_fields: ClassVar[tuple[str, ...]] = ("output", "aggregation", "frequency")

    time_major: bool = dataclasses.field(default=False, metadata=KEY_EXCLUDED)

    #: every stored value is one vector per event, never a series: known before ``prepare``
    #: (a ``PCA`` over it counts its training rows at preflight)
    stores_vectors: ClassVar[bool] = False

    def event_rows(self, events: pd.DataFrame) -> np.ndarray:
        return np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        """Store key of the item of each event row (same order); used by the base :meth:`read`.

        Subclasses that keep the base :meth:`read` implement it.
        """
        raise NotImplementedError(
            f"{type(self).__name__}.row_keys: implement it to read with EventFeatureExtractor.read"
        )

    def stores_row_features(self) -> bool:
        """Whether ``prepare`` stores the value of each event (under :meth:`row_keys`); False
        for values read from the events table or a vocabulary (``Pulse``, ``LabelEncoder``)."""
        return type(self).row_keys is not EventFeatureExtractor.row_keys

    def store_keys_of(self, segments: Segments) -> list[str] | None:
        """The store key of each event, as the reads keep them (:meth:`row_keys` memoised on the
        event index: computed once for the check, every read and forked workers); None for a
        subclass that reads without :meth:`row_keys`."""
        if not self.stores_row_features():
            return None
        return self._cached_row_keys(segments, self.event_rows(segments.events).astype(np.int64))

    def _keys_of(self, identities: Sequence[Any]) -> list[str]:
        """Store keys of items with these content identities (chained to :attr:`prepare_key`)."""
        return chained_keys(self.prepare_key, identities)

    def _read_key(self) -> str:
        """The :attr:`prepare_key` that reads use (subclasses may check it less often)."""
        return self.prepare_key

    def _cached_row_keys(self, segments: Segments, rows: np.ndarray) -> list[str]:
        """:meth:`row_keys`, memoised on the event index (shared by selections of the segments)."""
        n_rows = len(segments.events)
        table = segments.index.memo.get_or_set(
            _ROW_KEYS, lambda: _RowKeys(n_rows), self._read_key()
        )
        rows = np.asarray(rows, dtype=np.int64)
        missing = np.unique(rows[~table.known[rows]])
        if len(missing):
            table.keys[missing] = np.asarray(self.row_keys(segments.events, missing), dtype=object)
            table.known[missing] = True
        return table.keys[rows].tolist()  # type: ignore[no-any-return]

    def _values(
        self, segments: Segments, store: Store, rows: np.ndarray
    ) -> list[np.ndarray | Series]:
        """The stored value of each event row (memoised per store, up to 100,000 values)."""
        rows = np.asarray(rows, dtype=np.int64)
        memo = segments.index.memo
        by_row = memo.get_or_set(
            _ROW_VALUES,
            lambda: _RowValues(self.event_rows(segments.events).astype(np.int64)),
            self._read_key(),
            str(store.root),
        )
        known = by_row.get(rows)
        if known is not None:
            return known
        cache = memo.table(_VALUES, str(store.root))
        keys = self._cached_row_keys(segments, rows)
        out: list[np.ndarray | Series] = []
        for row, key in zip(rows, keys):
            value = cache.get(key)
            if value is None:
                value = self._load(store, key, segments.events, int(row))
                if len(cache) < _MAX_VALUES:
                    cache[key] = value
            out.append(value)
        by_row.put(rows, out)
        return out

    def warm_up(self, segments: Segments, store: Store) -> None:
        """Compute the keys and load the values of the events the segments overlap (before
        DataLoader workers fork: they inherit them), up to the value cache's 100,000; nothing
        for a subclass that reads without :meth:`row_keys` (e.g. ``LabelEncoder``)."""
        if not len(segments) or not self.stores_row_features():
            return
        rows = np.unique(segments.overlapping(self.resolved_event_type)[1])
        if 0 < len(rows) <= 100_000:
            self._values(segments, store, rows)

    def _load(self, store: Store, key: str, events: pd.DataFrame, row: int) -> np.ndarray | Series:
        """The stored value of an event row: a vector, or a :class:`Series`.

        Only a missing entry means "not prepared"; a damaged or unreadable one raises the
        store's own error (naming the file).
        """
        try:
            try:
                return np.asarray(store.get_value(key), dtype=np.float32)
            except EntryKindError:
                data = store.get_arrays(key)["data"]
                meta = store.meta(key)
                return Series(
                    data=data, sfreq=float(meta["sfreq"]), start=float(meta.get("start", 0.0))
                )
        except MissingEntryError as err:
            raise ExtractorNotPreparedError(
                f"{type(self).__name__} has no stored features for {events_label(events, row)}; "
                "call extractor.prepare(events, store) first"
            ) from err

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        if self.output == "static":
            if self.aggregation == "trigger":
                return self._read_trigger(segments, store)
            return self._read_mean(segments, store)
        return self._read_painted(segments, store)

    def _read_trigger(self, segments: Segments, store: Store) -> Output:
        """Static output: the vector of each segment's trigger event."""
        rows = segments.trigger
        etype = self.resolved_event_type
        types = segments.events["type"].to_numpy()
        if (rows < 0).any() or (types[np.maximum(rows, 0)] != etype).any():
            raise ValueError(
                f"{type(self).__name__}: static output with aggregation='trigger' needs segments "
                f"triggered on {etype} events; use aggregation='mean' otherwise"
            )
        values = self._values(segments, store, rows)
        if not values:
            return Output(data=np.zeros((0,), np.float32))
        return Output(data=np.stack([_static_of(v) for v in values]).astype(np.float32))

    def _read_mean(self, segments: Segments, store: Store) -> Output:
        """Static output: the mean vector of the events overlapping each segment."""
        etype = self.resolved_event_type
        seg, rows = segments.overlapping(etype)
        values = self._values(segments, store, rows)
        if not values:  # no event in any segment: zeros, shaped like the stored features
            shape = _static_of(self._reference_value(segments, store)).shape
            return Output(data=np.zeros((len(segments), *shape), np.float32))
        flat = np.stack([_static_of(v) for v in values])
        sums = np.zeros((len(segments), *flat.shape[1:]), np.float32)
        np.add.at(sums, seg, flat)
        counts = np.bincount(seg, minlength=len(segments)).reshape((-1,) + (1,) * (flat.ndim - 1))
        return Output(data=sums / np.maximum(counts, 1))

    def _read_painted(self, segments: Segments, store: Store) -> Output:
        """Dynamic output: the events painted over each segment's time grid."""
        n = len(segments)
        dur = segments.duration
        if n and float(np.abs(dur - dur[0]).max()) > 1e-8 + 1e-5 * abs(float(dur[0])):
            raise ValueError("dynamic outputs need segments of equal duration within a batch")
        etype = self.resolved_event_type
        seg, rows = _painted_pairs(segments, etype, self.frequency)
        values = self._values(segments, store, rows)
        # a batch overlapping no event reads zeros shaped (and timed) like the stored features
        known = values or [self._reference_value(segments, store)]
        freq = self.frequency
        if freq is None:
            rates = {v.sfreq for v in known if isinstance(v, Series)}
            if len(rates) != 1:
                why = (
                    f"the stored series of this batch have different rates ({sorted(rates)} Hz)"
                    if rates
                    else "its stored features are one vector per event, painted over each "
                    "segment's samples at that rate"
                )
                raise ConfigError(
                    f"{type(self).__name__}.frequency must be set for dynamic outputs: {why}; "
                    "set frequency (Hz, e.g. that of the brain signal read alongside), or "
                    "output='static'"
                )
            freq = rates.pop()
            seg, rows = _painted_pairs(segments, etype, freq)  # now that the rate is known
            values = self._values(segments, store, rows)
        n_times = int(round(float(segments.duration[0]) * freq)) if n else 0
        if not values:
            shape = _static_of(known[0]).shape
            if self.time_major:
                return Output(data=buffers.time_last(np.zeros((n, n_times, *shape), np.float32)))
            return Output(data=np.zeros((n, *shape, n_times), np.float32))
        return Output(data=_paint(segments, seg, rows, values, freq, n_times, self.time_major))

    def _reference_value(self, segments: Segments, store: Store) -> np.ndarray | Series:
        """The stored value of the table's first event of the type: the feature shape (and
        stored rate) of a batch whose segments overlap none of these events."""
        rows = self.event_rows(segments.events)
        if not len(rows):
            raise ValueError(
                f"{type(self).__name__} reads {self.resolved_event_type} events, but the events "
                f"table has none ({types_present(segments.events)}); set "
                "event_type or add these events"
            )
        return self._values(segments, store, rows[:1])[0]


def _painted_pairs(
    segments: Segments, etype: str, freq: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(segment, event row) pairs whose events paint samples of the segments at ``freq``: the
    events overlapping each window, and those ending less than a sample before it (an event
    between two samples marks the next one, which may be the window's first): tiled windows
    read what one window over them reads."""
    if freq is None:
        return segments.overlapping(etype)
    start = segments.start - 1.0 / freq
    return segments.index.overlapping(segments.timeline, start, segments.stop, etype)


def _paint(
    segments: Segments,
    seg: np.ndarray,
    rows: np.ndarray,
    values: list[np.ndarray | Series],
    freq: float,
    n_times: int,
    time_major: bool = False,
) -> np.ndarray:
    """``(batch, *features, time)``: value ``j`` (event ``rows[j]`` in segment ``seg[j]``)
    painted where the event lies on the segment's grid at ``freq``; later pairs win. With
    ``time_major``, a view of a ``(batch, time, *features)`` array."""
    feature_shape = _static_of(values[0]).shape
    ev_start = segments.index.event_start[rows]
    ev_stop = ev_start + segments.index.event_duration[rows]
    # sample s of segment i is at time start_i + s / freq; painted where ev_start <= t < ev_stop
    lo = np.ceil((ev_start - segments.start[seg]) * freq - 1e-6).astype(np.int64)
    hi = np.ceil((ev_stop - segments.start[seg]) * freq - 1e-6).astype(np.int64)
    hi = np.maximum(hi, lo + 1)  # an instantaneous event still covers its onset sample
    lo_c, hi_c = np.clip(lo, 0, n_times), np.clip(hi, 0, n_times)
    is_series = np.array([isinstance(v, Series) for v in values], dtype=bool)
    if not is_series.any():
        out = _paint_vectors(
            len(segments), seg, values, lo_c, hi_c, feature_shape, n_times, time_major
        )
        return buffers.time_last(out) if time_major else out
    # owner[i, s]: index of the (segment, event) pair painted at sample s (later pairs win)
    owner = np.full((len(segments), n_times), -1, dtype=np.int64)
    counts = np.maximum(hi_c - lo_c, 0)
    pair = np.repeat(np.arange(len(seg)), counts)
    sample = (
        np.arange(counts.sum())
        - np.repeat(np.cumsum(counts) - counts, counts)
        + np.repeat(lo_c, counts)
    )
    np.maximum.at(owner, (seg[pair], sample), pair)
    # static vectors: one gather from a (pairs + 1, features) table (row 0 = zeros)
    table = np.zeros((len(values) + 1, *feature_shape), dtype=np.float32)
    for j in np.flatnonzero(~is_series):
        table[j + 1] = values[j]
    out = _gather_owned(table, np.where(owner >= 0, owner + 1, 0), time_major)
    # series: resampled at the sample times they own
    for j in np.flatnonzero(is_series):
        ii, ss = np.nonzero(owner[seg[j] : seg[j] + 1] == j)
        if not len(ss):
            continue
        times = segments.start[seg[j]] + ss / freq - ev_start[j]
        values_j = resample_series(values[j], times)  # type: ignore[arg-type]
        out[seg[j]][..., ss] = np.moveaxis(values_j, 0, -1)
    return out


def _gather_owned(table: np.ndarray, which: np.ndarray, time_major: bool) -> np.ndarray:
    """``(batch, *features, time)``: row ``which[i, s]`` of ``table`` at sample ``s`` of
    segment ``i``, gathered per segment (small blocks that stay in cache, several times faster
    than one gather of the batch then a transposing copy)."""
    n, n_times = which.shape
    features = table.shape[1:]
    flat_table = table.reshape(len(table), -1)
    if time_major:  # (batch, time, *features): one gather of rows per segment
        block = buffers.empty((n, n_times, *features), np.float32)
        flat_block = block.reshape(n, n_times, -1)
        for i in range(n):
            np.take(flat_table, which[i], axis=0, out=flat_block[i])
        return buffers.time_last(block)
    out = buffers.empty((n, *features, n_times), np.float32)
    flat_out = out.reshape(n, -1, n_times)
    for i in range(n):
        flat_out[i] = flat_table[which[i]].T
    return out


def _paint_vectors(
    n: int,
    seg: np.ndarray,
    values: list[np.ndarray | Series],
    lo: np.ndarray,
    hi: np.ndarray,
    feature_shape: tuple[int, ...],
    n_times: int,
    time_major: bool = False,
) -> np.ndarray:
    """:func:`_paint` of static vectors only: each (segment, event) pair's vector written over
    its samples ``lo:hi`` by one broadcast, in pair order (later pairs win); zeros elsewhere.
    With ``time_major`` the array is ``(batch, time, *features)``: each write is one block."""
    pairs = zip(seg.tolist(), lo.tolist(), hi.tolist(), values)
    if time_major:
        block = buffers.zeros((n, n_times, *feature_shape), np.float32)
        for i, a, b, value in pairs:
            if b > a:
                block[i, a:b] = value
        return block
    out = buffers.zeros((n, *feature_shape, n_times), np.float32)
    for i, a, b, value in pairs:
        if b > a:
            out[i, ..., a:b] = value[..., None]  # type: ignore[index]
    return out

"""Extractors: configs that turn the events of segments into arrays, in three phases.

1. **Configure**: an extractor is a frozen :class:`~neuralset.config.Config`, validated when built.
2. **Prepare**: :meth:`Extractor.prepare` lists the *items* an extractor needs (a recording, a
   word in its context, an image), finds those missing from the store (incremental), computes
   them (:meth:`Extractor.compute_many`, through an executor) and commits them.
3. **Read**: :meth:`Extractor.read` returns the arrays of a whole batch of segments at once, from
   memory-mapped store entries, without per-segment Python work.

Two families share this interface:

* :class:`RecordingExtractor` - one stored time series per recording event (time-major array at
  the extractor's frequency); reading gathers all windows of a batch from each recording with one
  vectorised fancy-index.
* :class:`EventFeatureExtractor` - one feature vector (static) or feature series (dynamic) per
  event; reading paints them over each segment's time grid, or takes the trigger's value.

Any output can be *dynamic* (``features x time`` at ``frequency``) or *static* (``features``):
a dynamic series is aggregated over the window (``"mean"``) or sampled at the trigger
(``"trigger"``); a static vector is painted over the event's span at any frequency.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ..config import Config, ConfigError, config
from ..hashing import KEY_EXCLUDED, chain_keys, is_keyed_field, structural_key
from ..segments import Segments
from ..store import Store

__all__ = [
    "Item",
    "Computed",
    "Extractor",
    "RecordingExtractor",
    "EventFeatureExtractor",
    "Output",
    "ExtractorNotPreparedError",
    "OutOfBoundsError",
    "source_identity",
    "source_path",
    "OutOfBounds",
    "Series",
    "resample_series",
]

OutOfBounds = Literal["error", "drop", "pad"]


class ExtractorNotPreparedError(RuntimeError):
    """Reading an item that ``prepare`` has not stored yet."""


class OutOfBoundsError(ValueError):
    """A segment window runs past the start or end of its recording."""


@dataclasses.dataclass(frozen=True)
class Item:
    """A unit of preparation: computed once, stored under ``key``.

    Attributes
    ----------
    key
        Store key (extractor key chained with the item's identity).
    label
        Human-readable name (file path, word), used in progress bars and errors.
    payload
        Whatever :meth:`Extractor.compute_many` needs (picklable, light: paths and fields).
    """

    key: str
    label: str
    payload: Any


@dataclasses.dataclass(frozen=True)
class Computed:
    """Result of computing one item: arrays (memory-mapped on read) and/or a small value."""

    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    value: Any = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Output:
    """What :meth:`Extractor.read` returns for a batch.

    Attributes
    ----------
    data
        ``(batch, *features)`` for static outputs, ``(batch, *features, time)`` for dynamic.
    mask
        With ``out_of_bounds="pad"``: ``(batch, time)`` boolean, True where samples are real.
    keep
        With ``out_of_bounds="drop"``: which input segments are in ``data``.
    """

    data: np.ndarray
    mask: np.ndarray | None = None
    keep: np.ndarray | None = None


def source_path(events: pd.DataFrame, rows: np.ndarray | Sequence[int]) -> list[Path]:
    """Absolute paths of the ``filepath`` of event rows (joined to ``study_root`` if relative)."""
    paths = events["filepath"].to_numpy()[np.asarray(rows)]
    roots = (
        events["study_root"].to_numpy()[np.asarray(rows)]
        if "study_root" in events.columns
        else [None] * len(paths)
    )
    out = []
    for p, root in zip(paths, roots):
        path = Path(str(p))
        if not path.is_absolute() and isinstance(root, str) and root:
            path = Path(root) / path
        out.append(path)
    return out


def _finite_or_zero(value: Any) -> float:
    """``float(value)``, with None and NaN read as 0 (a missing ``offset``)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return 0.0
    return out if np.isfinite(out) else 0.0


def source_identity(
    path: Path, root: str | None = None, *, content_hash: bool = False
) -> tuple[Any, ...]:
    """Identity of a source file for cache keys: study-relative path, size and mtime.

    Paths under ``root`` are keyed relative to it, so a store prepared with data in ``~/data``
    serves a machine whose data lives in ``/scratch/data``. With ``content_hash`` the file's
    blake2b digest replaces size and mtime.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"recording file not found: {path}") from None
    rel = str(path)
    if root:
        try:
            rel = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            rel = str(path)
    if content_hash:
        import hashlib

        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return (rel, digest.hexdigest())
    return (rel, st.st_size, st.st_mtime_ns)


@config
class Extractor(Config):
    """Base of all extractors.

    Parameters
    ----------
    event_type
        Event type read by the extractor (defaults to the class's ``default_event_type``).
    output
        ``"dynamic"`` (``features x time`` at ``frequency``) or ``"static"`` (``features``).
    frequency
        Output sampling frequency in Hz for dynamic outputs (``None``: the natural one).
    aggregation
        How a dynamic series becomes static: ``"mean"`` over the window, or the value at the
        ``"trigger"`` onset.
    """

    default_event_type: ClassVar[str] = ""
    #: Fields that only change how stored items are read, not what is stored (left out of item keys).
    read_fields: ClassVar[tuple[str, ...]] = ("output", "aggregation")

    event_type: str = ""
    output: Literal["dynamic", "static"] = "dynamic"
    frequency: float | None = None
    aggregation: Literal["mean", "trigger"] = "mean"
    batch_size: int = dataclasses.field(default=16, metadata=KEY_EXCLUDED)

    def _check(self) -> None:
        if self.frequency is not None and self.frequency <= 0:
            raise ConfigError(
                f"{type(self).__name__}.frequency: must be > 0 Hz, got {self.frequency}"
            )
        if self.batch_size < 1:
            raise ConfigError(
                f"{type(self).__name__}.batch_size: must be >= 1, got {self.batch_size}"
            )

    @property
    def resolved_event_type(self) -> str:
        return self.event_type or self.default_event_type

    # -- phase 2: prepare ---------------------------------------------------------------
    def items(self, events: pd.DataFrame) -> list[Item]:
        """The items this extractor needs for ``events`` (no heavy work, no signal read)."""
        raise NotImplementedError

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        """Compute several items (override to batch, e.g. a model forward pass)."""
        return [self.compute(item) for item in items]

    def compute(self, item: Item) -> Computed:
        """Compute one item."""
        raise NotImplementedError

    def fit(self, events: pd.DataFrame, store: Store) -> None:
        """Optional step run by ``prepare`` after all items are stored (e.g. fit an encoder)."""

    def prepare(
        self,
        events: pd.DataFrame,
        store: Store | None = None,
        *,
        executor: Any = None,
        progress: bool = True,
        retry: bool | None = None,
    ) -> Any:
        """Compute and store whatever is missing for ``events`` (incremental).

        Parameters
        ----------
        events
            Validated events table (or the ``events`` of a :class:`Segments`).
        store
            Where results go (default: :class:`~neuralset.store.Store` at its default root).
        executor
            How to run (inline by default; see :mod:`neuralset.execution`). Never part of a key.
        progress
            Show a progress bar.
        retry
            Recompute the items whose earlier computation failed (their error entries are kept
            otherwise, and reported without recomputing).

        Returns
        -------
        PrepareReport
            Counts of items computed, already stored and failed.
        """
        from ..execution import run_prepare

        return run_prepare(
            self, events, store or Store(), executor=executor, progress=progress, retry=retry
        )

    def is_prepared(self, events: pd.DataFrame, store: Store) -> list[str]:
        """Labels of the items still missing from the store (empty when prepared)."""
        items = self.items(events)
        missing = set(store.missing([i.key for i in items]))
        return [i.label for i in items if i.key in missing]

    @property
    def prepare_key(self) -> str:
        """Key of what ``prepare`` stores: the config key without :attr:`read_fields`.

        Computed once per (frozen) instance: reads ask for it on every batch.
        """
        cached = self.__dict__.get("_prepare_key_cache")
        if cached is not None:
            return str(cached)
        cls = type(self)
        fields = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if is_keyed_field(f) and f.name not in self.read_fields
        }
        key = structural_key((f"{cls.__module__}.{cls.__qualname__}", cls._version, fields))
        self.__dict__["_prepare_key_cache"] = key  # frozen dataclass: bypass __setattr__
        return key

    def item_key(self, *identity: Any) -> str:
        """Store key of an item: :attr:`prepare_key` chained with the item's identity."""
        return chain_keys(self.prepare_key, structural_key(identity))

    # -- phase 3: read ------------------------------------------------------------------
    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        """Arrays for a batch of segments (see :class:`Output`)."""
        raise NotImplementedError

    def n_times(self, duration: float) -> int:
        """Number of output samples of a dynamic window of ``duration`` seconds."""
        if self.frequency is None:
            raise ConfigError(f"{type(self).__name__}.frequency must be set for dynamic outputs")
        return int(round(duration * self.frequency))


@config
class RecordingExtractor(Extractor):
    """An extractor with one stored, time-major series per recording event.

    Subclasses implement :meth:`compute_recording` returning ``(data, sfreq, meta)`` with
    ``data`` shaped ``(time, *features)`` and sample 0 at the recording event's ``start``.
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

    def compute(self, item: Item) -> Computed:
        data, sfreq, meta = self.compute_recording(item.payload)
        data = np.ascontiguousarray(data, dtype=np.float32)
        return Computed(arrays={"data": data}, meta={"sfreq": float(sfreq), **meta})

    def compute_recording(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        raise NotImplementedError

    def _recording_keys(
        self, segments: Segments, *, out_of_bounds: OutOfBounds = "error"
    ) -> tuple[np.ndarray, dict[int, str]]:
        """Recording row of each segment (-1 if none) and the store key per row.

        The recording is the one spanning the segment's start; with ``out_of_bounds="pad"`` a
        segment starting before every recording takes the first recording it overlaps. Keys are
        cached on the segments' event index, which selections of the same segments share, so a
        batch costs no ``stat`` or hashing after the first.
        """
        etype = self.resolved_event_type
        index = segments.index
        rows = _covering_recording(segments, etype)
        if out_of_bounds == "pad" and (rows < 0).any():
            lacking = np.flatnonzero(rows < 0)
            seg, ev = index.overlapping(
                segments.timeline[lacking], segments.start[lacking], segments.stop[lacking], etype
            )
            if len(seg):
                first_pair = np.unique(seg, return_index=True)[1]
                rows[lacking[seg[first_pair]]] = ev[first_pair]
        cache: dict[tuple[str, int], str] = index.__dict__.setdefault("_recording_item_keys", {})
        pk = self.prepare_key
        needed = np.unique(rows[rows >= 0]).tolist()
        missing_rows = [r for r in needed if (pk, r) not in cache]
        if missing_rows:
            sub = segments.events.iloc[missing_rows]
            for row, item in zip(missing_rows, self.items(sub)):
                cache[(pk, row)] = item.key
        return rows, {r: cache[(pk, r)] for r in needed}

    def _open_recording(
        self, store: Store, key: str, events: pd.DataFrame, row: int
    ) -> tuple[np.ndarray, float]:
        """The memory-mapped stored series of a recording and its rate.

        Cached per process; a hit is revalidated with one ``os.stat`` of the array file (a
        deleted or rewritten entry is opened again, or reported as not prepared).
        """
        cache_key = (str(store.root), key)
        if _OPEN_RECORDINGS.get("pid") != os.getpid():
            _OPEN_RECORDINGS.clear()
            _OPEN_RECORDINGS["pid"] = os.getpid()
        hit = _OPEN_RECORDINGS.get(cache_key)
        if hit is not None:
            data, sfreq, path, stamp = hit
            try:
                st = os.stat(path)
                if (st.st_ino, st.st_mtime_ns) == stamp:
                    return data, sfreq
            except OSError:
                pass
        try:
            # a plain ndarray view of the memory map: same pages, no np.memmap overhead per slice
            data = store.get_arrays(key)["data"].view(np.ndarray)
            sfreq = float(store.meta(key)["sfreq"])
            path = str(store.array_dir(key) / "data.npy")
            st = os.stat(path)
        except Exception as err:
            _OPEN_RECORDINGS.pop(cache_key, None)
            raise ExtractorNotPreparedError(
                f"{type(self).__name__} has no stored data for {events_label(events, row)}; "
                "call extractor.prepare(events, store) (or dataset.prepare()) first"
            ) from err
        if len(_OPEN_RECORDINGS) > _MAX_OPEN_RECORDINGS:
            for old in [k for k in _OPEN_RECORDINGS if k != "pid"][: _MAX_OPEN_RECORDINGS // 2]:
                del _OPEN_RECORDINGS[old]
        _OPEN_RECORDINGS[cache_key] = (data, sfreq, path, (st.st_ino, st.st_mtime_ns))
        return data, sfreq

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        n = len(segments)
        etype = self.resolved_event_type
        rec_rows, keys = self._recording_keys(segments, out_of_bounds=out_of_bounds)
        if out_of_bounds != "drop" and (rec_rows < 0).any():
            bad = np.flatnonzero(rec_rows < 0)[:3]
            raise OutOfBoundsError(
                f"segments {bad.tolist()} start outside every {etype} recording "
                f"of their timeline; drop them with segments.require('{etype}') "
                "or read with out_of_bounds='drop'"
            )
        dynamic = self.output == "dynamic"
        n_times = 0
        if dynamic and n:
            dur = segments.duration
            if float(dur.max() - dur.min()) > 1e-8 + 1e-5 * abs(float(dur[0])):
                raise ValueError("dynamic outputs need segments of equal duration within a batch")
            n_times = self.n_times(float(dur[0]))
        ev_start = segments.index.__dict__.get("_event_starts")
        if ev_start is None:
            ev_start = segments.index.__dict__["_event_starts"] = segments.events[
                "start"
            ].to_numpy()
        out: np.ndarray | None = None
        chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        mask = np.zeros((n, n_times), dtype=bool) if dynamic else None
        feature_shape: tuple[int, ...] | None = None
        all_rows = len(keys) == 1 and bool((rec_rows >= 0).all())
        for row, key in keys.items():
            which = np.arange(n) if all_rows else np.flatnonzero(rec_rows == row)
            data, sfreq = self._open_recording(store, key, segments.events, row)
            feature_shape = data.shape[1:]
            if self.frequency is not None and abs(sfreq - self.frequency) > 1e-6:
                raise ValueError(
                    f"stored recording {key} is at {sfreq} Hz but the extractor asks {self.frequency} Hz"
                )
            rec_start = float(ev_start[row])
            n_rec = data.shape[0]
            first = np.round((segments.start[which] - rec_start) * sfreq).astype(np.int64)
            if dynamic:
                if out is None:
                    # every row is written below, except rows without a recording, which only
                    # exist with out_of_bounds="drop" and are dropped: no zero-fill needed
                    out = np.empty((n, *feature_shape, n_times), dtype=np.float32)
                inside = (
                    bool(len(first))
                    and int(first.min()) >= 0
                    and int(first.max()) + n_times <= n_rec
                )
                idx = first[:, None] + np.arange(n_times)[None, :]
                if inside:  # fast path: every window lies inside the recording
                    assert mask is not None
                    mask[which] = True
                    gathered = np.take(data, idx, axis=0)  # (k, time, *features)
                else:
                    valid = (idx >= 0) & (idx < n_rec)
                    self._check_bounds(valid, which, out_of_bounds, segments, row, n_rec, sfreq)
                    assert mask is not None
                    mask[which] = valid
                    gathered = np.take(data, np.clip(idx, 0, n_rec - 1), axis=0)
                    gathered[~valid] = 0
                out[which] = np.moveaxis(gathered, 1, -1)
                continue
            if self.aggregation == "trigger":
                trig_start = ev_start[np.maximum(segments.trigger[which], 0)]
                idx = np.round((trig_start - rec_start) * sfreq).astype(np.int64)[:, None]
            else:
                lengths = np.round(segments.duration[which] * sfreq).astype(np.int64)
                width = int(lengths.max()) if len(lengths) else 0
                idx = first[:, None] + np.arange(max(width, 1))[None, :]
            valid = (idx >= 0) & (idx < n_rec)
            self._check_bounds(valid, which, out_of_bounds, segments, row, n_rec, sfreq)
            gathered = data[np.clip(idx, 0, n_rec - 1)]  # (k, time, *features)
            if not valid.all():
                gathered = np.where(
                    valid.reshape(valid.shape + (1,) * len(feature_shape)), gathered, 0
                )
            if self.aggregation == "mean":
                denom = np.maximum(valid.sum(axis=1), 1).reshape((-1,) + (1,) * len(feature_shape))
                gathered = gathered.sum(axis=1) / denom
            else:
                gathered = gathered[:, 0]
            chunks.append((which, np.asarray(gathered, dtype=np.float32), valid))
        if not dynamic:
            return _assemble(
                n, chunks, feature_shape or (0,), self.output, n_times, out_of_bounds, rec_rows
            )
        assert mask is not None
        if out is None:
            out = np.zeros((n, *(feature_shape or (0,)), n_times), dtype=np.float32)
        if out_of_bounds == "drop":
            keep = (rec_rows >= 0) & mask.all(axis=1)
            return Output(data=out if keep.all() else out[keep], keep=keep)
        if out_of_bounds == "pad":
            return Output(data=out, mask=mask)
        return Output(data=out)

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


def _covering_recording(segments: Segments, etype: str) -> np.ndarray:
    """``segments.index.covering(timeline, start, start, etype)``, with a lookup-table fast path.

    When each timeline has at most one event of ``etype`` (the usual one recording per
    timeline), the answer is a table lookup plus two comparisons, instead of a grouped binary
    search; the table is cached on the event index.
    """
    index = segments.index
    cache: dict[str, Any] = index.__dict__.setdefault("_recording_spans", {})
    spans = cache.get(etype)
    if spans is None:
        events = segments.events
        rows = np.flatnonzero((events["type"] == etype).to_numpy())
        tl = events["timeline"].cat.codes.to_numpy().astype(np.int64)[rows]
        n_tl = len(index.timelines)
        if len(rows) and np.bincount(tl, minlength=n_tl).max() > 1:
            spans = False
        else:
            start = events["start"].to_numpy()[rows]
            stop = np.maximum(
                start + events["duration"].to_numpy()[rows], np.nextafter(start, np.inf)
            )
            row_of = np.full(n_tl, -1, dtype=np.int64)
            lo = np.full(n_tl, np.inf)
            hi = np.full(n_tl, -np.inf)
            row_of[tl], lo[tl], hi[tl] = rows, start, stop
            spans = (row_of, lo, hi)
        cache[etype] = spans
    if spans is False:
        return index.covering(segments.timeline, segments.start, segments.start, etype)
    row_of, lo, hi = spans  # type: ignore[misc]
    tl = segments.timeline
    s = segments.start
    ok = (lo[tl] <= s) & (hi[tl] >= s - 1e-9)
    return np.where(ok, row_of[tl], -1)


#: Per-process cache of opened (memory-mapped) recordings:
#: (store root, key) -> (data, sfreq, array file path, (inode, mtime)).
_OPEN_RECORDINGS: dict[Any, Any] = {}
_MAX_OPEN_RECORDINGS = 4096


def events_label(events: pd.DataFrame, row: int) -> str:
    """Short description of an event row for error messages."""
    ev = events.iloc[int(row)]
    path = ev.get("filepath", "")
    return f"{ev['type']} event {row} (timeline {ev['timeline']!s}, file {path})"


def _assemble(
    n: int,
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    feature_shape: tuple[int, ...],
    output: str,
    n_times: int,
    out_of_bounds: str,
    rec_rows: np.ndarray,
) -> Output:
    shape = (n, *feature_shape, n_times) if output == "dynamic" else (n, *feature_shape)
    data = np.zeros(shape, dtype=np.float32)
    mask = np.zeros((n, n_times if output == "dynamic" else 1), dtype=bool)
    for which, values, valid in chunks:
        data[which] = values
        if output == "dynamic":
            mask[which] = valid
        else:
            mask[which] = valid.all(axis=1, keepdims=True)
    keep = rec_rows >= 0
    if out_of_bounds == "drop":
        keep &= mask.all(axis=1)
        return Output(data=data[keep], keep=keep)
    if out_of_bounds == "pad":
        return Output(data=data, mask=mask)
    return Output(data=data)


@dataclasses.dataclass(frozen=True)
class Series:
    """A stored per-event feature series: ``data`` is ``(time, *features)`` at ``sfreq`` Hz.

    Sample ``i`` is at ``i / sfreq`` seconds after the event's onset.
    """

    data: np.ndarray
    sfreq: float


def resample_series(series: Series, times: np.ndarray) -> np.ndarray:
    """Values of ``series`` at ``times`` (seconds from the event onset), ``(len(times), *features)``.

    Upsampling (or equal rates) interpolates linearly between stored samples; downsampling
    (by more than 1.5x) averages the linear interpolant over ``[t - 0.5 / f, t + 0.5 / f]``
    around each time, where ``f`` is the output rate implied by ``times`` (a box anti-aliasing
    filter, clipped to the stored span). Times before the first or after the last stored sample
    take the nearest sample.
    """
    data = np.asarray(series.data, dtype=np.float32)
    n = data.shape[0]
    times = np.asarray(times, dtype=np.float64)
    if n == 0:
        return np.zeros((len(times), *data.shape[1:]), np.float32)
    pos = np.round(times * series.sfreq, 6)
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
    (sample ``i`` at ``i / rate`` s after the event onset, e.g. a model's latent rate).

    Reading with ``output="dynamic"`` paints each event over the segment's time grid at
    ``frequency`` (static vectors repeated over ``[start, stop)``; series resampled with
    :func:`resample_series`; where events overlap, the later one in the table wins; with
    ``frequency=None`` the stored rate of the series is used). With ``output="static"``, a series
    is first averaged over time; ``aggregation="trigger"`` returns the trigger event's vector and
    ``"mean"`` averages the vectors of the events overlapping the window.
    """

    #: stored values do not depend on the painting frequency either
    read_fields: ClassVar[tuple[str, ...]] = ("output", "aggregation", "frequency")

    def event_rows(self, events: pd.DataFrame) -> np.ndarray:
        return np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        """Store key of the item of each event row (same order)."""
        raise NotImplementedError

    def _cached_row_keys(self, segments: Segments, rows: np.ndarray) -> list[str]:
        # cached on the event index, which selections of the same segments share
        cache: dict[tuple[str, int], str] = segments.index.__dict__.setdefault("_row_keys", {})
        pk = self.prepare_key
        missing = [int(r) for r in np.unique(rows) if (pk, int(r)) not in cache]
        if missing:
            for r, k in zip(missing, self.row_keys(segments.events, np.asarray(missing, np.int64))):
                cache[(pk, r)] = k
        return [cache[(pk, int(r))] for r in rows]

    def _values(
        self, segments: Segments, store: Store, rows: np.ndarray
    ) -> list[np.ndarray | Series]:
        idx_dict = segments.index.__dict__
        cache: dict[str, np.ndarray | Series] = idx_dict.setdefault("_values_cache", {})
        keys = self._cached_row_keys(segments, rows)
        out: list[np.ndarray | Series] = []
        for row, key in zip(rows, keys):
            value = cache.get(key)
            if value is None:
                value = self._load(store, key, segments.events, int(row))
                if len(cache) < 100_000:
                    cache[key] = value
            out.append(value)
        return out

    def _load(self, store: Store, key: str, events: pd.DataFrame, row: int) -> np.ndarray | Series:
        from ..store.store import StoreError

        try:
            try:
                return np.asarray(store.get_value(key), dtype=np.float32)
            except StoreError as err:
                if "holds arrays" not in str(err):
                    raise
            data = store.get_arrays(key)["data"]
            return Series(data=data, sfreq=float(store.meta(key)["sfreq"]))
        except Exception as err:
            raise ExtractorNotPreparedError(
                f"{type(self).__name__} has no stored features for {events_label(events, row)}; "
                "call extractor.prepare(events, store) first"
            ) from err

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        n = len(segments)
        etype = self.resolved_event_type
        events = segments.events
        if self.output == "static":
            if self.aggregation == "trigger":
                rows = segments.trigger
                if (rows < 0).any() or (
                    events["type"].to_numpy()[np.maximum(rows, 0)] != etype
                ).any():
                    raise ValueError(
                        f"{type(self).__name__}: static output with aggregation='trigger' needs segments "
                        f"triggered on {etype} events; use aggregation='mean' otherwise"
                    )
                values = self._values(segments, store, rows)
                if not values:
                    return Output(data=np.zeros((0,), np.float32))
                return Output(data=np.stack([_static_of(v) for v in values]).astype(np.float32))
            seg, rows = segments.overlapping(etype)
            values = self._values(segments, store, rows)
            if not values:
                raise ValueError(f"no {etype} events in these segments")
            flat = np.stack([_static_of(v) for v in values])
            sums = np.zeros((n, *flat.shape[1:]), np.float32)
            np.add.at(sums, seg, flat)
            counts = np.bincount(seg, minlength=n).reshape((-1,) + (1,) * (flat.ndim - 1))
            return Output(data=sums / np.maximum(counts, 1))
        if n and not np.allclose(segments.duration, segments.duration[0]):
            raise ValueError("dynamic outputs need segments of equal duration within a batch")
        seg, rows = segments.overlapping(etype)
        values = self._values(segments, store, rows)
        freq = self.frequency
        if freq is None:
            rates = {v.sfreq for v in values if isinstance(v, Series)}
            if len(rates) != 1:
                raise ConfigError(
                    f"{type(self).__name__}.frequency must be set for dynamic outputs"
                    + (" (the stored series have different rates)" if rates else "")
                )
            freq = rates.pop()
        n_times = int(round(float(segments.duration[0]) * freq)) if n else 0
        if not values:
            return Output(data=np.zeros((n, 0, n_times), dtype=np.float32))
        feature_shape = _static_of(values[0]).shape
        ev_start = events["start"].to_numpy()[rows]
        ev_stop = ev_start + events["duration"].to_numpy()[rows]
        # sample s of segment i is at time start_i + s / freq; painted where ev_start <= t < ev_stop
        lo = np.ceil((ev_start - segments.start[seg]) * freq - 1e-6).astype(np.int64)
        hi = np.ceil((ev_stop - segments.start[seg]) * freq - 1e-6).astype(np.int64)
        hi = np.maximum(hi, lo + 1)  # an instantaneous event still covers its onset sample
        lo_c, hi_c = np.clip(lo, 0, n_times), np.clip(hi, 0, n_times)
        is_series = np.array([isinstance(v, Series) for v in values], dtype=bool)
        # owner[i, s]: index of the (segment, event) pair painted at sample s (later pairs win)
        owner = np.full((n, n_times), -1, dtype=np.int64)
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
        gathered = table[np.where(owner >= 0, owner + 1, 0)]  # (n, time, *features)
        # series: resampled at the sample times they own
        for j in np.flatnonzero(is_series):
            ii, ss = np.nonzero(owner[seg[j] : seg[j] + 1] == j)
            if not len(ss):
                continue
            times = segments.start[seg[j]] + ss / freq - ev_start[j]
            gathered[seg[j], ss] = resample_series(values[j], times)  # type: ignore[arg-type]
        return Output(data=np.ascontiguousarray(np.moveaxis(gathered, 1, -1)))

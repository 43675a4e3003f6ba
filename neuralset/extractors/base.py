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


def source_identity(path: Path, root: str | None = None, *, content_hash: bool = False) -> tuple[Any, ...]:
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
            raise ConfigError(f"{type(self).__name__}.batch_size: must be >= 1, got {self.batch_size}")

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

        Returns
        -------
        PrepareReport
            Counts of items computed, already stored and failed.
        """
        from ..execution import run_prepare

        return run_prepare(self, events, store or Store(), executor=executor, progress=progress)

    def is_prepared(self, events: pd.DataFrame, store: Store) -> list[str]:
        """Labels of the items still missing from the store (empty when prepared)."""
        items = self.items(events)
        missing = set(store.missing([i.key for i in items]))
        return [i.label for i in items if i.key in missing]

    @property
    def prepare_key(self) -> str:
        """Key of what ``prepare`` stores: the config key without :attr:`read_fields`."""
        cls = type(self)
        fields = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if is_keyed_field(f) and f.name not in self.read_fields
        }
        return structural_key((f"{cls.__module__}.{cls.__qualname__}", cls._version, fields))

    def item_key(self, *identity: Any) -> str:
        """Store key of an item: :attr:`prepare_key` chained with the item's identity."""
        return chain_keys(self.prepare_key, structural_key(identity))

    # -- phase 3: read ------------------------------------------------------------------
    def read(self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error") -> Output:
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
        roots = events["study_root"].to_numpy()[rows] if "study_root" in events.columns else [None] * len(rows)
        out = []
        for row, path, root in zip(rows, paths, roots):
            ev = events.iloc[int(row)]
            ident = source_identity(path, root if isinstance(root, str) else None, content_hash=self.content_hash)
            payload = {
                "path": str(path),
                "row": int(row),
                "start": float(ev["start"]),
                "duration": float(ev["duration"]),
                "offset": float(ev.get("offset", 0.0) or 0.0),
                "timeline": str(ev["timeline"]),
            }
            key = self.item_key(ident, payload["offset"])
            out.append(Item(key=key, label=str(path), payload=payload))
        return out

    def compute(self, item: Item) -> Computed:
        data, sfreq, meta = self.compute_recording(item.payload)
        data = np.ascontiguousarray(data, dtype=np.float32)
        return Computed(arrays={"data": data}, meta={"sfreq": float(sfreq), **meta})

    def compute_recording(self, payload: dict[str, Any]) -> tuple[np.ndarray, float, dict[str, Any]]:
        raise NotImplementedError

    def _recording_keys(self, segments: Segments) -> tuple[np.ndarray, dict[int, str]]:
        """Recording row covering each segment (-1 if none) and the store key per row."""
        events = segments.events
        cache = segments.__dict__.setdefault("_item_keys", {})
        rows = segments.index.covering(segments.timeline, segments.start, segments.start, self.resolved_event_type)
        keys: dict[int, str] = {}
        needed = np.unique(rows[rows >= 0])
        missing_rows = [int(r) for r in needed if (self.prepare_key, int(r)) not in cache]
        if missing_rows:
            sub = events.iloc[missing_rows]
            for row, item in zip(missing_rows, self.items(sub)):
                cache[(self.prepare_key, row)] = item.key
        for r in needed:
            keys[int(r)] = cache[(self.prepare_key, int(r))]
        return rows, keys

    def read(self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error") -> Output:
        n = len(segments)
        rec_rows, keys = self._recording_keys(segments)
        if (rec_rows < 0).any():
            bad = np.flatnonzero(rec_rows < 0)[:3]
            if out_of_bounds != "drop":
                raise OutOfBoundsError(
                    f"segments {bad.tolist()} start outside every {self.resolved_event_type} recording "
                    f"of their timeline; drop them with segments.require('{self.resolved_event_type}') "
                    "or read with out_of_bounds='drop'"
                )
        chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        feature_shape: tuple[int, ...] | None = None
        n_times = self.n_times(float(segments.duration[0])) if (self.output == "dynamic" and n) else 0
        if self.output == "dynamic" and n and not np.allclose(segments.duration, segments.duration[0]):
            raise ValueError("dynamic outputs need segments of equal duration within a batch")
        for row, key in keys.items():
            which = np.flatnonzero(rec_rows == row)
            try:
                arrays = store.get_arrays(key)
            except Exception as err:
                raise ExtractorNotPreparedError(
                    f"{type(self).__name__} has no stored data for {events_label(segments.events, row)}; "
                    "call extractor.prepare(events, store) (or dataset.prepare()) first"
                ) from err
            meta = store.meta(key)
            data = arrays["data"]
            feature_shape = data.shape[1:]
            sfreq = meta["sfreq"]
            if self.frequency is not None and abs(sfreq - self.frequency) > 1e-6:
                raise ValueError(
                    f"stored recording {key} is at {sfreq} Hz but the extractor asks {self.frequency} Hz"
                )
            rec_start = float(segments.events["start"].to_numpy()[row])
            first = np.round((segments.start[which] - rec_start) * sfreq).astype(np.int64)
            if self.output == "dynamic":
                idx = first[:, None] + np.arange(n_times)[None, :]
            else:
                if self.aggregation == "trigger":
                    trig_start = segments.events["start"].to_numpy()[np.maximum(segments.trigger[which], 0)]
                    idx = np.round((trig_start - rec_start) * sfreq).astype(np.int64)[:, None]
                else:
                    lengths = np.round(segments.duration[which] * sfreq).astype(np.int64)
                    width = int(lengths.max()) if len(lengths) else 0
                    idx = first[:, None] + np.arange(max(width, 1))[None, :]
            valid = (idx >= 0) & (idx < data.shape[0])
            ok_rows = valid.all(axis=1)
            if not ok_rows.all() and out_of_bounds == "error":
                bad = which[~ok_rows][:3]
                raise OutOfBoundsError(
                    f"segments {bad.tolist()} run past the start or end of {events_label(segments.events, row)} "
                    f"({data.shape[0]} samples at {sfreq} Hz); pass out_of_bounds='drop' or 'pad', "
                    "or shorten the windows"
                )
            gathered = data[np.clip(idx, 0, data.shape[0] - 1)]  # (k, time, *features)
            if not valid.all():
                gathered = np.where(valid.reshape(valid.shape + (1,) * len(feature_shape)), gathered, 0)
            if self.output == "static" and self.aggregation == "mean":
                denom = np.maximum(valid.sum(axis=1), 1).reshape((-1,) + (1,) * len(feature_shape))
                gathered = gathered.sum(axis=1) / denom
            elif self.output == "static":
                gathered = gathered[:, 0]
            else:
                gathered = np.moveaxis(gathered, 1, -1)
            chunks.append((which, np.asarray(gathered, dtype=np.float32), valid))
        return _assemble(n, chunks, feature_shape or (0,), self.output, n_times, out_of_bounds, rec_rows)


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


@config
class EventFeatureExtractor(Extractor):
    """An extractor with one feature vector or series per event (stimuli, labels).

    Subclasses implement :meth:`items` (one item per distinct event content) and
    :meth:`compute_many`, returning a :class:`Computed` whose ``value`` is a float array of shape
    ``(*features)`` (static) or ``(time, *features)`` with ``meta["sfreq"]`` (dynamic). Reading
    paints each event's features over the segment's time grid (dynamic output) or returns the
    trigger event's features (static output; ``"mean"`` averages the events in the window).
    """

    def event_rows(self, events: pd.DataFrame) -> np.ndarray:
        return np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        """Store key of the item of each event row (same order)."""
        raise NotImplementedError

    def _values(self, segments: Segments, store: Store, rows: np.ndarray) -> list[np.ndarray]:
        cache: dict[str, np.ndarray] = segments.__dict__.setdefault("_values_cache", {})
        keys = self.row_keys(segments.events, rows)
        out = []
        for row, key in zip(rows, keys):
            value = cache.get(key)
            if value is None:
                try:
                    value = np.asarray(store.get_value(key), dtype=np.float32)
                except Exception as err:
                    raise ExtractorNotPreparedError(
                        f"{type(self).__name__} has no stored features for {events_label(segments.events, int(row))}; "
                        "call extractor.prepare(events, store) first"
                    ) from err
                if len(cache) < 100_000:
                    cache[key] = value
            out.append(value)
        return out

    def read(self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error") -> Output:
        n = len(segments)
        etype = self.resolved_event_type
        events = segments.events
        if self.output == "static":
            if self.aggregation == "trigger":
                rows = segments.trigger
                if (rows < 0).any() or (events["type"].to_numpy()[np.maximum(rows, 0)] != etype).any():
                    raise ValueError(
                        f"{type(self).__name__}: static output with aggregation='trigger' needs segments "
                        f"triggered on {etype} events; use aggregation='mean' otherwise"
                    )
                values = self._values(segments, store, rows)
                return Output(data=np.stack(values).astype(np.float32) if values else np.zeros((0,), np.float32))
            seg, rows = segments.overlapping(etype)
            values = self._values(segments, store, rows)
            if not values:
                raise ValueError(f"no {etype} events in these segments")
            flat = np.stack([v if v.ndim == 1 else v.mean(axis=0) for v in values])
            sums = np.zeros((n, *flat.shape[1:]), np.float32)
            np.add.at(sums, seg, flat)
            counts = np.bincount(seg, minlength=n).reshape((-1,) + (1,) * (flat.ndim - 1))
            return Output(data=sums / np.maximum(counts, 1))
        if n and not np.allclose(segments.duration, segments.duration[0]):
            raise ValueError("dynamic outputs need segments of equal duration within a batch")
        n_times = self.n_times(float(segments.duration[0])) if n else 0
        freq = float(self.frequency or 0)
        seg, rows = segments.overlapping(etype)
        values = self._values(segments, store, rows)
        feature_shape: tuple[int, ...] = ()
        if values:
            v0 = values[0]
            feature_shape = v0.shape if self._is_static_value(v0) else v0.shape[1:]
        data = np.zeros((n, *feature_shape, n_times), dtype=np.float32)
        if not values:
            return Output(data=data)
        ev_start = events["start"].to_numpy()[rows]
        ev_stop = ev_start + events["duration"].to_numpy()[rows]
        # sample s of segment i is at time start_i + s / freq; painted where ev_start <= t < ev_stop
        lo = np.ceil((ev_start - segments.start[seg]) * freq - 1e-6).astype(np.int64)
        hi = np.ceil((ev_stop - segments.start[seg]) * freq - 1e-6).astype(np.int64)
        hi = np.maximum(hi, lo + 1)  # an instantaneous event still covers its onset sample
        lo_c, hi_c = np.clip(lo, 0, n_times), np.clip(hi, 0, n_times)
        for j, (i, a, b) in enumerate(zip(seg, lo_c, hi_c)):
            if b <= a:
                continue
            value = values[j]
            if self._is_static_value(value):
                data[i, ..., a:b] = value[..., None]
            else:
                data[i, ..., a:b] = self._resample_series(value, rows[j], a - lo[j], b - a, freq).T
        return Output(data=data)

    def _is_static_value(self, value: np.ndarray) -> bool:
        return True

    def _resample_series(self, value: np.ndarray, row: int, first: int, count: int, freq: float) -> np.ndarray:
        """Samples ``first .. first+count`` (at ``freq``, from the event onset) of a stored series."""
        raise NotImplementedError

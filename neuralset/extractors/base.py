"""Extractors: configs that turn the events of segments into arrays, in three phases.

1. **Configure**: an extractor is a frozen :class:`~neuralset.config.Config`, validated when built.
2. **Prepare**: :meth:`Extractor.prepare` lists the *items* an extractor needs (a recording, a
   word in its context, an image), finds those missing from the store (incremental), computes
   them (:meth:`Extractor.compute_many`, through an executor) and commits them.
3. **Read**: :meth:`Extractor.read` returns the arrays of a whole batch of segments at once, from
   memory-mapped store entries, without per-segment Python work.

Two families share this interface:

* :class:`~neuralset.extractors.recording.RecordingExtractor` - one stored time series per recording
  event (time-major, at the extractor's frequency); reading copies each window into the batch.
* :class:`~neuralset.extractors.event_features.EventFeatureExtractor` - one feature vector (static) or feature series (dynamic) per
  event; reading paints them over each segment's time grid, or takes the trigger's value.

Any output can be *dynamic* (``features x time`` at ``frequency``) or *static* (``features``):
a dynamic series is aggregated over the window (``"mean"``) or sampled at the trigger
(``"trigger"``); a static vector is painted over the event's span at any frequency.

The interface, declared once by :class:`Extractor` (an abstract base class):

* to implement: :meth:`Extractor.items` and :meth:`Extractor.read`, plus
  :meth:`Extractor.compute` (or :meth:`Extractor.compute_many`, to batch);
* optional steps: :meth:`Extractor.preflight` (cheap checks before any work) and
  :meth:`Extractor.fit` (after every item is stored);
* typed hooks read by the other layers: :attr:`Extractor.requires_gpu` (the prepare driver asks
  its executor for a GPU, :meth:`~neuralset.execution.executors.Executor.for_extractor`),
  :attr:`Extractor.output_dtype` (the dtype of what :meth:`Extractor.read` returns),
  :meth:`Extractor.batch_layout` (the jaxtyping layout of the output in a batch, checked by
  the loaders), :attr:`Extractor.needs_event_in_every_segment` and
  :meth:`Extractor.check_segments` (what a dataset checks before its first batch),
  :meth:`Extractor.output_channels` and :meth:`Extractor.vocabulary` (names of the output's
  channels or classes, used by the plots), :meth:`Extractor.fit_key` (a whole-table fit that
  wrappers such as ``HrfConvolve`` key on), :meth:`Extractor.to_storage` (the stored precision,
  applied by the prepare driver).

The prepare driver (:mod:`neuralset.execution`) sits below this module and never imports it:
it types extractors with the :class:`~neuralset.execution.protocols.Preparable` protocol,
which every :class:`Extractor` satisfies.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ..config import Config, ConfigError, config
from ..hashing import (
    KEY_EXCLUDED,
    KEY_UNLESS_DEFAULT,
    chain_keys,
    class_identity,
    file_identity,
    keyed_fields,
    legacy_mode,
    structural_key,
)
from ..memo import Slot, frozen_memo
from ..segments import Segments
from ..store import Store
from ..store.mapped import revalidate
from ..validation import at_least, positive

if TYPE_CHECKING:
    from ..entities import LinkReport
    from ..execution import Executor, PrepareReport

__all__ = [
    "Item",
    "Computed",
    "Extractor",
    "Output",
    "ExtractorNotPreparedError",
    "OutOfBoundsError",
    "source_identity",
    "source_path",
    "OutOfBounds",
    "events_label",
    "default_layout",
]

OutOfBounds = Literal["error", "drop", "pad"]

#: largest finite float16 value, and the smallest normal one (below it precision drops)
_F16_MAX = 65504.0
_F16_TINY = 2.0**-14

#: :attr:`Extractor.prepare_key`, computed once per (frozen) instance.
_PREPARE_KEY: Slot[str] = Slot("prepare key")


def default_layout(name: str, output: str, kind: str = "Float") -> str:
    """Layout of an extractor output in a batch: a jaxtyping dtype class then the dimensions.

    Dimensions are scoped by the extractor name, e.g. ``"Float batch *meg_features meg_time"``
    for a dynamic output (``Float[Tensor, "batch *meg_features meg_time"]``) or ``"Int batch
    *label_features"`` for integer labels.

    Examples
    --------
    >>> default_layout("meg", "dynamic")
    'Float batch *meg_features meg_time'
    >>> default_layout("label", "static", "Int")
    'Int batch *label_features'
    """
    if output == "dynamic":
        return f"{kind} batch *{name}_features {name}_time"
    return f"{kind} batch *{name}_features"


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
        return file_identity(path, root, content_hash=content_hash)
    except FileNotFoundError:
        raise FileNotFoundError(f"recording file not found: {path}") from None


@config
class Extractor(Config, abc.ABC):
    """Base of all extractors (abstract: see the module docstring for the interface).

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
        ``"trigger"`` onset (a recording's, for windows without trigger: at their start).
    store_dtype
        Precision of the stored arrays and vectors: ``"float32"``, or ``"float16"``, which halves
        the disk space and the bytes read per batch (reads still return float32; from a warm
        page cache the float16 to float32 conversion makes reads slower, see
        ``benchmarks/storage_dtype.py``). A stored value then differs from its float32 value by
        at most ``2**-11`` times the largest magnitude of its item (float16's 11-bit
        significand); an item whose largest magnitude lies outside float16's normal range
        (``6.1e-05`` to ``65504``: raw MEG in tesla, say) is an error, never silently flushed
        to zero or infinity (scale it first). Part of the key.
    batch_size
        Items computed together by ``prepare`` (one model forward pass for the HuggingFace
        extractors); not part of the key.
    """

    default_event_type: ClassVar[str] = ""
    #: Fields that only change how stored items are read, not what is stored (left out of item keys).
    read_fields: ClassVar[tuple[str, ...]] = ("output", "aggregation")

    event_type: str = ""
    output: Literal["dynamic", "static"] = "dynamic"
    frequency: float | None = None
    aggregation: Literal["mean", "trigger"] = "mean"
    store_dtype: Literal["float32", "float16"] = dataclasses.field(
        default="float32", metadata=KEY_UNLESS_DEFAULT
    )
    batch_size: int = dataclasses.field(default=16, metadata=KEY_EXCLUDED)

    def _check(self) -> None:
        positive(self, "frequency", "Hz", optional=True)
        at_least(self, "batch_size", 1)

    @property
    def resolved_event_type(self) -> str:
        return self.event_type or self.default_event_type

    # -- hooks read by the other layers ---------------------------------------------------
    @property
    def requires_gpu(self) -> bool:
        """Whether the jobs of :meth:`prepare` need a GPU (the executor is asked for one)."""
        return False

    @property
    def output_dtype(self) -> np.dtype[Any]:
        """dtype of the arrays :meth:`read` returns: float32 features by default; integer labels
        (``LabelEncoder``, ``WindowLabel`` with class positions) are typed ``Int`` in batches."""
        return np.dtype(np.float32)

    #: whether every segment read must overlap an event of the type (a dataset checks it before
    #: its first batch); extractors that give a window without events a value (a reserved
    #: "missing" class) say False and check what they need in :meth:`check_segments`.
    needs_event_in_every_segment: ClassVar[bool] = True

    def check_segments(self, segments: Segments) -> None:
        """Checks of the segments to read, run by a dataset before its first batch (override;
        the default has none beyond :attr:`needs_event_in_every_segment`)."""

    def output_channels(self, segments: Segments, store: Store) -> tuple[str, ...] | None:
        """Names along axis 1 of :meth:`read`'s output, when they are names (channels of a
        recording); None otherwise (the default)."""
        return None

    def vocabulary(self, events: pd.DataFrame, store: Store) -> tuple[str, ...] | None:
        """The class names of a categorical output, in output order; None when the output is
        not categorical (the default)."""
        return None

    def linked_entities(self, events: pd.DataFrame) -> list[LinkReport]:
        """How the entity tables this extractor joins to ``events`` (anatomy, empty-room
        recordings) cover them, for ``inspect``; none by default."""
        return []

    def fit_key(self, events: pd.DataFrame) -> str | None:
        """Store key of a fit on the whole events table that reads depend on (a PCA's
        training rows), so that extractors built on this one key it; None (default): no fit."""
        return None

    def batch_layout(self, name: str) -> str:
        """jaxtyping layout of this extractor's output as the batch field ``name``.

        ``Int`` for integer :attr:`output_dtype`, else ``Float``; dimensions scoped by ``name``
        (see :func:`default_layout`). Override for outputs of another shape.
        """
        kind = "Int" if np.issubdtype(self.output_dtype, np.integer) else "Float"
        return default_layout(name, self.output, kind)

    # -- phase 2: prepare ---------------------------------------------------------------
    @abc.abstractmethod
    def items(self, events: pd.DataFrame) -> list[Item]:
        """The items this extractor needs for ``events`` (no heavy work, no signal read)."""

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        """Compute several items (override to batch, e.g. a model forward pass)."""
        return [self.compute(item) for item in items]

    setattr(compute_many, "__neuralset_per_item__", True)  # noqa: B010 - execution.protocols

    def compute(self, item: Item) -> Computed:
        """Compute one item."""
        raise NotImplementedError

    def to_storage(self, computed: Computed, label: str = "") -> Computed:
        """``computed`` in :attr:`store_dtype` (what the prepare driver stores).

        Floating arrays and a floating array ``value`` are cast; other values (a vocabulary,
        integer labels, boolean masks) pass unchanged.

        Raises
        ------
        ValueError
            With ``store_dtype="float16"``, an item whose largest magnitude lies outside
            float16's normal range, naming the item (``label``) and the fix.
        """
        if self.store_dtype == "float32":
            return computed
        arrays = {k: self._half(v, label) for k, v in computed.arrays.items()}
        value = computed.value
        if isinstance(value, np.ndarray):
            value = self._half(value, label)
        return dataclasses.replace(computed, arrays=arrays, value=value)

    def _half(self, array: np.ndarray, label: str) -> np.ndarray:
        if array.dtype.kind != "f" or array.dtype == np.float16:
            return array
        finite = np.abs(array[np.isfinite(array)]) if array.size else array
        scale = float(finite.max()) if finite.size else 0.0
        if scale > _F16_MAX or 0.0 < scale < _F16_TINY:
            raise ValueError(
                f"{type(self).__name__}.store_dtype='float16': the values of {label or 'an item'} "
                f"reach {scale:.3g} in magnitude, outside float16's normal range ({_F16_TINY:.2g} "
                f"to {_F16_MAX:g}); rescale them (e.g. scaling='standard' for M/EEG) or use "
                "store_dtype='float32'"
            )
        return np.ascontiguousarray(array, dtype=np.float16)

    def fit(self, events: pd.DataFrame, store: Store) -> None:
        """Optional step run by ``prepare`` after all items are stored (e.g. fit an encoder)."""

    def prepare(
        self,
        events: pd.DataFrame,
        store: Store | None = None,
        *,
        executor: Executor | None = None,
        progress: bool = True,
        retry: bool | None = None,
    ) -> PrepareReport:
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
            Compute only the items that failed before (not the other missing ones); without
            it every missing item is computed, the failed ones included.

        Returns
        -------
        PrepareReport
            Counts of items computed, already stored and failed.
        """
        from ..execution import run_prepare
        from ..studies.fetch.plan import check_present

        store = store or Store()
        self.check_table(events)
        # files not fetched yet (git-annex pointers...): say which and how, before any work
        check_present(events, self.resolved_event_type, what=type(self).__name__)
        self.preflight(events, store)
        revalidate()  # reads here then see a recording replaced before prepare at once
        return run_prepare(self, events, store, executor=executor, progress=progress, retry=retry)

    def check_table(self, events: pd.DataFrame) -> None:
        """The events table :meth:`prepare` is given: validated (no unvalidated or edited
        table reaches the items), not empty, with events of :attr:`resolved_event_type`.

        Raises
        ------
        EventsError
            A table that skipped :func:`~neuralset.events.validate_events` (or was edited
            after it), naming the column or rows.
        ValueError
            No event to prepare, naming the types present.
        """
        from ..events.selectors import types_present
        from ..events.table import check_events_table

        name = type(self).__name__
        check_events_table(events, f"{name}.prepare")
        etype = self.resolved_event_type
        if not len(events) or (etype and not (events["type"] == etype).any()):
            raise ValueError(
                f"{name}.prepare: the events table has no {etype + ' ' if etype else ''}event "
                f"({types_present(events) if len(events) else 'it is empty'}); nothing to "
                f"prepare: check the study's events and the transforms that selected them"
                + (f", or set {name}.event_type" if etype else "")
            )

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Cheap checks run by :meth:`prepare` before any computation (override to add some).

        Raise here, naming the event and the fix, for input that would fail later in a worker
        (a missing file, recordings that cannot be combined); nothing has been stored yet."""

    def is_prepared(self, events: pd.DataFrame, store: Store) -> list[str]:
        """Labels of the items still missing from the store (empty when prepared)."""
        items = self.items(events)
        missing = set(store.missing([i.key for i in items]))
        return [i.label for i in items if i.key in missing]

    def store_keys_of(self, segments: Segments) -> list[str] | None:
        """Store keys the reads of ``segments`` use, as they keep them (None: ask is_prepared)."""
        return None

    @property
    def prepare_key(self) -> str:
        """Key of what ``prepare`` stores: kind, ``_version`` and fields but :attr:`read_fields`
        (computed once per frozen instance: reads ask for it on every batch)."""
        if legacy_mode():  # migrating a store: old-format keys, never memoised
            return self._prepare_key()
        return frozen_memo(self).get_or_set(_PREPARE_KEY, self._prepare_key)

    def _prepare_fields(self) -> dict[str, Any]:
        """The keyed fields, without :attr:`read_fields`."""
        return keyed_fields(self, exclude=self.read_fields)

    def _prepare_key(self) -> str:
        cls = type(self)
        return structural_key((class_identity(cls), cls._version, self._prepare_fields()))

    def item_key(self, *identity: Any) -> str:
        """Store key of an item: :attr:`prepare_key` chained with the item's identity."""
        return chain_keys(self.prepare_key, structural_key(identity))

    # -- phase 3: read ------------------------------------------------------------------
    @abc.abstractmethod
    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        """Arrays for a batch of segments (see :class:`Output`)."""

    def warm_up(self, segments: Segments, store: Store) -> None:
        """Make the first reads of ``segments`` fast (open files, compute keys); no-op by default.

        Called by :meth:`SegmentDataset.warm_up <neuralset.loaders.SegmentDataset.warm_up>`
        before DataLoader workers start (forked workers inherit what it opened) and in each
        worker that did not inherit it. Must not read more than it keeps."""

    def n_times(self, duration: float) -> int:
        """Number of output samples of a dynamic window of ``duration`` seconds."""
        if self.frequency is None:
            raise ConfigError(f"{type(self).__name__}.frequency must be set for dynamic outputs")
        return int(round(duration * self.frequency))


def events_label(events: pd.DataFrame, row: int) -> str:
    """Short description of an event row for error messages."""
    row = int(row)  # three cells read, not the whole row (a Series over every column)
    kind, timeline = str(events["type"].iat[row]), str(events["timeline"].iat[row])
    path = str(events["filepath"].iat[row]) if "filepath" in events.columns else ""
    return f"{kind} event {row} (timeline {timeline}, file {path})"

"""Extractors computed from the events table alone (no file, nothing heavy to prepare).

* :class:`Pulse` - a boxcar: 1 where an event of ``event_type`` is active, 0 elsewhere.
* :class:`EventField` - a numeric field of the events (e.g. a ``Stimulus``'s ``code``).
* :class:`LabelEncoder` - a categorical field mapped to integer labels with a vocabulary fitted
  by ``prepare`` on the events and stored.

They share the :class:`~neuralset.extractors.event_features.EventFeatureExtractor` read (static vectors
painted over each segment's time grid, or the trigger's value), with values taken from the table
instead of the store. ``Pulse`` and ``EventField`` have no items: ``prepare`` only validates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from ..segments import Segments
from ..store import Store
from .base import Computed, ExtractorNotPreparedError, Item, OutOfBounds, Output
from .event_features import EventFeatureExtractor

__all__ = ["Pulse", "EventField", "LabelEncoder"]


@config
class _TableExtractor(EventFeatureExtractor):
    """Values come from the events table (no stored items)."""

    def _check(self) -> None:
        super()._check()
        name = type(self).__name__
        if not self.resolved_event_type:
            raise ConfigError(f"{name}.event_type: name the event type to read, e.g. 'Word'")
        if self.output == "dynamic" and self.frequency is None:
            raise ConfigError(f"{name}.frequency: set the output rate (Hz) for dynamic outputs")

    def items(self, events: pd.DataFrame) -> list[Item]:
        return []

    def row_values(self, events: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), features)`` float32 values of event rows."""
        raise NotImplementedError

    def _values(self, segments: Segments, store: Store, rows: np.ndarray) -> list[Any]:
        values = self.row_values(segments.events, np.asarray(rows, dtype=np.int64))
        return list(values)


@register("pulse")
@config
class Pulse(_TableExtractor):
    """1 while an event of ``event_type`` is active (onset sample included), else 0.

    Output ``(batch, 1, time)`` at ``frequency``; an instantaneous event marks its onset
    sample. With ``output="static"``: 1 when the window holds such an event (``"mean"``).

    Examples
    --------
    >>> Pulse(event_type="Word", frequency=100.0).read(segments, store).data  # doctest: +SKIP
    """

    def row_values(self, events: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        return np.ones((len(rows), 1), dtype=np.float32)


@register("event_field")
@config
class EventField(_TableExtractor):
    """A numeric field of the events, e.g. ``EventField(event_type="Stimulus", field="code")``.

    Static by default: ``(batch, 1)`` with the value of each segment's trigger (which must be of
    ``event_type``); dynamic: the value painted over each event's span.

    Parameters
    ----------
    field
        Column of the events table (numeric, no missing value on events of ``event_type``).
    """

    output: Literal["dynamic", "static"] = "static"
    aggregation: Literal["mean", "trigger"] = "trigger"
    field: str = ""

    def _check(self) -> None:
        super()._check()
        if not self.field:
            raise ConfigError("EventField.field: name the numeric column to read, e.g. 'code'")

    def fit(self, events: pd.DataFrame, store: Store) -> None:
        """Validate the field on the events (run by ``prepare``)."""
        self.row_values(events, self.event_rows(events))

    def row_values(self, events: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        if self.field not in events.columns:
            raise ValueError(
                f"EventField.field: the events table has no column {self.field!r}; "
                f"columns: {', '.join(map(str, events.columns))}"
            )
        column = events[self.field]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise ValueError(
                f"EventField.field: column {self.field!r} is not numeric ({column.dtype}); "
                "use LabelEncoder for categorical fields"
            )
        values = column.to_numpy(dtype=np.float64)[rows]
        if np.isnan(values).any():
            bad = np.asarray(rows)[np.isnan(values)][:5].tolist()
            raise ValueError(
                f"EventField.field: {self.field!r} is missing on {self.resolved_event_type} event rows {bad}"
            )
        return values.astype(np.float32)[:, None]


@register("label_encoder")
@config
class LabelEncoder(EventFeatureExtractor):
    """Integer labels of a categorical field of each segment's trigger event.

    ``prepare`` fits the vocabulary (sorted distinct values of ``field`` on the events of
    ``event_type``, or ``classes`` when given) and stores it; ``read`` returns ``(batch,)``
    ``int64`` labels (positions in the vocabulary) of the segments' trigger events.

    Parameters
    ----------
    field
        Column holding the category (e.g. ``"description"``, ``"text"``).
    classes
        A fixed vocabulary (then values outside it are an error when reading).

    Examples
    --------
    >>> enc = LabelEncoder(event_type="Stimulus", field="description")  # doctest: +SKIP
    >>> enc.prepare(events, store); enc.read(segments, store).data  # doctest: +SKIP
    """

    output: Literal["dynamic", "static"] = "static"
    aggregation: Literal["mean", "trigger"] = "trigger"
    field: str = ""
    classes: tuple[str, ...] = ()
    #: labels are positions in a vocabulary, not features: reading returns them as int64
    label_dtype: ClassVar[type] = np.int64

    def _check(self) -> None:
        super()._check()
        if not self.resolved_event_type:
            raise ConfigError(
                "LabelEncoder.event_type: name the event type to read, e.g. 'Stimulus'"
            )
        if not self.field:
            raise ConfigError("LabelEncoder.field: name the categorical column, e.g. 'description'")
        if self.output != "static" or self.aggregation != "trigger":
            raise ConfigError(
                "LabelEncoder.output: labels are static values of the trigger event; "
                "use output='static', aggregation='trigger'"
            )
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"LabelEncoder.classes: duplicated entries in {self.classes}")

    def _field_values(self, events: pd.DataFrame) -> np.ndarray:
        if self.field not in events.columns:
            raise ValueError(
                f"LabelEncoder.field: the events table has no column {self.field!r}; "
                f"columns: {', '.join(map(str, events.columns))}"
            )
        return events[self.field].to_numpy()

    def vocabulary_of(self, events: pd.DataFrame) -> tuple[str, ...]:
        """The vocabulary fitted on ``events`` (sorted distinct values, as strings)."""
        if self.classes:
            return self.classes
        values = self._field_values(events)[self.event_rows(events)]
        present = pd.Series(values).dropna().astype(str).unique()
        return tuple(sorted(present))

    def _vocab_key(self, vocabulary: tuple[str, ...]) -> str:
        return self.item_key("vocabulary", vocabulary)

    def items(self, events: pd.DataFrame) -> list[Item]:
        vocabulary = self.vocabulary_of(events)
        return [
            Item(
                key=self._vocab_key(vocabulary),
                label=f"vocabulary of {self.field}",
                payload=vocabulary,
            )
        ]

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        return [Computed(value=list(item.payload), meta={"field": self.field}) for item in items]

    def vocabulary(self, events: pd.DataFrame, store: Store) -> tuple[str, ...]:
        """The stored vocabulary for ``events`` (error if ``prepare`` has not run)."""
        key = self._vocab_key(self.vocabulary_of(events))
        if not store.has(key):
            raise ExtractorNotPreparedError(
                f"LabelEncoder({self.field!r}) has no stored vocabulary for these events; "
                "call extractor.prepare(events, store) first"
            )
        return tuple(store.get_value(key))

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        events = segments.events
        vocabulary = self.vocabulary(events, store)
        rows = segments.trigger
        etype = self.resolved_event_type
        if (rows < 0).any() or (events["type"].to_numpy()[np.maximum(rows, 0)] != etype).any():
            raise ValueError(
                f"LabelEncoder: needs segments triggered on {etype} events "
                f"(e.g. segment_on_triggers(events, '{etype}', ...))"
            )
        values = pd.Series(self._field_values(events)[rows])
        missing = values.isna().to_numpy()
        position = {v: i for i, v in enumerate(vocabulary)}
        labels = values.astype(str).map(position).to_numpy()
        unknown = missing | pd.isna(labels)
        if unknown.any():
            first = np.flatnonzero(unknown)[0]
            raise ValueError(
                f"LabelEncoder: segment {first} has {self.field}={values.iloc[first]!r}, "
                f"not in the vocabulary ({len(vocabulary)} classes: {', '.join(vocabulary[:10])})"
            )
        return Output(data=labels.astype(self.label_dtype))

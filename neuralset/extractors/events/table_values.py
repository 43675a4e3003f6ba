"""Values read from the events table itself (no file, nothing to compute in ``prepare``).

* :class:`Pulse` - a boxcar: 1 where an event of ``event_type`` is active, 0 elsewhere.
* :class:`EventField` - a numeric field of the events (e.g. a ``Stimulus``'s ``code``).

They share the :class:`~neuralset.extractors.event_features.EventFeatureExtractor` read (static vectors
painted over each segment's time grid, or the trigger's value), with values taken from the table
instead of the store: they have no items, and ``prepare`` only validates.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from ...config import config, register
from ...segments import Segments
from ...store import Store
from ...validation import require, required
from ..base import Item
from ..event_features import EventFeatureExtractor

__all__ = ["Pulse", "EventField"]


@config
class _TableExtractor(EventFeatureExtractor):
    """Values come from the events table (no stored items)."""

    def _check(self) -> None:
        required(
            self,
            "event_type",
            "name the event type to read, e.g. 'Word'",
            value=self.resolved_event_type,
        )
        require(
            self.output != "dynamic" or self.frequency is not None,
            self,
            "frequency",
            "set the output rate (Hz) for dynamic outputs, got None",
        )

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
        required(self, "field", "name the numeric column to read, e.g. 'code'")

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

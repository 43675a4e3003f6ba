"""Categorical labels of trigger events: :class:`LabelEncoder`.

A categorical field (a word, a condition name) is mapped to integer positions in a vocabulary
that ``prepare`` fits on the events (or that the config fixes) and stores.
Registered YAML kind: ``label_encoder``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ...config import ConfigError, config, register
from ...segments import Segments
from ...store import Store
from ...validation import require, required, unique
from ...window_labels import class_text
from ..base import Computed, ExtractorNotPreparedError, Item, OutOfBounds, Output
from ..event_features import EventFeatureExtractor

__all__ = ["LabelEncoder"]


@register("label_encoder")
@config
class LabelEncoder(EventFeatureExtractor):
    """Integer labels of a categorical field of each segment's trigger event.

    ``prepare`` fits the vocabulary (distinct values of ``field`` on the events of
    ``event_type``, sorted in their own order - numbers numerically, as scikit-learn's
    ``LabelEncoder`` - then written as text, whole floats without ``.0`` as in
    :class:`~neuralset.extractors.events.window_label.WindowLabel`; or ``classes`` when
    given) and stores it;
    ``read`` returns ``(batch,)`` ``int64`` labels (positions in the vocabulary) of the
    segments' trigger events.

    Parameters
    ----------
    field
        Column holding the category (e.g. ``"description"``, ``"text"``, ``"code"``).
    classes
        A fixed vocabulary (as strings); ``prepare`` fails before any work when an event of
        ``event_type`` has a value outside it.

    Examples
    --------
    >>> enc = LabelEncoder(event_type="Stimulus", field="description")  # doctest: +SKIP
    >>> enc.prepare(events, store); enc.read(segments, store).data  # doctest: +SKIP
    """

    output: Literal["dynamic", "static"] = "static"
    aggregation: Literal["mean", "trigger"] = "trigger"
    field: str = ""
    classes: tuple[str, ...] = ()

    @property
    def output_dtype(self) -> np.dtype[Any]:
        """Labels are positions in a vocabulary, not features: ``int64``."""
        return np.dtype(np.int64)

    def _check(self) -> None:
        required(
            self,
            "event_type",
            "name the event type to read, e.g. 'Stimulus'",
            value=self.resolved_event_type,
        )
        required(self, "field", "name the categorical column, e.g. 'description'")
        require(
            self.output == "static" and self.aggregation == "trigger",
            self,
            "output",
            "labels are static values of the trigger event, got output="
            f"{self.output!r}, aggregation={self.aggregation!r}; use output='static', "
            "aggregation='trigger'",
        )
        unique(self, "classes")

    def _field_values(self, events: pd.DataFrame) -> np.ndarray:
        if self.field not in events.columns:
            raise ValueError(
                f"LabelEncoder.field: the events table has no column {self.field!r}; "
                f"columns: {', '.join(map(str, events.columns))}"
            )
        return events[self.field].to_numpy()

    def vocabulary_of(self, events: pd.DataFrame) -> tuple[str, ...]:
        """The vocabulary fitted on ``events`` (distinct values sorted, then as strings)."""
        if self.classes:
            return self.classes
        present = pd.Series(self._field_values(events)[self.event_rows(events)]).dropna()
        # the vocabulary is part of its store key: a vocabulary sorted before this order (as
        # strings) is not found under the new key, so no _version bump is needed
        try:  # the values' own order (numbers numerically), as scikit-learn's LabelEncoder
            distinct = np.unique(present.to_numpy())
        except TypeError:  # mixed types: their texts' order
            return tuple(sorted({class_text(v) for v in present}))
        return tuple(dict.fromkeys(class_text(v) for v in distinct))

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Check that the events' values are among the declared ``classes`` (before any work)."""
        rows = self.event_rows(events)
        values = pd.Series(self._field_values(events)[rows])
        if not self.classes:
            if values.notna().any():
                return
            raise ConfigError(
                f"LabelEncoder.field: none of the {len(rows)} {self.resolved_event_type} events "
                f"has a {self.field}: the vocabulary would be empty; name the column holding "
                "their category"
            )
        outside = (values.notna() & ~values.map(class_text).isin(self.classes)).to_numpy()
        if outside.any():
            shown = pd.unique(values[outside].map(class_text))[:5]
            raise ConfigError(
                f"LabelEncoder.classes: {self.resolved_event_type} events "
                f"{rows[outside][:5].tolist()} have {self.field}={', '.join(map(repr, shown))}, "
                f"not among the declared classes ({', '.join(self.classes)}); add them, or drop "
                "those events"
            )

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
        labels = values.map(class_text).map(position).to_numpy()
        unknown = missing | pd.isna(labels)
        if unknown.any():
            first = np.flatnonzero(unknown)[0]
            raise ValueError(
                f"LabelEncoder: segment {first} has {self.field}={values.iloc[first]!r}, "
                f"not in the vocabulary ({len(vocabulary)} classes: {', '.join(vocabulary[:10])})"
            )
        return Output(data=labels.astype(self.output_dtype))

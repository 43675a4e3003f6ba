"""A class vocabulary for label extractors: declared in the config, or fitted by ``prepare``.

:class:`VocabularyExtractor` is the base of :class:`~neuralset.extractors.events.window_label.WindowLabel`
and :class:`~neuralset.extractors.events.detection.DetectionTarget`. With ``classes`` declared,
nothing is stored and the classes are checked against the events in ``preflight`` (before any
work); otherwise ``prepare`` stores the sorted distinct values of ``field`` as the vocabulary,
and ``read`` uses the stored one (so a batch never sees a vocabulary of its own).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import ConfigError, config
from ...segments import Segments
from ...store import Store
from ...window_labels import WindowLabelError, class_codes, field_classes, uncovered_events
from ..base import Computed, Extractor, ExtractorNotPreparedError, Item

__all__ = ["VocabularyExtractor", "UncoveredEventsWarning"]


class UncoveredEventsWarning(UserWarning):
    """Some labelling events overlap no window: their labels are never read."""


@config
class VocabularyExtractor(Extractor):
    """An extractor whose output is indexed by the classes of a categorical field.

    Parameters
    ----------
    event_type
        Type of the labelling events (``"SleepStage"``, ``"Seizure"``...).
    field
        Column holding each event's class (``""``, where allowed: one class, the event type).
    classes
        The vocabulary in output order; empty: fitted by ``prepare`` (sorted distinct values).
    on_uncovered
        What :meth:`check_segments` (run by a dataset's check, before the first batch) does when
        events of the type overlap no window: ``"warn"`` (default), ``"error"`` or ``"ignore"``.

    Notes
    -----
    Windows without any event are not an error here: they take the reserved missing class (or
    zeros), so a dataset does not require the event type in every segment.
    """

    #: whether ``field`` may be empty (then the only class is the event type itself)
    field_optional: ClassVar[bool] = False
    #: a window without events takes the reserved missing class: see :meth:`check_segments`
    needs_event_in_every_segment: ClassVar[bool] = False

    field: str = "description"
    classes: tuple[str, ...] = ()
    on_uncovered: Literal["ignore", "warn", "error"] = "warn"

    def _check(self) -> None:
        name = type(self).__name__
        if not self.resolved_event_type:
            raise ConfigError(
                f"{name}.event_type: name the labelling event type, e.g. 'SleepStage'"
            )
        if not self.field and not self.field_optional:
            raise ConfigError(
                f"{name}.field: name the column holding the class, e.g. 'description'"
            )
        if not self.field and self.classes:
            raise ConfigError(f"{name}.classes: classes need a field holding them; set field")
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"{name}.classes: duplicated entries in {self.classes}")

    def _vocab_key(self, vocabulary: tuple[str, ...]) -> str:
        return self.item_key("vocabulary", self.resolved_event_type, self.field, vocabulary)

    def items(self, events: pd.DataFrame) -> list[Item]:
        if self.classes or not self.field:
            return []
        vocabulary = field_classes(events, self.resolved_event_type, self.field)
        label = f"vocabulary of {self.resolved_event_type}.{self.field}"
        return [Item(key=self._vocab_key(vocabulary), label=label, payload=vocabulary)]

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        return [Computed(value=list(item.payload), meta={"field": self.field}) for item in items]

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Check that every event of the type has a class, among the declared ``classes`` when
        given (before any work: such an event fails every read of a window it overlaps)."""
        if not self.field:
            return
        name, etype = type(self).__name__, self.resolved_event_type
        if self.field not in events.columns:
            raise ConfigError(
                f"{name}.field: the events table has no column {self.field!r}; columns: "
                f"{', '.join(map(str, events.columns))}"
            )
        rows = np.flatnonzero((events["type"] == etype).to_numpy())
        classes = self.classes or field_classes(events, etype, self.field)
        codes = class_codes(events, rows, self.field, classes)
        if not (codes < 0).any():
            return
        bad = rows[codes < 0]
        if not self.classes:  # a fitted vocabulary holds every value: these have none
            raise ConfigError(
                f"{name}.field: {len(bad)} of {len(rows)} {etype} events (rows "
                f"{bad[:5].tolist()}) have no {self.field}; fill it in, or drop those events"
                + (" (or set field='': one class, the event type)" if self.field_optional else "")
            )
        values = pd.unique(events[self.field].to_numpy()[bad])[:5]
        raise ConfigError(
            f"{name}.classes: {etype} events {bad[:5].tolist()} have {self.field}="
            f"{', '.join(map(repr, values))}, not among the declared classes "
            f"({', '.join(self.classes)}); add them, or drop those events"
        )

    def vocabulary(self, events: pd.DataFrame, store: Store) -> tuple[str, ...]:
        """The declared classes, or the vocabulary ``prepare`` stored for ``events``."""
        if not self.field:
            return (self.resolved_event_type,)
        if self.classes:
            return self.classes
        key = self._vocab_key(field_classes(events, self.resolved_event_type, self.field))
        if not store.has(key):
            raise ExtractorNotPreparedError(
                f"{type(self).__name__}({self.resolved_event_type}.{self.field}) has no stored "
                "vocabulary for these events; call extractor.prepare(events, store) first, or "
                "declare classes=(...)"
            )
        return tuple(store.get_value(key))

    def check_segments(self, segments: Segments) -> None:
        """Warn or fail (``on_uncovered``) when events of the type overlap none of ``segments``."""
        if self.on_uncovered == "ignore":
            return
        etype = self.resolved_event_type
        rows = uncovered_events(segments, etype)
        if not len(rows):
            return
        total = int((segments.events["type"] == etype).sum())
        message = (
            f"{type(self).__name__}: {len(rows)} of {total} {etype} events overlap no window "
            f"(rows {rows[:5].tolist()}); their labels are never read. Cover them (a smaller "
            "stride, drop_incomplete=False) or set on_uncovered='ignore'"
        )
        if self.on_uncovered == "error":
            raise WindowLabelError(message)
        warnings.warn(message, UncoveredEventsWarning, stacklevel=3)

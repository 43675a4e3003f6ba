"""Labels of any window from the events it overlaps: :class:`WindowLabel`.

Sliding windows have no trigger, so a label cannot come from one; :class:`WindowLabel` takes it
from the events of a type that overlap each window, by a rule (majority by overlap, the event at
the window centre, any/all as multi-hot, the fraction covered), with a reserved class for windows
that no event labels. See :mod:`neuralset.window_labels` for the rules.
Registered YAML kind: ``window_label``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import ConfigError, config, register
from ...segments import Segments
from ...store import Store
from ...window_labels import Rule, field_classes, window_labels
from ..base import OutOfBounds, Output
from .vocabulary import VocabularyExtractor

__all__ = ["WindowLabel"]


@register("window_label")
@config
class WindowLabel(VocabularyExtractor):
    """The label of each window from the events of ``event_type`` it overlaps.

    Output, per batch: ``(batch,)`` int64 class positions for the single-label rules
    (``"majority"``, ``"center"``) with ``encoding="index"``, ``(batch, classes)`` float32 one-hot
    with ``encoding="one_hot"``; ``(batch, classes)`` float32 multi-hot for ``"any"``/``"all"``
    and fractions for ``"fraction"``. The reserved ``missing`` class comes last.

    Parameters
    ----------
    event_type
        Type of the labelling events.
    field
        Column holding each event's class (default ``"description"``).
    classes
        Declared vocabulary (output order); empty: fitted and stored by ``prepare``.
    rule
        ``"majority"`` (default), ``"center"``, ``"any"``, ``"all"`` or ``"fraction"``.
    missing
        Name of the reserved class of windows without any event; ``None``: such a window is an
        error when read (keep labelled windows with ``segments.require(event_type)``).
    encoding
        ``"index"`` or ``"one_hot"`` for the single-label rules.
    min_overlap
        For ``"any"``: fraction of the window a class must cover to count (0: any overlap).
    on_uncovered
        When labelling events overlap no window (checked by the dataset before reading):
        ``"warn"`` (default), ``"error"`` or ``"ignore"``.

    Examples
    --------
    >>> label = WindowLabel(event_type="SleepStage", classes=("W", "N1", "N2", "N3", "REM"))
    >>> label.read(sliding_windows(events, duration=30.0, stride=30.0), store).data  # doctest: +SKIP
    """

    #: only ``event_type``, ``field`` and ``classes`` change what ``prepare`` stores
    read_fields: ClassVar[tuple[str, ...]] = (
        "on_uncovered",
        "output",
        "aggregation",
        "frequency",
        "rule",
        "missing",
        "encoding",
        "min_overlap",
    )

    output: Literal["dynamic", "static"] = "static"
    rule: Rule = "majority"
    missing: str | None = "missing"
    encoding: Literal["index", "one_hot"] = "index"
    min_overlap: float = 0.0

    def _check(self) -> None:
        if self.output != "static":
            raise ConfigError("WindowLabel.output: a window label is static; use output='static'")
        if not 0.0 <= self.min_overlap <= 1.0:
            raise ConfigError(f"WindowLabel.min_overlap: must be in [0, 1], got {self.min_overlap}")
        if self.min_overlap and self.rule != "any":
            raise ConfigError("WindowLabel.min_overlap: only used with rule='any'")
        if self.encoding == "one_hot" and self.rule not in ("majority", "center"):
            raise ConfigError(
                f"WindowLabel.encoding: rule={self.rule!r} already gives one value per class; "
                "one_hot applies to 'majority' and 'center'"
            )
        if self.missing is not None and self.missing in self.classes:
            raise ConfigError(
                f"WindowLabel.missing: the reserved class {self.missing!r} is also a declared class"
            )

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """The declared classes hold the events' values, and a fitted vocabulary does not hold
        the reserved ``missing`` class (before any work)."""
        super().preflight(events, store)
        if self.missing is None or self.classes or not self.field:
            return
        if self.missing in field_classes(events, self.resolved_event_type, self.field):
            raise ConfigError(
                f"WindowLabel.missing: the reserved class {self.missing!r} is also a value of "
                f"{self.resolved_event_type}.{self.field}; name the missing class differently "
                "(e.g. missing='unlabelled')"
            )

    @property
    def output_dtype(self) -> np.dtype[Any]:
        """``int64`` for class positions, ``float32`` otherwise (the batch layout follows)."""
        single = self.rule in ("majority", "center") and self.encoding == "index"
        return np.dtype(np.int64 if single else np.float32)

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        vocabulary = self.vocabulary(segments.events, store)
        labels = window_labels(
            segments,
            self.resolved_event_type,
            self.field,
            rule=self.rule,
            classes=vocabulary,
            missing=self.missing,
            min_overlap=self.min_overlap,
            find_uncovered=False,
        )
        values = labels.values
        if self.encoding == "one_hot":
            values = np.eye(len(labels.classes), dtype=np.float32)[values]
        return Output(data=values.astype(self.output_dtype, copy=False))

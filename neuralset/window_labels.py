"""Labels of any window from the events it overlaps, vectorised over all windows at once.

A window (a segment: trigger-anchored, sliding, one per sentence) takes the label of the events
of one type that overlap it, by a rule:

=============  ==================================================================================
rule           label of a window
=============  ==================================================================================
``majority``   the class whose events cover most of the window (ties: the class listed first)
``center``     the class of the event spanning the window's centre (the latest-starting one)
``any``        multi-hot: every class with an event overlapping the window
``all``        multi-hot: every class whose events cover the whole window
``fraction``   per class, the fraction of the window covered by its events
=============  ==================================================================================

Coverage is the time covered by the union of a class's events inside the window; a window
touched only by instantaneous events takes, by majority, the most frequent of their classes.
A window without any labelled event gets the reserved *missing* class (appended after the
declared classes), or is an error naming the window when ``missing=None``. Events of the type
that overlap no window at all are listed in :attr:`WindowLabels.uncovered`, so that a caller can
warn or fail instead of losing them silently.

Everything is computed from the ``(window, event)`` overlap pairs of an
:class:`~neuralset.events.index.EventIndex` query: no Python loop runs over windows or events.

Examples
--------
>>> import pandas as pd
>>> from neuralset.events import validate_events
>>> from neuralset.segments import sliding_windows
>>> events = validate_events(pd.DataFrame({
...     "type": "SleepStage", "start": [0.0, 30.0, 40.0], "duration": [30.0, 10.0, 20.0],
...     "timeline": "night-1", "description": ["W", "N1", "N2"]}))
>>> windows = sliding_windows(events, duration=30.0, stride=15.0)
>>> labels = window_labels(windows, "SleepStage", "description", rule="majority")
>>> [labels.classes[i] for i in labels.values]
['W', 'W', 'N2']
>>> labels.classes
('N1', 'N2', 'W', 'missing')
>>> window_labels(windows, "SleepStage", "description", rule="fraction").values.astype(float).round(2).tolist()
[[0.0, 0.0, 1.0, 0.0], [0.33, 0.17, 0.5, 0.0], [0.33, 0.67, 0.0, 0.0]]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import pandas as pd

from .segments import Segments

__all__ = [
    "Rule",
    "WindowLabels",
    "WindowLabelError",
    "window_labels",
    "class_codes",
    "class_text",
    "overlap_pairs",
    "uncovered_events",
]

Rule = Literal["majority", "center", "any", "all", "fraction"]
RULES: tuple[str, ...] = get_args(Rule)
_NONE = np.zeros(0, dtype=np.int64)


class WindowLabelError(ValueError):
    """Windows or events cannot be labelled as asked; the message names them and the fix."""


@dataclasses.dataclass(frozen=True)
class WindowLabels:
    """Labels of a set of windows.

    Attributes
    ----------
    values
        ``(n,)`` int64 class positions for ``majority`` and ``center``; ``(n, len(classes))``
        float32 for ``any``/``all`` (0 or 1) and ``fraction``.
    classes
        The class names, in order; the reserved missing class, when used, is last.
    missing
        Windows without any labelled event (boolean, ``(n,)``).
    uncovered
        Rows (in the events table) of the events of the type that overlap no window.
    """

    values: np.ndarray
    classes: tuple[str, ...]
    missing: np.ndarray
    uncovered: np.ndarray


def class_text(value: object) -> str:
    """A class value as text: integral floats without their ``.0`` (``3.0`` -> ``"3"``)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _factorized(events: pd.DataFrame, rows: np.ndarray, field: str) -> tuple[np.ndarray, list[str]]:
    """Codes of the ``field`` values of ``rows`` (-1 for missing) and the distinct values as text.

    Only the distinct values go through Python (:func:`pandas.factorize` does the rest).
    """
    if field not in events.columns:
        raise WindowLabelError(
            f"field: the events table has no column {field!r}; columns: "
            f"{', '.join(map(str, events.columns))}"
        )
    values = events[field].to_numpy()[np.asarray(rows, dtype=np.int64)]
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), [class_text(u) for u in uniques]


def class_codes(
    events: pd.DataFrame, rows: np.ndarray, field: str, classes: Sequence[str]
) -> np.ndarray:
    """Position in ``classes`` of the ``field`` value of each event row (-1 when not in it).

    Values are compared as text (a numeric ``code`` 3.0 matches the class ``"3"``); missing
    values give -1.
    """
    codes, uniques = _factorized(events, rows, field)
    position = {name: i for i, name in enumerate(classes)}
    table = np.array([position.get(u, -1) for u in uniques] + [-1], dtype=np.int64)
    return table[codes]  # code -1 (missing) picks the trailing -1


def field_classes(events: pd.DataFrame, event_type: str, field: str) -> tuple[str, ...]:
    """Sorted distinct values (as text) of ``field`` on the events of ``event_type``: numbers
    in numeric order (``"2"`` before ``"10"``, as scikit-learn's ``LabelEncoder``)."""
    rows = np.flatnonzero((events["type"] == event_type).to_numpy())
    names = set(_factorized(events, rows, field)[1])
    column = events[field]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return tuple(sorted(names, key=float))
    return tuple(sorted(names))


def overlap_pairs(
    segments: Segments, event_type: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(window, event row, clipped start, clipped stop)`` of each overlapping pair.

    Times are in seconds relative to each window's start, clipped to ``[0, duration]``. An
    instantaneous event inside a window gives a pair with zero overlap.
    """
    seg, rows = segments.overlapping(event_type)
    events = segments.events
    ev_start = events["start"].to_numpy()[rows] - segments.start[seg]
    ev_stop = ev_start + events["duration"].to_numpy()[rows]
    dur = segments.duration[seg]
    return seg, rows, np.clip(ev_start, 0.0, dur), np.clip(ev_stop, 0.0, dur)


def _union_cover(group: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_groups: int) -> np.ndarray:
    """Length of the union of the intervals ``[lo, hi)`` of each group (vectorised).

    Intervals of a group are sorted by start; each contributes what lies past the running
    maximum of the previous stops of its group.
    """
    out = np.zeros(n_groups)
    if not len(group):
        return out
    order = np.lexsort((lo, group))
    g, a, b = group[order], lo[order], hi[order]
    running = pd.Series(b).groupby(g).cummax().to_numpy()
    prev = np.concatenate([[-np.inf], running[:-1]])
    first = np.concatenate([[True], g[1:] != g[:-1]])
    prev[first] = -np.inf
    np.add.at(out, g, np.clip(b - np.maximum(a, prev), 0.0, None))
    return out


def uncovered_events(segments: Segments, event_type: str) -> np.ndarray:
    """Rows of the events of ``event_type`` that overlap none of the windows (sorted)."""
    events = segments.events
    rows = np.flatnonzero((events["type"] == event_type).to_numpy())
    if not len(rows):
        return rows
    _, hit = segments.overlapping(event_type)
    return np.setdiff1d(rows, hit)


def window_labels(
    segments: Segments,
    event_type: str,
    field: str,
    *,
    rule: Rule = "majority",
    classes: Sequence[str | int | float] | None = None,
    missing: str | None = "missing",
    min_overlap: float = 0.0,
    find_uncovered: bool = True,
) -> WindowLabels:
    """Label each window from the events of ``event_type`` it overlaps (see the module doc).

    Parameters
    ----------
    segments
        The windows.
    event_type
        Type of the labelling events (``"SleepStage"``, ``"Seizure"``, ``"Stimulus"``...).
    field
        Column holding each event's class (``"description"``, ``"code"``...).
    rule
        ``"majority"``, ``"center"``, ``"any"``, ``"all"`` or ``"fraction"``.
    classes
        The vocabulary, in order (numbers are taken as text: ``3`` and ``3.0`` are ``"3"``);
        ``None`` uses the sorted distinct values of ``field`` on the events of the type. Events
        whose value is not a class are an error.
    missing
        Name of the reserved class of windows without any event (appended last); ``None``:
        such windows are an error.
    min_overlap
        For ``"any"``: the fraction of the window a class must cover to count (0: any overlap,
        instantaneous events included).
    find_uncovered
        Fill :attr:`WindowLabels.uncovered` (one more query over all events of the type; a
        reader labelling one batch at a time turns it off).

    Raises
    ------
    WindowLabelError
        An unknown rule, a value outside ``classes``, or (with ``missing=None``) a window
        without any labelled event; the message names them and the fix.
    """
    if rule not in RULES:
        raise WindowLabelError(f"rule: expected one of {', '.join(map(repr, RULES))}, got {rule!r}")
    events = segments.events
    names = _class_names(events, event_type, field, classes)
    if missing is not None and missing in names:
        raise WindowLabelError(
            f"missing: the reserved class {missing!r} is also a class of {field!r}; "
            "name the missing class differently"
        )
    seg, rows, lo, hi = overlap_pairs(segments, event_type)
    codes = _checked_codes(events, rows, field, names, event_type)
    n, k = len(segments), len(names)
    present = np.bincount(seg, minlength=n) > 0
    if rule == "center":
        values = _center(segments, seg, rows, codes, n)
        is_missing = values < 0
    else:
        values, is_missing = _by_cover(rule, segments, seg, codes, lo, hi, k, present, min_overlap)
        if rule == "fraction" and missing is not None:
            dur = np.asarray(segments.duration, dtype=np.float64)
            uncovered = 1.0 - _union_cover(seg, lo, hi, n) / np.where(dur > 0, dur, 1.0)
            values = np.concatenate([values, np.clip(uncovered, 0, 1)[:, None]], axis=1)
            return WindowLabels(
                values=values.astype(np.float32),
                classes=(*names, missing),
                missing=is_missing,
                uncovered=uncovered_events(segments, event_type) if find_uncovered else _NONE,
            )
    if is_missing.any() and missing is None:
        first = np.flatnonzero(is_missing)[:5].tolist()
        raise WindowLabelError(
            f"{int(is_missing.sum())} of {n} windows have no {event_type} event to label them "
            f"(windows {first}); pass missing='missing' to give them a reserved class, or keep "
            f"only labelled windows with segments.require({event_type!r})"
        )
    out_classes = names if missing is None else (*names, missing)
    if missing is not None:
        if values.ndim == 1:
            values = np.where(is_missing, k, values).astype(np.int64)
        else:
            values = np.concatenate([values, is_missing[:, None].astype(np.float32)], axis=1)
    return WindowLabels(
        values=values,
        classes=out_classes,
        missing=is_missing,
        uncovered=uncovered_events(segments, event_type) if find_uncovered else _NONE,
    )


def _class_names(
    events: pd.DataFrame, event_type: str, field: str, classes: Sequence[object] | None
) -> tuple[str, ...]:
    """The declared classes as text (``3`` and ``3.0`` are ``"3"``), each once, or the field's."""
    if classes is None:
        return field_classes(events, event_type, field)
    names = tuple(map(class_text, classes))
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise WindowLabelError(
            f"classes: {', '.join(map(repr, twice))} given more than once (compared as text: 3 "
            "and 3.0 are '3'); give each class once (a repeated class would be a column that "
            "is never 1)"
        )
    return names


def _checked_codes(
    events: pd.DataFrame, rows: np.ndarray, field: str, names: tuple[str, ...], event_type: str
) -> np.ndarray:
    """Class position of each event row; a value outside ``names`` is an error naming it."""
    codes = class_codes(events, rows, field, names)
    if (codes < 0).any():
        bad = rows[codes < 0]
        values = pd.unique(events[field].to_numpy()[bad])[:5]
        raise WindowLabelError(
            f"{event_type} events {bad[:5].tolist()} have {field}="
            f"{', '.join(repr(class_text(v)) for v in values)}, "
            f"not among the classes ({', '.join(names[:10])}); add them to the classes or drop "
            "those events"
        )
    return codes


def _by_cover(
    rule: Rule,
    segments: Segments,
    seg: np.ndarray,
    codes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    k: int,
    present: np.ndarray,
    min_overlap: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(values, missing)`` of the rules decided by how much of a window each class covers
    (``"majority"``, ``"any"``, ``"all"``, ``"fraction"``)."""
    n = len(segments)
    dur = np.asarray(segments.duration, dtype=np.float64)
    cover = _union_cover(seg * max(k, 1) + codes, lo, hi, n * max(k, 1))
    fraction = cover.reshape(n, max(k, 1))[:, :k] / np.where(dur > 0, dur, 1.0)[:, None]
    counts = np.zeros((n, max(k, 1)), dtype=np.int64)
    np.add.at(counts, (seg, codes), 1)
    counts = counts[:, :k]
    if rule == "majority":
        top = fraction.max(axis=1, initial=0.0)
        # ties (to 1e-9 of the window) go to the class listed first
        best = np.argmax(fraction >= top[:, None] - 1e-9, axis=1) if k else np.zeros(n, int)
        by_count = np.argmax(counts, axis=1) if k else best
        zero = top <= 1e-12
        values = np.where(zero, by_count, best).astype(np.int64)
        values[~present] = -1
        return values, ~present
    if rule == "any":
        hit = (counts > 0) & (fraction >= min_overlap - 1e-12)
        return hit.astype(np.float32), np.asarray(~hit.any(axis=1), dtype=bool)
    if rule == "all":
        return (fraction >= 1.0 - 1e-9).astype(np.float32), ~present
    return np.clip(fraction, 0.0, 1.0).astype(np.float32), ~present


def _center(
    segments: Segments, seg: np.ndarray, rows: np.ndarray, codes: np.ndarray, n: int
) -> np.ndarray:
    """Class of the latest-starting event spanning each window's centre (-1 if none)."""
    events = segments.events
    centre = segments.start[seg] + segments.duration[seg] / 2
    ev_start = events["start"].to_numpy()[rows]
    ev_stop = ev_start + events["duration"].to_numpy()[rows]
    ok = (ev_start <= centre) & ((ev_stop > centre) | (ev_start == centre))
    out = np.full(n, -1, dtype=np.int64)
    if ok.any():
        s, st, c = seg[ok], ev_start[ok], codes[ok]
        order = np.lexsort((rows[ok], st, s))  # the last pair of each window wins
        out[s[order]] = c[order]
    return out

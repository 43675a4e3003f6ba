"""Event selectors: which rows of an events table a type name, query string or mask picks.

Everything that takes a set of events (the triggers of :func:`~neuralset.segments.segment_on_triggers`,
the blocks of :func:`~neuralset.segments.sliding_windows`) goes through :func:`event_mask`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "Selector",
    "SelectorError",
    "event_mask",
    "check_event_types",
    "selected_rows",
    "selector_field",
    "describe_selector",
    "types_present",
]

#: What selects events: a type name, a list of names, a query string, or a boolean mask (numpy
#: array or pandas Series aligned with the events table).
Selector = str | Sequence[str] | np.ndarray | pd.Series


class SelectorError(ValueError):
    """An event selector that cannot be applied to the table, or selects no event."""


def event_mask(events: pd.DataFrame, selector: Selector) -> np.ndarray:
    """Boolean row mask from an event type name, a list of names, a query string or a mask.

    A string naming a registered event type (``"Word"``) selects that type; any other string is
    passed to :meth:`pandas.DataFrame.eval` (``"type == 'Word' and start > 10"``). A boolean
    numpy array has one value per row; a boolean pandas Series (``events["type"] == "Word"``)
    is aligned on the table's index, like pandas does, and must cover exactly its rows.

    Parameters
    ----------
    events
        A validated events table.
    selector
        A type name, a list of type names, a query string or a boolean mask.

    Raises
    ------
    SelectorError
        (a ``ValueError``) A mask of the wrong length or dtype, a Series whose index is not the table's, an unknown
        type name in a list, or a query that does not evaluate.
    """
    if isinstance(selector, pd.Series):
        return _series_mask(events, selector)
    if isinstance(selector, np.ndarray):
        if selector.dtype != bool or len(selector) != len(events):
            raise SelectorError(
                "a mask selector must be a boolean array with one value per event "
                f"({len(events)}), got {selector.dtype} of length {len(selector)}"
            )
        return selector
    if isinstance(selector, str):
        from .schema import event_types

        if selector in event_types():
            return (events["type"] == selector).to_numpy()
        if selector.isidentifier() and selector not in events.columns:
            check_event_types(
                [selector]
            )  # a bare name is a type name: unknown, with the closest ones
        try:
            result = events.eval(selector)
        except Exception as err:  # pandas raises many kinds
            raise SelectorError(f"cannot evaluate the event query {selector!r}: {err}") from None
        dtype = getattr(result, "dtype", None)
        ok = (
            dtype is not None
            and pd.api.types.is_bool_dtype(dtype)
            and not (isinstance(result, pd.Series) and result.isna().any())
        )
        mask = np.asarray(result, dtype=bool) if ok else np.asarray(result)
        if not ok or mask.shape != (len(events),):
            raise SelectorError(
                f"the event query {selector!r} gives {getattr(result, 'dtype', type(result).__name__)} values, not one True/False per "
                "event; write a condition, e.g. \"type == 'Word' and start > 10\""
            )
        return mask
    names = list(selector)
    if names and all(isinstance(v, bool | np.bool_) for v in names):
        return event_mask(events, np.asarray(names, dtype=bool))
    check_event_types([str(name) for name in names])  # unknown: an error naming the closest
    return events["type"].isin(names).to_numpy()


def selected_rows(events: pd.DataFrame, selector: Selector, what: str) -> np.ndarray:
    """The rows :func:`event_mask` selects; none is a :class:`SelectorError` saying ``what``
    (``"sliding_windows: blocks"``) selects no event, and the types present."""
    rows = np.flatnonzero(event_mask(events, selector))
    if not len(rows):
        raise SelectorError(
            f"{what} {describe_selector(selector)} select no event of the table "
            f"({types_present(events)})"
        )
    return rows


@contextlib.contextmanager
def selector_field(field: str) -> Iterator[None]:
    """Re-raise a :class:`SelectorError` as a ``ConfigError`` naming ``field`` (``Class.field``)."""
    from ..config import ConfigError

    try:
        yield
    except SelectorError as err:
        raise ConfigError(f"{field}: {err}") from None


def check_event_types(names: Sequence[str]) -> None:
    """Raise :class:`SelectorError` naming the closest types unless each name is an event type."""
    from .schema import event_type

    for name in names:
        try:
            event_type(name)
        except ValueError as err:
            raise SelectorError(str(err)) from None


def _series_mask(events: pd.DataFrame, selector: pd.Series) -> np.ndarray:
    """A boolean Series as a row mask, aligned on the events' index (never by position alone)."""
    if not (pd.api.types.is_bool_dtype(selector.dtype)) or selector.isna().any():
        raise SelectorError(
            f"a Series selector must be boolean without missing values, got dtype {selector.dtype}; "
            "build it from the events table, e.g. events['type'] == 'Word'"
        )
    if selector.index.equals(events.index):
        return selector.to_numpy(dtype=bool)
    if len(selector) == len(events) and selector.index.is_unique:
        aligned = selector.reindex(events.index)
        if not aligned.isna().any():
            return aligned.to_numpy(dtype=bool)
    raise SelectorError(
        f"the boolean Series selector is not aligned with the events table: its index has "
        f"{len(selector)} labels ({_index_hint(selector.index)}), the table's {len(events)} "
        f"({_index_hint(events.index)}); build the mask from this table (e.g. "
        "events['type'] == 'Word'), or pass a numpy array with one value per row"
    )


def _index_hint(index: pd.Index) -> str:
    shown = ", ".join(str(v) for v in index[:3])
    return f"{shown}, ..." if len(index) > 3 else shown


def describe_selector(selector: Selector) -> str:
    """Short description of a selector for error messages."""
    if isinstance(selector, np.ndarray | pd.Series):
        return f"(a boolean mask with {int(np.asarray(selector, dtype=bool).sum())} True)"
    return repr(selector if isinstance(selector, str) else list(selector))


def types_present(events: pd.DataFrame) -> str:
    """``"event types present: Word (130), Meg (2)"`` (most frequent first), for error messages."""
    counts = events["type"].astype(str).value_counts()
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return "event types present: " + (", ".join(f"{t} ({c})" for t, c in items) or "none")

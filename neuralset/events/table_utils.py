"""Small transforms: a new column from an expression, rows selected by position.

Examples
--------
>>> import pandas as pd
>>> from neuralset.events import validate_events
>>> events = validate_events(pd.DataFrame({
...     "type": "Word", "start": [0.0, 0.5, 1.0], "duration": 0.25, "timeline": "r",
...     "text": ["a", "cat", "sat"]}))
>>> AddColumn(name="stop", expression="start + duration")(events)["stop"].tolist()
[0.25, 0.75, 1.25]
>>> AddColumn(name="length", expression="text.str.len()")(events)["length"].tolist()
[1, 3, 3]
>>> SelectRows(indices=(0, -1))(events)["text"].tolist()
['a', 'sat']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from .transforms import Transform

__all__ = ["AddColumn", "SelectRows", "timeline_constants"]


@register("add_column")
@config
class AddColumn(Transform):
    """A new (or replaced) column from a :meth:`pandas.DataFrame.eval` expression.

    Arithmetic and comparisons run in pandas' fast engine; expressions with string methods
    (``text.str.len()``) or functions fall back to its Python engine (still one vectorised
    operation per column, not per row).

    Parameters
    ----------
    name
        The column written (``type``, ``start`` and ``timeline`` are refused).
    expression
        E.g. ``"start + duration"``, ``"text.str.lower()"``, ``"code % 2 == 0"``.
    """

    name: str
    expression: str

    def _check(self) -> None:
        if not self.name.isidentifier():
            raise ConfigError(f"AddColumn.name: must be an identifier, got {self.name!r}")
        if self.name in ("type", "start", "timeline"):
            raise ConfigError(
                f"AddColumn.name: {self.name!r} defines the events; write another column"
            )

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        errors = []
        for engine in ("numexpr", "python"):
            try:
                value = events.eval(self.expression, engine=engine)
                break
            except Exception as err:  # pandas raises many kinds
                errors.append(err)
        else:
            raise ConfigError(
                f"AddColumn.expression: cannot evaluate {self.expression!r}: {errors[-1]}"
            )
        if isinstance(value, pd.DataFrame) or np.ndim(np.asarray(value)) > 1:
            raise ConfigError(
                f"AddColumn.expression: {self.expression!r} gives several columns, not one"
            )
        return events.assign(**{self.name: value})


@register("select_rows")
@config
class SelectRows(Transform):
    """Keep the rows at the given positions (of the validated table; negative from the end).

    Parameters
    ----------
    indices
        Row positions, in the order kept (duplicates refused).
    keep_types
        Event types always kept (e.g. the recordings when selecting words).
    """

    indices: tuple[int, ...]
    keep_types: tuple[str, ...] = ()

    def _check(self) -> None:
        if len(set(self.indices)) != len(self.indices):
            raise ConfigError("SelectRows.indices: duplicated positions")

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        n = len(events)
        idx = np.asarray(self.indices, dtype=np.int64)
        bad = idx[(idx < -n) | (idx >= n)]
        if len(bad):
            raise ConfigError(f"SelectRows.indices: {bad[:5].tolist()} out of range for {n} events")
        idx = np.where(idx < 0, idx + n, idx)
        if len(set(idx.tolist())) != len(idx):
            raise ConfigError("SelectRows.indices: two indices name the same row")
        keep = np.flatnonzero(events["type"].isin(list(self.keep_types)).to_numpy())
        rows = np.concatenate([idx, np.setdiff1d(keep, idx)])
        return events.iloc[rows]


def timeline_constants(
    events: pd.DataFrame, rows: np.ndarray, timeline: np.ndarray, first: np.ndarray
) -> dict[str, np.ndarray]:
    """The columns with one value per timeline over ``rows``, read at the positions ``first``.

    For events built from others (a Sentence from its words): ``subject``, ``session``,
    ``study_root``... carry over, so splits and selections by them keep the new events.

    Parameters
    ----------
    events
        The table.
    rows
        The source rows (the words, in time order).
    timeline
        The timeline code of each of ``rows``.
    first
        Positions in ``rows`` of the source of each new event (its first word).
    """
    skip = {"type", "start", "duration", "timeline", "text", "sentence"}
    cols = [c for c in events.columns if c not in skip]
    if not cols:
        return {}
    frame = events[cols].iloc[rows].reset_index(drop=True)
    one = frame.groupby(timeline).nunique(dropna=False).max(axis=0) <= 1
    return {str(c): frame[c].to_numpy()[first] for c in one.index[one.to_numpy()]}

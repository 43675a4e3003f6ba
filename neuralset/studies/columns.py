"""One events DataFrame from column parts or blocks of rows, built in one pass per column.

Studies build their events as *parts*: each part maps column -> array, list or scalar (a scalar
is broadcast to the part's length, given by its ``start``). :func:`stack_columns` stacks parts in
order; :func:`place_columns` puts :class:`Block` s (parts whose rows go to given positions of the
table, e.g. every trial row of a thousand runs at once) where they belong. Both follow one rule
per column, decided over the parts (blocks) that have it:

* every value numeric (a numeric array, a list of numbers, a number): a float64 column, NaN
  where a part lacks the column;
* otherwise an object column (strings become pandas' ``str`` dtype), ``None`` where a part lacks
  it; numbers of numeric arrays become Python numbers.

Columns come in the order they first appear, parts (blocks) taken by their first row.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Block", "RunColumns", "stack_columns", "place_columns", "merge_parts", "is_numeric"]


@dataclasses.dataclass
class Block:
    """Rows built together: where they go in the table and their column values.

    Attributes
    ----------
    rows
        Positions of the rows in the table (increasing), or a slice of it.
    size
        Number of rows.
    values
        Column -> array of ``size`` values (numeric array, object array, or list), or a scalar
        shared by every row. A block is numeric in a column when its value is (see
        :func:`is_numeric`); build it so only when each part it merges was.
    keys
        The block's columns in their order, when some are :class:`RunColumns` (not in
        ``values``); empty: the keys of ``values``.
    """

    rows: np.ndarray | slice
    size: int
    values: dict[str, Any]
    keys: tuple[str, ...] = ()

    def first(self) -> int:
        """Position of the block's first row."""
        if isinstance(self.rows, slice):
            return int(self.rows.start or 0)
        return int(self.rows[0]) if len(self.rows) else 0


@dataclasses.dataclass
class RunColumns:
    """Columns with one value per run (timeline, subject...) for tables whose rows are grouped
    by run: as if every part of run ``r`` had the scalar ``values[column][r]``.

    Attributes
    ----------
    runs
        The run of each row of the table.
    values
        Column -> object array of one value per run (every run has rows).
    """

    runs: np.ndarray
    values: dict[str, np.ndarray]

    def column(self, name: str) -> Any:
        """The column of the table (made from the runs' values, then repeated)."""
        per_run = self.values[name]
        if all(map(is_numeric, per_run)):
            return per_run.astype(float)[self.runs]
        text = _as_text(per_run)
        return text[self.runs] if isinstance(text, np.ndarray) else text.take(self.runs)


def stack_columns(parts: list[dict[str, Any]]) -> pd.DataFrame:
    """One DataFrame from column parts, in one pass (no per-part DataFrame).

    Each part maps column -> array, list or scalar (broadcast to the part's length, given by its
    ``start``). A column missing from a part is NaN (numeric columns) or None.
    """
    blocks, at = [], 0
    for part in parts:
        n = len(part["start"])
        blocks.append(Block(slice(at, at + n), n, part))
        at += n
    return place_columns(blocks, at)


def place_columns(blocks: list[Block], n: int, by_run: RunColumns | None = None) -> pd.DataFrame:
    """The DataFrame of ``n`` rows made of ``blocks`` (which cover every row once) and of the
    run-wide columns ``by_run``."""
    blocks = sorted(blocks, key=Block.first)
    columns = dict.fromkeys(c for b in blocks for c in (b.keys or b.values))
    data: dict[str, Any] = {}
    for col in columns:
        if by_run is not None and col in by_run.values:
            data[col] = by_run.column(col)
            continue
        present = [(b, b.values[col]) for b in blocks if col in b.values]
        if all(is_numeric(v) for _, v in present):
            out = np.full(n, np.nan)
            for b, value in present:
                out[b.rows] = _numeric(value, b.size)
        else:
            out = np.empty(n, dtype=object)  # None where a block lacks the column
            for b, value in present:
                out[b.rows] = _objects(value, b.size)
        data[col] = _as_text(out)
    return pd.DataFrame(data, copy=False)  # the arrays are new: no copy of them


def _as_text(values: np.ndarray) -> Any:
    """``values`` as the ``str`` array pandas makes of strings and missing values (its
    inference, without its scan for dates and numbers), other arrays as they are."""
    dtype = _text_dtype()
    if dtype is None or values.dtype != object:
        return values
    if pd.api.types.infer_dtype(values, skipna=True) != "string":
        return values
    return pd.array(values, dtype=dtype)


@functools.cache
def _text_dtype() -> pd.StringDtype | None:
    """The dtype pandas gives a column of strings and None (None: it keeps them as objects)."""
    dtype = pd.DataFrame({"x": np.array(["a", None], dtype=object)})["x"].dtype
    return dtype if isinstance(dtype, pd.StringDtype) else None


def merge_parts(parts: list[dict[str, Any]], rows: np.ndarray) -> Block:
    """One block from parts with the same columns (numeric where every part is), at ``rows``."""
    sizes = [len(p["start"]) for p in parts]
    values: dict[str, Any] = {}
    for col in parts[0]:
        present = [p[col] for p in parts]
        if not any(isinstance(v, list | np.ndarray) for v in present):
            if all(map(is_numeric, present)):
                flat = np.array(present, dtype=float)
            else:
                flat = np.empty(len(parts), dtype=object)
                flat[:] = present
            values[col] = flat if max(sizes) == 1 == min(sizes) else np.repeat(flat, sizes)
        elif all(map(is_numeric, present)):
            values[col] = np.concatenate([_numeric(v, n) for v, n in zip(present, sizes)])
        else:
            values[col] = np.concatenate([_objects(v, n) for v, n in zip(present, sizes)])
    return Block(rows, int(sum(sizes)), values)


def _numeric(value: Any, n: int) -> np.ndarray | float:
    if isinstance(value, np.ndarray | list):
        return np.asarray(value, dtype=float)
    return np.nan if value is None else float(value)


def _objects(value: Any, n: int) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value.astype(object, copy=False)
    chunk = np.empty(len(value) if isinstance(value, list) else n, dtype=object)
    if isinstance(value, list):
        chunk[:] = value
    else:
        chunk[:] = [value] * n if isinstance(value, tuple) else value
    return chunk


def is_numeric(values: Any) -> bool:
    """Whether a part's value makes a numeric column: numeric array, list of numbers, number."""
    if isinstance(values, np.ndarray):
        return values.dtype.kind in "iuf"
    if isinstance(values, list):
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    return isinstance(values, int | float) and not isinstance(values, bool)

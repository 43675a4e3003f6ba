"""Entities that live on no timeline: small tables keyed by subject (and session), joined lazily.

An events table holds what happens on timelines. Some data belong to a subject or to a session
but to no timeline: the T1-weighted MRI, the head<->MRI transform, a parcellation, an empty-room
recording. They form a second, small table, an :class:`EntityTable`, keyed by *link columns*
that the events table already carries (``subject``, ``session``: the relational link). Nothing
is copied into the events: an extractor that needs an entity joins it to its own event rows
only (:meth:`EntityTable.join`), so a million-row events table never carries the anatomy columns.

Lookups follow BIDS inheritance: an event of session ``"2"`` takes the row keyed
``(subject, "2")`` when there is one, else the subject-level row ``(subject, "")``.

File columns hold paths relative to the table's ``root`` (the study root). Their identity
(:meth:`EntityTable.identity`: study-relative path, size and mtime, or a content digest, as for
recordings) is what an extractor folds into its item keys, so a changed transform recomputes
exactly the subjects whose transform changed.

This module sits at the bottom of the layers (it imports only :mod:`neuralset.hashing`): events,
segments and extractors may all use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .hashing import file_identity
from .memo import Slot, frozen_memo

__all__ = ["EntityTable", "EntityError", "LinkReport", "link_values"]


#: :meth:`EntityTable.row_of`'s lookup table: the row of each link key.
_ROWS: Slot[dict[tuple[str, ...], int]] = Slot("row per link key")


class EntityError(ValueError):
    """An entity table or its link to an events table is malformed; the message says the fix."""


def link_values(
    events: pd.DataFrame, rows: Sequence[int] | np.ndarray, link: Sequence[str]
) -> list[tuple[str, ...]]:
    """The link key of each event row (missing columns and missing values read as ``""``).

    Raises
    ------
    EntityError
        When the events carry none of the link columns.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if not any(col in events.columns for col in link):
        raise EntityError(
            f"the events table has no {' or '.join(repr(c) for c in link)} column to link "
            "entities by; add the column to the study's events (BIDS studies and the "
            "synthetic study carry 'subject')"
        )
    columns = []
    for col in link:
        if col not in events.columns:
            columns.append([""] * len(rows))
            continue
        values = events[col].to_numpy()[rows]
        columns.append(["" if _missing(v) else str(v) for v in values])
    return list(zip(*columns)) if columns else []


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value == ""


@dataclasses.dataclass(frozen=True)
class LinkReport:
    """How the event rows of one extractor link to an entity table (see :meth:`EntityTable.coverage`).

    Attributes
    ----------
    table
        The entity table.
    columns
        The file columns the extractor reads.
    linked
        Link keys that have every needed file.
    lacking
        ``{link key: missing columns}`` of the keys lacking an entity row or a needed file.
    """

    table: EntityTable
    columns: tuple[str, ...]
    linked: tuple[tuple[str, ...], ...]
    lacking: dict[tuple[str, ...], tuple[str, ...]]

    def describe(self) -> str:
        """One line per fact: what is linked and which keys lack an entity."""
        head = (
            f"entity {self.table.name} (by {', '.join(self.table.link)}; uses "
            f"{', '.join(self.columns) or 'no file'}): {len(self.linked)} linked"
        )
        if not self.lacking:
            return head + ", none lacking"
        shown = "; ".join(
            f"{_key_text(self.table.link, k)} lacks {', '.join(v)}"
            for k, v in list(self.lacking.items())[:10]
        )
        more = f" (and {len(self.lacking) - 10} more)" if len(self.lacking) > 10 else ""
        return f"{head}, {len(self.lacking)} lacking: {shown}{more}"


def _key_text(link: Sequence[str], key: Sequence[str]) -> str:
    return " ".join(f"{c}={v!r}" for c, v in zip(link, key) if v != "") or "(no key)"


@dataclasses.dataclass(frozen=True)
class EntityTable:
    """A small table of entities keyed by link columns, with file columns relative to ``root``.

    Parameters
    ----------
    name
        What the entities are (``"anatomy"``, ``"empty_room"``).
    frame
        One row per entity: the link columns (strings; ``""`` for a subject-level row), the
        file columns (study-relative paths, ``""`` when absent) and any other columns.
    link
        Columns shared with the events table that key the entities.
    files
        Which columns of ``frame`` are file paths.
    root
        Folder the file paths are relative to (the study root).

    Examples
    --------
    >>> table = EntityTable("anatomy", pd.DataFrame({"subject": ["01"], "session": [""],
    ...     "trans": ["sub-01/anat/sub-01_trans.fif"]}), files=("trans",), root="/data")
    >>> events = pd.DataFrame({"subject": ["01", "01", "02"], "session": ["1", "2", "1"]})
    >>> table.join(events, [0, 2], ["trans"])["trans"].tolist()
    ['sub-01/anat/sub-01_trans.fif', '']
    """

    name: str
    frame: pd.DataFrame
    link: tuple[str, ...] = ("subject", "session")
    files: tuple[str, ...] = ()
    root: str = ""

    def __post_init__(self) -> None:
        where = f"EntityTable {self.name!r}"
        if not self.link:
            raise EntityError(f"{where}: link must name at least one column, e.g. ('subject',)")
        absent = [c for c in (*self.link, *self.files) if c not in self.frame.columns]
        if absent:
            raise EntityError(
                f"{where}: frame has no column {', '.join(map(repr, absent))} "
                f"(its columns: {', '.join(map(str, self.frame.columns))})"
            )
        frame = self.frame.copy()
        for col in (*self.link, *self.files):
            frame[col] = ["" if _missing(v) else str(v) for v in frame[col]]
        duplicated = frame.duplicated(list(self.link))
        if duplicated.any():
            key = tuple(frame.loc[duplicated, list(self.link)].iloc[0])
            raise EntityError(
                f"{where}: two rows share the link key {_key_text(self.link, key)}; "
                "keep one row per key"
            )
        object.__setattr__(self, "frame", frame.reset_index(drop=True))

    # -- lookups -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    def keys(self) -> list[tuple[str, ...]]:
        """Link key of every row, in order."""
        return [tuple(k) for k in self.frame[list(self.link)].itertuples(index=False)]

    def row_of(self, key: Sequence[str]) -> int:
        """Row matching a link key (trailing parts falling back to ``""``), or -1."""
        rows = frozen_memo(self).get_or_set(
            _ROWS, lambda: {k: i for i, k in enumerate(self.keys())}
        )
        key = tuple(key)
        for cut in range(len(key), 0, -1):
            candidate = key[:cut] + ("",) * (len(key) - cut)
            if candidate in rows:
                return rows[candidate]
        return -1

    def join(
        self,
        events: pd.DataFrame,
        rows: Sequence[int] | np.ndarray | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The entity columns of some event rows (the lazy relational join).

        Parameters
        ----------
        events
            An events table carrying the link columns.
        rows
            Positions of the event rows to join (default: all; join only what you need).
        columns
            Entity columns to return (default: every non-link column).

        Returns
        -------
        DataFrame
            Indexed by ``rows``; ``""`` in file columns (and NaN elsewhere) where an event has
            no entity.
        """
        rows = np.arange(len(events)) if rows is None else np.asarray(rows, dtype=np.int64)
        wanted = list(columns) if columns is not None else self.value_columns()
        unknown = [c for c in wanted if c not in self.frame.columns]
        if unknown:
            raise EntityError(
                f"EntityTable {self.name!r} has no column {', '.join(map(repr, unknown))} "
                f"(columns: {', '.join(self.value_columns())})"
            )
        keys = link_values(events, rows, self.link)
        cache: dict[tuple[str, ...], int] = {}
        for k in keys:
            if k not in cache:
                cache[k] = self.row_of(k)
        positions = np.array([cache[k] for k in keys], dtype=np.int64)
        out = {}
        for col in wanted:
            values = self.frame[col].to_numpy(dtype=object)
            filler: Any = "" if col in self.files else np.nan
            out[col] = [values[p] if p >= 0 else filler for p in positions]
        return pd.DataFrame(out, index=rows, columns=wanted)

    def value_columns(self) -> list[str]:
        """Every column but the link columns."""
        return [c for c in self.frame.columns if c not in self.link]

    def path(self, key: Sequence[str], column: str) -> Path | None:
        """Absolute path of a file column for a link key (None when absent)."""
        row = self.row_of(key)
        if row < 0:
            return None
        value = str(self.frame[column].iloc[row])
        if not value:
            return None
        path = Path(value)
        return path if path.is_absolute() or not self.root else Path(self.root) / path

    def identity(
        self, key: Sequence[str], columns: Sequence[str], *, content_hash: bool = False
    ) -> tuple[Any, ...]:
        """Identity of the entity of ``key`` for cache keys: the files named by ``columns``.

        Each file contributes its study-relative path, size and mtime (or its content digest
        with ``content_hash``); an absent file contributes ``None``. Other columns contribute
        their value.
        """
        row = self.row_of(key)
        parts: list[Any] = [self.name]
        for col in columns:
            if row < 0:
                parts.append((col, None))
            elif col in self.files:
                path = self.path(key, col)
                ident = (
                    None
                    if path is None
                    else file_identity(path, self.root or None, content_hash=content_hash)
                )
                parts.append((col, ident))
            else:
                parts.append((col, self.frame[col].iloc[row]))
        return tuple(parts)

    def coverage(
        self,
        events: pd.DataFrame,
        rows: Sequence[int] | np.ndarray,
        columns: Sequence[str] = (),
    ) -> LinkReport:
        """Which link keys of some event rows have the needed files, and which lack them."""
        linked: list[tuple[str, ...]] = []
        lacking: dict[tuple[str, ...], tuple[str, ...]] = {}
        for key in dict.fromkeys(link_values(events, rows, self.link)):
            row = self.row_of(key)
            if row < 0:
                lacking[key] = tuple(columns) or ("an entry",)
                continue
            missing = tuple(c for c in columns if not self.frame[c].iloc[row])
            if missing:
                lacking[key] = missing
            else:
                linked.append(key)
        return LinkReport(self, tuple(columns), tuple(linked), lacking)

    def describe(self) -> str:
        """A one-line summary: rows and, per file column, how many rows have a file."""
        counts = ", ".join(f"{c} ({int((self.frame[c] != '').sum())})" for c in self.files)
        return f"{self.name}: {len(self)} rows keyed by {', '.join(self.link)}" + (
            f"; files: {counts}" if counts else ""
        )

"""What a build of BIDS events files notes about rows it cannot read as written, warned once.

:class:`~neuralset.studies.bids.BidsStudy` reads every events file of a dataset at once; two
kinds of rows are read without an error but not as they are written, and a warning per build
names how many files hold them and one of them:

* rows with an ``n/a`` onset (BIDS requires a number) make no event;
* ``code_column`` cells that are not integers (``S 11``, ``1.5``, a word) give the code 0.

:func:`warn_absent_columns` names the ``extra_columns`` that no events file has.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RowNotes", "non_integer", "warn_notes", "warn_absent_columns"]


@dataclasses.dataclass
class RowNotes:
    """Rows of events files read other than as written, by file (filled while building)."""

    #: events file -> its rows with an ``n/a`` onset
    unset: dict[str, int] = dataclasses.field(default_factory=dict)
    #: events file -> its first ``code_column`` cell that is not an integer
    codes: dict[str, str] = dataclasses.field(default_factory=dict)


def non_integer(cells: list[str] | np.ndarray) -> np.ndarray:
    """Which cells are neither an integer number nor empty (``n/a`` or ``""``)."""
    out = np.zeros(len(cells), dtype=bool)
    for i, cell in enumerate(cells):
        if cell in ("n/a", ""):
            continue
        try:
            value = float(cell)
        except ValueError:
            out[i] = True
            continue
        out[i] = not (np.isfinite(value) and value == round(value))
    return out


def warn_notes(study_path: Path, notes: RowNotes, code_column: str) -> None:
    """One warning per kind of row noted (naming the first file in sorted order, the same
    whichever build noted it)."""
    if notes.unset:
        first = min(notes.unset)
        total = sum(notes.unset.values())
        verb = "has an n/a onset and makes" if total == 1 else "have an n/a onset and make"
        _warn(
            f"BidsStudy at {study_path}: {_count(total, 'row')} of "
            f"{_count(len(notes.unset), 'events file')} {verb} no event (BIDS requires a "
            f"number); e.g. {first} ({_count(notes.unset[first], 'row')}): give those rows "
            "their onset, or remove them"
        )
    if notes.codes:
        first = min(notes.codes)
        _warn(
            f"BidsStudy at {study_path}: {_count(len(notes.codes), 'events file')} "
            f"{'has' if len(notes.codes) == 1 else 'have'} {code_column!r} (code_column) cells "
            f"that are not integers, read as code 0; e.g. {first} has {notes.codes[first]!r}: "
            f"read the column as text with extra_columns=({code_column!r},) and "
            "code_column='', or set code_column to a column of integer codes"
        )


def warn_absent_columns(study_path: Path, extra_columns: tuple[str, ...], table: Any) -> None:
    """Warn about ``extra_columns`` that no events file of the selected runs has (a misspelt
    name gives no column, silently); ``table`` is the events table built."""
    absent = [n for n in extra_columns if n not in table.columns]
    if absent:
        _warn(
            f"BidsStudy.extra_columns: {', '.join(map(repr, absent))} "
            f"{'is' if len(absent) == 1 else 'are'} a column of no events file of "
            f"{study_path} (of the selected runs); check the spelling against the files' "
            "header (names are case-sensitive)"
        )


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=5)  # the caller of Study.events()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")

"""Typed events from the ``*_events.tsv`` files of a BIDS run (column parts, no DataFrame).

:func:`events_parts` turns the rows of one run's events files into column parts (see
:func:`~neuralset.studies.columns.stack_columns`) of neuralset events:

* every row becomes one event of ``trial_event`` type (``description`` from the
  ``description_column``, ``code`` from an integer ``code_column``), unless the row names its own
  type in ``type_column`` (the column :func:`~neuralset.studies.bids_export.to_bids` writes);
* each non-empty cell of a ``stimulus_columns`` column becomes an extra event (``Word`` text,
  ``Image``/``Audio``/``Video`` file under ``stimuli/``);
* ``extra_columns`` are copied onto those events (numbers when every cell is one).

``n/a`` cells are empty; rows with an ``n/a`` onset make no event, and non-integer codes are
0 (:mod:`~neuralset.studies.bids_notes` warns about both); an infinite onset or a negative or infinite duration is an error naming the file. When a run has several events
files (one per datatype of an EEG-fMRI or MEG+EEG run), rows listed by more than one are kept once
(a row one file lists twice, twice).

:func:`many_runs_parts` builds the same parts for many runs at once (runs with one events file
each, sharing a header): one pass over all their cells, each distinct cell of a column parsed
once (see :mod:`neuralset.studies.bids_dataset`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .bids_files import STIM_TYPES, BidsError, parse_numbers, read_tsv, stim_type
from .bids_metadata import cell_values
from .bids_notes import RowNotes, non_integer

__all__ = ["EventsOptions", "events_parts", "FILE_TYPES"]

#: event types whose ``filepath`` points at a stimulus file
FILE_TYPES = ("Image", "Audio", "Video")


@dataclasses.dataclass(frozen=True)
class EventsOptions:
    """How the columns of an events.tsv map to events (the matching fields of ``BidsStudy``)."""

    trial_event: str
    description_column: str
    code_column: str
    stimulus_columns: dict[str, str]
    extra_columns: tuple[str, ...]
    type_column: str
    language: str
    text_types: frozenset[str]


def _merged_rows(paths: list[Path], options: EventsOptions) -> dict[str, list[str]]:
    """The rows of one or more events files, columns united, duplicated rows kept once."""
    tables = [read_tsv(p) for p in paths]
    for path, table in zip(paths, tables):
        if "onset" not in table:
            raise BidsError(
                f"{path}: events.tsv has no 'onset' column (columns: {', '.join(table)})"
            )
    if len(tables) == 1:
        return tables[0]
    columns = list(dict.fromkeys(c for t in tables for c in t))
    used = [
        c
        for c in (
            "onset",
            "duration",
            options.description_column,
            options.code_column,
            options.type_column,
            *options.stimulus_columns,
            *options.extra_columns,
        )
        if c in columns
    ]
    merged: dict[str, list[str]] = {c: [] for c in columns}
    kept: dict[tuple[str, ...], int] = {}  # row -> copies kept (the most any one file lists)
    for table in tables:
        n = len(table["onset"])
        here: dict[tuple[str, ...], int] = {}
        for i in range(n):
            ident = tuple(table[c][i] if c in table else "n/a" for c in used)
            here[ident] = here.get(ident, 0) + 1
            if here[ident] <= kept.get(ident, 0):
                continue  # listed by an earlier file of the run
            kept[ident] = here[ident]
            for c in columns:
                merged[c].append(table[c][i] if c in table else "n/a")
    return merged


def events_parts(
    paths: list[Path],
    options: EventsOptions,
    rec_duration: float,
    notes: RowNotes | None = None,
) -> list[dict[str, Any]]:
    """Column parts (``type``, ``start``, ``duration``, fields) of a run's events files.

    Rows with an ``n/a`` onset make no event, non-integer codes are 0: ``notes`` (when given)
    records them under the files' name.
    """
    table = _merged_rows(paths, options)
    label = paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more)"
    onset = parse_numbers(table["onset"], Path(str(label)), "onset")
    n = len(onset)
    duration = (
        parse_numbers(table["duration"], Path(str(label)), "duration")
        if "duration" in table
        else np.zeros(n)
    )
    keep = ~np.isnan(onset)
    if notes is not None and not keep.all():
        notes.unset[str(label)] = int((~keep).sum())
    duration = np.nan_to_num(duration, nan=0.0, posinf=np.inf, neginf=-np.inf)
    _check_times(label, onset, duration, keep, rec_duration)
    extras = {c: cell_values(table[c]) for c in options.extra_columns if c in table}
    parts: list[dict[str, Any]] = []
    typed = (
        np.array([t not in ("", "n/a") for t in table[options.type_column]], dtype=bool)
        if options.type_column and options.type_column in table
        else np.zeros(n, dtype=bool)
    )
    if typed.any():
        parts.extend(_typed_parts(table, keep & typed, onset, duration, options, label))
    trial_rows = keep & ~typed
    if options.trial_event and trial_rows.any():
        parts.append(_trial_part(table, trial_rows, onset, duration, options, extras))
        if notes is not None and options.code_column in table:
            cells = _cells(table[options.code_column])
            bad = trial_rows & non_integer(cells)
            if bad.any():
                notes.codes[str(label)] = str(cells[bad][0])
    for column, etype in options.stimulus_columns.items():
        if column not in table:
            continue
        cells = _cells(table[column])
        has = trial_rows & (cells != "") & (cells != "n/a")
        if not has.any():
            continue
        values = cells[has]
        sub: dict[str, Any] = {"start": onset[has], "duration": duration[has]}
        if etype == "auto" or etype in FILE_TYPES:
            if etype == "auto":
                sub["type"] = _stim_types(values, Path(str(label)), column)
            else:
                sub["type"] = etype
            sub["filepath"] = "stimuli/" + values  # elementwise on an object array
        else:
            sub["type"] = etype
            sub["text"] = values
            sub["language"] = options.language
        for name, vals in extras.items():
            sub[name] = _select(vals, has)
        parts.append(sub)
    return parts


def _check_times(
    label: object, onset: np.ndarray, duration: np.ndarray, keep: np.ndarray, rec_duration: float
) -> None:
    """Refuse infinite onsets, negative or infinite durations, onsets after the recording."""
    bad = _out_of_range(onset, duration, keep)
    if bad.any():
        raise BidsError(
            f"{label}: rows {np.flatnonzero(bad)[:5].tolist()} have an infinite onset or a "
            "negative or infinite duration; write onsets and durations in seconds (durations "
            ">= 0, n/a when unknown)"
        )
    if math.isfinite(rec_duration):
        late = keep & (onset > rec_duration + 1e-3)
        if late.any():
            raise BidsError(
                f"inconsistent run: {label} has onsets after the end of its recording "
                f"({rec_duration:.3f} s), rows {np.flatnonzero(late)[:5].tolist()}; check that "
                "the events file belongs to this run"
            )


def _out_of_range(onset: np.ndarray, duration: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The kept rows whose onset is infinite or whose duration is negative or infinite."""
    return keep & (np.isinf(onset) | ~(np.isfinite(duration) & (duration >= 0)))


def _cells(cells: list[str] | np.ndarray) -> np.ndarray:
    """A TSV column as an object array (elementwise comparisons run in numpy's loop)."""
    if isinstance(cells, np.ndarray):
        return cells
    out = np.empty(len(cells), dtype=object)
    out[:] = cells
    return out


def _stim_types(values: np.ndarray, where: Path, column: str) -> np.ndarray:
    """The file event type of each stimulus (looked up once per distinct file)."""
    codes, uniques = pd.factorize(values)
    kinds = np.empty(len(uniques), dtype=object)
    for i, v in enumerate(uniques):
        dot, slash = v.rfind("."), v.rfind("/")
        kind = STIM_TYPES.get(v[dot:].lower()) if dot > slash + 1 else None
        kinds[i] = kind if kind is not None else stim_type(str(v), where, column)
    return kinds[codes]


def _select(values: list[Any] | np.ndarray, mask: np.ndarray) -> list[Any] | np.ndarray:
    if isinstance(values, np.ndarray):
        return values[mask]
    return [v for v, m in zip(values, mask) if m]


def _trial_part(
    table: dict[str, list[str]],
    rows: np.ndarray,
    onset: np.ndarray,
    duration: np.ndarray,
    options: EventsOptions,
    extras: dict[str, Any],
) -> dict[str, Any]:
    part: dict[str, Any] = {
        "type": options.trial_event,
        "start": onset[rows],
        "duration": duration[rows],
    }
    if options.description_column in table:
        desc = _cells(table[options.description_column])[rows]
        desc[desc == "n/a"] = ""
        part["description"] = desc
    if options.code_column in table:
        part["code"] = _codes(table[options.code_column])[rows]
    for name, vals in extras.items():
        part[name] = _select(vals, rows)
    return part


def _codes(cells: list[str] | np.ndarray) -> np.ndarray:
    """Integer codes of cells (0 where a cell is not an integer number)."""
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        values = np.array([_float_or_nan(c) for c in cells], dtype=np.float64)
    ok = np.isfinite(values) & (values == np.round(values))
    return np.where(ok, values, 0).astype(np.int64)


def _float_or_nan(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return math.nan


def _typed_parts(
    table: dict[str, list[str]],
    rows: np.ndarray,
    onset: np.ndarray,
    duration: np.ndarray,
    options: EventsOptions,
    label: object,
) -> list[dict[str, Any]]:
    """One part per event type named in ``type_column`` (rows written by ``to_bids``)."""
    from ..events import event_type

    types = np.array(table[options.type_column], dtype=object)
    parts = []
    for name in sorted(set(types[rows])):
        try:
            cls = event_type(str(name))
        except ValueError as err:
            raise BidsError(f"{label}: column {options.type_column!r}: {err}") from None
        fields = {f.name for f in dataclasses.fields(cls)}
        mask = rows & (types == name)
        part: dict[str, Any] = {"type": str(name), "start": onset[mask], "duration": duration[mask]}
        for column, cells in table.items():
            if column in ("onset", "duration", options.type_column):
                continue
            target = {
                options.description_column: "description",
                options.code_column: "code",
                "stim_file": "filepath",
            }.get(column, column)
            if target not in fields and column not in options.extra_columns:
                continue
            picked = [c for c, m in zip(cells, mask) if m]
            if target == "code":
                part["code"] = _codes(picked)
            elif target == "filepath":
                part["filepath"] = [
                    f"stimuli/{c}" if c not in ("", "n/a") else None for c in picked
                ]
            elif target in ("text", "description", "language", "sentence", "context"):
                part[target] = ["" if c == "n/a" else c for c in picked]
            else:
                part[target] = cell_values(picked)
        if str(name) in options.text_types and "language" not in part:
            part["language"] = options.language
        parts.append(part)
    return parts


def has_typed_rows(table: dict[str, list[str]], options: EventsOptions) -> bool:
    """Whether rows of the table name their own event type (``type_column``)."""
    column = table.get(options.type_column) if options.type_column else None
    return column is not None and any(t not in ("", "n/a") for t in column)


def many_runs_parts(
    table: dict[str, Any],
    counts: np.ndarray,
    rec_durations: np.ndarray,
    options: EventsOptions,
    notes: dict[str, np.ndarray] | None = None,
) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """:func:`events_parts` of many runs at once: each run one events file, all with the columns
    of ``table`` (their cells, file after file; ``counts`` rows each) and no typed row.

    Returns, in the order of a run's parts, the rows of ``table`` making that part in any run
    and the part's values for those rows; a part is numeric in a column only where the runs
    with rows in it all are. Raises :class:`BidsError` where :func:`events_parts` would fail on
    some run (its message words the error; the caller asks the run-by-run build for it).
    ``notes`` (when given) gets each run's number of rows with an ``n/a`` onset (``"unset"``)
    and its first trial row whose code is not an integer (``"code"``, -1 for none).
    """
    n = int(counts.sum())
    onset = _numbers(table["onset"])
    duration = _few_numbers(table["duration"]) if "duration" in table else np.zeros(n)
    keep = ~np.isnan(onset)
    duration = np.nan_to_num(duration, nan=0.0, posinf=np.inf, neginf=-np.inf)
    if _out_of_range(onset, duration, keep).any():
        raise BidsError("an infinite onset or a negative or infinite duration")
    run_of = np.repeat(np.arange(len(counts)), counts)
    if notes is not None:
        notes["unset"] = np.bincount(run_of[~keep], minlength=len(counts))
    if (keep & (onset > rec_durations[run_of] + 1e-3)).any():  # NaN: no limit known
        raise BidsError("onsets after the end of a recording")
    extras = {c: _ManyRuns(table[c], counts) for c in options.extra_columns if c in table}
    parts: list[tuple[np.ndarray, dict[str, Any]]] = []
    if options.trial_event and keep.any():
        values: dict[str, Any] = {
            "type": options.trial_event,
            "start": onset[keep],
            "duration": duration[keep],
        }
        if options.description_column in table:
            codes, uniques = _factorized(table[options.description_column])
            uniques[uniques == "n/a"] = ""
            values["description"] = uniques[codes[keep]]
        if options.code_column in table:
            codes, uniques = _factorized(table[options.code_column])
            values["code"] = _codes(uniques)[codes[keep]]
            if notes is not None:
                notes["code"] = _first_per_run(keep & non_integer(uniques)[codes], run_of, counts)
        values.update({name: extra.select(keep, run_of) for name, extra in extras.items()})
        parts.append((keep, values))
    for column, etype in options.stimulus_columns.items():
        if column not in table:
            continue
        codes, uniques = _factorized(table[column])
        has = keep & ((uniques != "") & (uniques != "n/a"))[codes]
        if has.any():
            values = {"start": onset[has], "duration": duration[has]}
            values.update(_stimulus_values(codes[has], uniques, etype, options))
            values.update({n: e.select(has, run_of) for n, e in extras.items()})
            parts.append((has, values))
    return parts


def _first_per_run(rows: np.ndarray, run_of: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each run's first row of ``rows`` (-1 where a run has none)."""
    first = np.full(len(counts), -1, dtype=np.int64)
    hits = np.flatnonzero(rows)[::-1]  # reversed: the first row of a run is written last
    first[run_of[hits]] = hits
    return first


def _factorized(cells: list[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct values (an object array) of a column's cells."""
    codes, uniques = pd.factorize(_cells(cells))
    return codes, np.asarray(uniques, dtype=object)


def _stimulus_values(
    codes: np.ndarray, uniques: np.ndarray, etype: str, options: EventsOptions
) -> dict[str, Any]:
    """``type`` and ``filepath`` or ``text`` of stimulus events (each distinct value once)."""
    if etype == "auto" or etype in FILE_TYPES:
        if etype == "auto":
            used = np.bincount(codes, minlength=len(uniques)) > 0
            kinds = np.empty(len(uniques), dtype=object)
            kinds[used] = _stim_types(uniques[used], Path("."), "")
            return {"type": kinds[codes], "filepath": ("stimuli/" + uniques)[codes]}
        return {"type": etype, "filepath": ("stimuli/" + uniques)[codes]}
    return {"type": etype, "text": uniques[codes], "language": options.language}


def _few_numbers(cells: list[str] | np.ndarray) -> np.ndarray:
    """:func:`_numbers` of a column with few distinct cells (each parsed once)."""
    codes, uniques = _factorized(cells)
    return _numbers(uniques)[codes]


def _numbers(cells: list[str] | np.ndarray) -> np.ndarray:
    """:func:`parse_numbers` of cells of many files (the error is worded by the caller)."""
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        pass
    try:
        return np.array([np.nan if c in ("n/a", "") else float(c) for c in cells], dtype=np.float64)
    except ValueError:
        raise BidsError("a cell that is not a number") from None


class _ManyRuns:
    """An ``extra_columns`` column of many runs: :func:`cell_values` of each run's cells, numbers
    in runs where every cell is one (or ``n/a``), text (``n/a`` -> None) elsewhere."""

    def __init__(self, cells: list[str] | np.ndarray, counts: np.ndarray) -> None:
        nan_cells = ["nan" if c in ("n/a", "") else c for c in cells]
        try:
            self.numbers = np.array(nan_cells, dtype=np.float64)
            self.numeric = np.ones(len(counts), dtype=bool)
            self.mixed: np.ndarray | None = None
            return
        except ValueError:
            pass
        self.numbers = np.full(len(cells), np.nan)
        self.numeric = np.zeros(len(counts), dtype=bool)
        self.mixed = np.empty(len(cells), dtype=object)
        stops = np.cumsum(counts)
        for run, (start, stop) in enumerate(zip(stops - counts, stops)):
            values = cell_values(cells[start:stop])
            if isinstance(values, np.ndarray):
                self.numeric[run] = True
                self.numbers[start:stop] = values
            self.mixed[start:stop] = values  # Python floats where numeric

    def select(self, rows: np.ndarray, run_of: np.ndarray) -> np.ndarray:
        """The values of ``rows``: numbers when every run with rows there is numeric."""
        if self.mixed is None or self.numeric[run_of[rows]].all():
            return self.numbers[rows]
        return self.mixed[rows]

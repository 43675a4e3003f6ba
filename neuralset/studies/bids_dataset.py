"""The events of a whole BIDS dataset in one pass: :meth:`BidsStudy.all_timeline_events`.

Built as the run-by-run reference builds them (:meth:`BidsStudy.run_by_run_events`, the same
rows, order, columns, dtypes and values), but column-wise over the whole dataset:

* recordings: one data event per recording file, from its sidecars (each inheritance chain
  merged once, see :mod:`neuralset.studies.bids_metadata`), ``channels.tsv``, ``scans.tsv``
  and one :func:`~neuralset.studies.file_state.file_state` each; the data events of recordings
  with the same columns become one block of rows;
* events files: runs with one events file and no typed row (the common case) are read and
  grouped by header; each group's cells are turned into events in one vectorised pass
  (:func:`~neuralset.studies.bids_events.many_runs_parts`), every run's rows placed at their
  position in the table (recordings of the run first, then its trial events, then each
  stimulus column's events). Runs with several events files (EEG-fMRI, MEG + EEG) or typed rows
  are built run by run (:func:`~neuralset.studies.bids_events.events_parts`);
* the table is assembled once (:func:`~neuralset.studies.columns.place_columns`).

A malformed dataset raises :class:`~neuralset.studies.bids_files.BidsError` here, without
the file's name in every case: the caller then builds run by run, which raises the error of the
first faulty run in the words it always used.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .bids_events import EventsOptions, events_parts, has_typed_rows, many_runs_parts
from .bids_files import (
    Recording,
    inherited_tsv,
    plain_tsv,
    relative_path,
    text_present,
    tsv_candidates,
    tsv_columns,
    tsv_header,
)
from .bids_metadata import MetadataCache, participants, scans
from .bids_notes import RowNotes
from .columns import Block, RunColumns, merge_parts, place_columns

if TYPE_CHECKING:
    from .bids import BidsStudy

__all__ = ["dataset_events", "first_duration", "warn_missing_descriptions", "RESERVED_COLUMNS"]

#: a header group of at least this many rows is tokenized by pandas (see :func:`_tsv_arrays`)
_PANDAS_ROWS = 5000

#: columns the study itself fills: a participants.tsv / scans.tsv column of the same name is
#: joined with a ``participant_`` / ``scan_`` prefix
RESERVED_COLUMNS = frozenset(
    {
        "type", "start", "duration", "timeline", "filepath", "frequency", "offset", "study_root",
        "duration_source", "file_present", "file_size", "subject", "session", "task", "acq",
        "run", "echo", "space", "bads", "text", "language", "description", "code", "sentence",
        "context",
    }
)  # fmt: skip


def first_duration(parts: list[dict[str, Any]]) -> float:
    """The first known duration of a run's recordings (NaN when none is known)."""
    durations = [p["duration"] for p in parts if math.isfinite(p["duration"])]
    return durations[0] if durations else math.nan


def dataset_events(
    study: BidsStudy, by_timeline: dict[str, list[Recording]], context: _Context
) -> pd.DataFrame:
    """The events table of the timelines (not yet validated); see the module docstring."""
    options = context.options(study)
    names = list(by_timeline)
    rec_parts = [[study._recording_part(r, context) for r in recs] for recs in by_timeline.values()]
    files = [study._events_files(recs, context) for recs in by_timeline.values()]
    shared = [study._shared(t, recs, context) for t, recs in by_timeline.items()]
    durations = np.array([first_duration(parts) for parts in rec_parts], dtype=float)
    n_recs = np.array([len(parts) for parts in rec_parts], dtype=np.int64)
    single: list[tuple[int, list[str], list[str]]] = []
    legacy: dict[int, list[dict[str, Any]]] = {}
    for t, run_files in enumerate(files):
        plain = plain_tsv(run_files[0]) if len(run_files) == 1 else None
        if plain is not None and _columnar(*plain, options):
            single.append((t, *plain))
        elif run_files:
            legacy[t] = events_parts(run_files, options, float(durations[t]), context.notes)
    groups = _grouped_parts(single, durations, options, files, context.notes)
    sizes = n_recs.copy()
    for t, parts in legacy.items():
        sizes[t] += sum(len(p["start"]) for p in parts)
    for runs, _, counts in groups:
        sizes[runs] += counts.sum(axis=1)
    offsets = np.cumsum(sizes) - sizes
    run_keys = tuple(shared[0])  # every run has the same (timeline, entities, participants)
    blocks = _recording_blocks(rec_parts, run_keys, offsets)
    for t, parts in legacy.items():
        at = int(offsets[t] + n_recs[t])
        for part in parts:
            n = len(part["start"])
            blocks.append(Block(slice(at, at + n), n, *_without(part, run_keys)))
            at += n
    for runs, group_parts, counts in groups:
        first = offsets[runs] + n_recs[runs]  # each run's first event row
        before = np.cumsum(counts, axis=1) - counts  # rows of the run's earlier parts
        for k, (_, values) in enumerate(group_parts):
            run_of = np.repeat(np.arange(len(runs)), counts[:, k])
            rank = np.arange(len(run_of)) - (np.cumsum(counts[:, k]) - counts[:, k])[run_of]
            where = first[run_of] + before[run_of, k] + rank
            blocks.append(Block(where, len(where), *_without(values, run_keys)))
    by_run = RunColumns(np.repeat(np.arange(len(names)), sizes), _per_run(shared, run_keys))
    return place_columns(blocks, int(sizes.sum()), by_run)


def _without(
    values: dict[str, Any], run_keys: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A part's own values (the run-wide columns replace those of the same name, in place) and
    its columns in order, as ``part.update(shared)`` would leave them."""
    keys = tuple(dict.fromkeys((*values, *run_keys)))
    return {k: v for k, v in values.items() if k not in run_keys}, keys


def _per_run(shared: list[dict[str, Any]], run_keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    out = {}
    for key in run_keys:
        column = np.empty(len(shared), dtype=object)
        column[:] = [s[key] for s in shared]
        out[key] = column
    return out


def _columnar(header: list[str], rows: list[str], options: EventsOptions) -> bool:
    """Whether a run's only events file is built with the others of its header (it has an
    onset column and no row typed by ``type_column``)."""
    if "onset" not in header:
        return False
    return options.type_column not in header or not has_typed_rows(
        tsv_columns(header, rows), options
    )


def _grouped_parts(
    single: list[tuple[int, list[str], list[str]]],
    durations: np.ndarray,
    options: EventsOptions,
    files: list[list[Path]],
    notes: RowNotes,
) -> list[tuple[np.ndarray, list[tuple[np.ndarray, dict[str, Any]]], np.ndarray]]:
    """Events of the one-file runs, grouped by header: (runs, parts, rows per run and part).

    ``notes`` gets, by file, the rows with an ``n/a`` onset and a code that is not an integer.
    """
    by_header: dict[tuple[str, ...], list[tuple[int, list[str]]]] = {}
    for t, header, rows in single:
        by_header.setdefault(tuple(header), []).append((t, rows))
    out = []
    for names, members in by_header.items():
        runs = np.array([t for t, _ in members], dtype=np.int64)
        table = _tsv_arrays(list(names), list(chain.from_iterable(lines for _, lines in members)))
        n_rows = np.array([len(lines) for _, lines in members], dtype=np.int64)
        noted: dict[str, np.ndarray] = {}
        parts = many_runs_parts(table, n_rows, durations[runs], options, noted)
        for i in np.flatnonzero(noted["unset"]):
            notes.unset[str(files[runs[i]][0])] = int(noted["unset"][i])
        for i in np.flatnonzero(noted.get("code", np.zeros(0)) >= 0):
            notes.codes[str(files[runs[i]][0])] = str(table[options.code_column][noted["code"][i]])
        run_of = np.repeat(np.arange(len(runs)), n_rows)
        counts = np.zeros((len(runs), len(parts)), dtype=np.int64)
        for k, (mask, _) in enumerate(parts):
            counts[:, k] = np.bincount(run_of[mask], minlength=len(runs))
        out.append((runs, parts, counts))
    return out


def _tsv_arrays(header: list[str], rows: list[str]) -> dict[str, Any]:
    """:func:`tsv_columns` of many rows, tokenized by pandas' C reader when there are many (it
    makes one string object of repeated cells: cheaper to compare and hash afterwards)."""
    if len(rows) >= _PANDAS_ROWS:
        try:
            frame = pd.read_csv(
                io.StringIO("\n".join(rows)),
                sep="\t",
                header=None,
                names=range(len(header)),
                index_col=False,
                dtype=object,
                na_filter=False,
                quoting=csv.QUOTE_NONE,
                skip_blank_lines=False,
                engine="c",
            )
        except (ValueError, pd.errors.ParserError):
            frame = None
        if frame is not None and len(frame) == len(rows):  # rows checked: never otherwise
            cells = [frame[j].to_numpy(dtype=object) for j in range(len(header))]
            return {name: cells[j] for j, name in enumerate(header)}
    return tsv_columns(header, rows)


def _recording_blocks(
    rec_parts: list[list[dict[str, Any]]], run_keys: tuple[str, ...], offsets: np.ndarray
) -> list[Block]:
    """The data events, one block per set of columns (each run's recordings come first)."""
    by_keys: dict[tuple[str, ...], tuple[list[dict[str, Any]], list[int]]] = {}
    for t, parts in enumerate(rec_parts):
        for i, part in enumerate(parts):
            own, keys = _without(part, run_keys)
            members = by_keys.setdefault(keys, ([], []))
            members[0].append(own)
            members[1].append(int(offsets[t]) + i)
    blocks = []
    for keys, (own_parts, at) in by_keys.items():
        block = merge_parts(own_parts, np.array(at, dtype=np.int64))
        blocks.append(Block(block.rows, block.size, block.values, keys))
    return blocks


def warn_missing_descriptions(
    study: BidsStudy, table: pd.DataFrame, by_timeline: dict[str, list[Recording]]
) -> None:
    """Warn when events files lack the study's ``description_column`` (their trial events then
    have no description: ds000117's MEG runs name conditions in ``stim_type``, its fMRI runs in
    ``trial_type``)."""
    if not study.trial_event or not len(table):
        return
    trial = (table["type"] == study.trial_event).to_numpy()
    codes, names = pd.factorize(table["timeline"])  # per timeline, not per row, from here
    present = np.bincount(codes[trial], minlength=len(names)) > 0
    if "description" in table:
        rows = np.flatnonzero(trial)
        desc = table["description"].to_numpy()[rows]
        described = rows[~pd.isna(desc) & (desc != "")]
        present_described = np.bincount(codes[described], minlength=len(names)) > 0
    else:
        present_described = np.zeros(len(names), dtype=bool)
    with_trials = sorted(str(t) for t in names[present])
    undescribed = {str(t) for t in names[present & ~present_described]}
    if not undescribed:
        return
    context = _Context(study.path)
    files = {t: study._events_files(by_timeline[t], context) for t in with_trials}
    column = study.description_column
    lacking = [f for t in sorted(undescribed) for f in files[t] if column not in tsv_header(f)]
    if not lacking:
        return
    warnings.warn(
        f"BidsStudy at {study.path}: {len(lacking)} of {sum(map(len, files.values()))} events "
        f"files have no {column!r} column (description_column), so their {study.trial_event} "
        f"events have no description; e.g. {lacking[0]} has the columns "
        f"{', '.join(tsv_header(lacking[0]))}: set description_column to the one naming the "
        "conditions, or select the runs that have it (datatypes=..., tasks=...)",
        UserWarning,
        stacklevel=5,  # the caller of Study.events()
    )


class _Context:
    """What one discovery shares between recordings: sidecars, participants, scans, listings."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache = MetadataCache()
        self._participants: tuple[list[str], dict[str, dict[str, Any]]] | None = None
        self._scans: dict[str, dict[str, dict[str, Any]]] = {}
        self._taken: frozenset[str] | None = None
        self._options: EventsOptions | None = None
        self._names: dict[str, frozenset[str]] = {}
        self._prefix = f"{root}{os.sep}"
        #: rows of events files read other than as written, for one warning
        self.notes = RowNotes()
        self._tsv_candidates: dict[tuple[str, str], list[tuple[dict[str, str], str]]] = {}
        #: channels.tsv -> its bad channels (a file inherited by many runs read once)
        self.bads: dict[Path, str] = {}

    def options(self, study: BidsStudy) -> EventsOptions:
        if self._options is None:
            self._options = study._options()
        return self._options

    def participants(self) -> tuple[list[str], dict[str, dict[str, Any]]]:
        if self._participants is None:
            self._participants = participants(self.root)
        return self._participants

    def scan_row(self, rec: Recording) -> dict[str, Any]:
        """The ``_scans.tsv`` values of the recording (its subject/session folder's file)."""
        datatype_folder, name = os.path.split(rec.path)
        folder = os.path.dirname(datatype_folder)
        if folder not in self._scans:
            self._scans[folder] = scans(rec.path.parent.parent, rec.entities)
        rows = self._scans[folder]
        if not rows:
            return {}
        return rows.get(f"{os.path.basename(datatype_folder)}/{name}", {})

    def taken(self) -> frozenset[str]:
        """Names a ``scans.tsv`` column cannot take (it gets a ``scan_`` prefix)."""
        if self._taken is None:
            self._taken = RESERVED_COLUMNS.union(self.participants()[0])
        return self._taken

    def is_file(self, path: Path) -> bool:
        """``text_present(path)``, asked only of names its folder lists (listed once)."""
        return path.name in self.listing(path.parent) and text_present(path)

    def listing(self, folder: Path) -> frozenset[str]:
        """The names in ``folder`` (listed once; empty when it cannot be listed)."""
        names = self._names.get(str(folder))
        if names is None:
            try:
                names = frozenset(os.listdir(folder))
            except OSError:
                names = frozenset()
            self._names[str(folder)] = names
        return names

    def inherited(self, root: Path, path: Path) -> Path | None:
        """The file that applies to ``path`` (a TSV of ``root`` that is not there) by BIDS
        inheritance from its folder or the ones above (:func:`inherited_tsv`)."""
        found = inherited_tsv(path.parent, root, path.name, self._candidates)
        return found if found is not None and text_present(found) else None

    def _candidates(self, folder: Path, suffix: str) -> list[tuple[dict[str, str], str]]:
        """:func:`tsv_candidates` of a folder (found once per folder and suffix)."""
        key = (str(folder), suffix)
        found = self._tsv_candidates.get(key)
        if found is None:
            found = self._tsv_candidates[key] = tsv_candidates(self.listing(folder), suffix)
        return found

    def relative(self, path: Path) -> str:
        """:func:`relative_path` of ``path`` to the root."""
        text = str(path)
        if text.startswith(self._prefix) and os.sep == "/":
            return text[len(self._prefix) :]
        return relative_path(path, self.root)

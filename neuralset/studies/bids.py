"""A generic BIDS study: timelines, recordings and typed events from a BIDS folder, metadata only.

:class:`BidsStudy` scans ``sub-*/[ses-*/]<datatype>/`` for recordings (the BIDS file naming rules
decide the entities: subject, session, task, acquisition, run...), and for each recording builds a
data event from its sidecar JSON (``SamplingFrequency`` / ``RepetitionTime``,
``RecordingDuration``; BIDS inheritance from upper folders honoured) without opening the signal.
One timeline per run (``sub-01_ses-1_task-read_run-1``; the ``ce``, ``rec``, ``dir`` and ``proc``
entities name it too when a file has them: ``sub-01_task-read_dir-AP``): the recordings of several
datatypes of a run (EEG-fMRI, MEG + EEG) share it. The run's ``*_events.tsv`` become typed events.

==========  ====================================================  ==========
datatype    files                                                 event type
==========  ====================================================  ==========
``meg``     ``_meg.fif`` (first split), ``.ds``                   ``Meg``
``eeg``     ``_eeg.vhdr``, ``.edf``, ``.bdf``, ``.set``           ``Eeg``
``ieeg``    ``_ieeg.vhdr``, ``.edf``, ``.set``, ``.nwb``          ``Ieeg``
``emg``     ``_emg.vhdr``, ``.edf``, ``.bdf``                     ``Emg``
``nirs``    ``_nirs.snirf``                                       ``Fnirs``
``func``    ``_bold.nii[.gz]``, ``.func.gii``                     ``Fmri``
==========  ====================================================  ==========

fMRI may come from a derivatives pipeline (``fmri_derivatives="fmriprep"``): one ``Fmri`` event per
``space-`` entity of each run's preprocessed BOLD (``desc-preproc``), with its ``space`` field set;
the number of volumes comes from the NIfTI header (a few hundred bytes read).

Channels marked ``bad`` in ``channels.tsv`` are listed, comma-separated, in a ``bads`` column of the
recording events (M/EEG extractors drop them with ``drop_bads=True``; the data files themselves do
not carry BIDS bads).

Everything is read from metadata, so a dataset installed by ``datalad install`` (text files real,
recordings not fetched yet) is explored whole before anything is downloaded:

* ``participants.tsv`` columns are joined onto every event of the subject (``age``, ``sex``...;
  a name the events already use gets a ``participant_`` prefix), and the ``*_scans.tsv`` row of
  a recording onto its event (``acq_time``...; ``scan_`` prefix on a clash with the events' or
  the participants' columns);
* durations come from ``RecordingDuration``, or the file header when the file is present; when
  neither can say, the duration is NaN with ``duration_source = "unknown"`` (see
  :mod:`neuralset.studies.bids_metadata`), filled from the header once the file is fetched;
* data events carry ``file_present`` and ``file_size`` (from the git-annex key of a file not
  fetched yet; see :mod:`neuralset.studies.file_state`), and :meth:`Study.fetch` downloads what a
  selection needs;
* a dataset served over HTTP(S) (OpenNeuro's S3 bucket, a web folder) is explored without a
  clone: with ``remote=``, ``path`` is a local mirror of its text files where every recording is
  a placeholder carrying the listed size and checksum (:mod:`neuralset.studies.fetch.mirror`);
  :meth:`Study.fetch` downloads the selected recordings into it;
* a DataLad superdataset whose subdatasets (per subject...) are not installed is refused before
  any work, naming them and how to install them, unless ``subdatasets=`` says to install them
  (metadata only) or to explore the installed ones (:mod:`neuralset.studies.fetch.subdatasets`);
* ``events.tsv`` and ``channels.tsv`` follow the BIDS inheritance principle: a file in the
  run's folder or one above it (``sub-01/sub-01_task-read_events.tsv``, a top-level
  ``task-read_events.tsv``) applies to every run whose entities it names, the nearest winning;
* a text file annexed by git-annex and not fetched (sidecar, ``participants.tsv``, ``events.tsv``...)
  is an error naming it and the ``datalad get`` to run;
* real-world mess is skipped: macOS ``._*`` files and ``.DS_Store``, ``n/a`` cells, extra
  columns (rows with an ``n/a`` onset make no event; a warning counts them); empty-room and resting-state runs (``sub-emptyroom``, ``task-noise``, ``task-rest*``)
  need no events file, and other runs without one are an error unless ``require_events=False``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..config import config, register
from ..hashing import KEY_EXCLUDED, KEY_UNLESS_DEFAULT
from ..memo import Slot, frozen_memo
from ..validation import existing_path, one_of, require
from .base import Study
from .bids_dataset import (
    RESERVED_COLUMNS,
    _Context,
    dataset_events,
    first_duration,
    warn_missing_descriptions,
)
from .bids_events import EventsOptions, events_parts
from .bids_files import (
    DATATYPES,
    RUN_ENTITIES,
    BidsError,
    Recording,
    datatype_folders,
    parse_entities,
    raw_sibling,
    read_tsv,
    sibling_name,
    space_label,
    stack_columns,
)
from .bids_metadata import recording_metadata
from .bids_names import check_entities, check_selection
from .bids_notes import warn_absent_columns, warn_notes
from .file_state import file_state

__all__ = ["BidsStudy", "BidsError", "DATATYPES", "parse_entities"]

_NO_EVENTS_TASKS = ("rest", "noise")

#: :meth:`BidsStudy.recordings`, scanned once per (frozen) instance.
_RECORDINGS: Slot[list[Recording]] = Slot("recording files")


@register("bids")
@config
class BidsStudy(Study):
    """A study read from a BIDS dataset (see the module docstring).

    Parameters
    ----------
    path
        BIDS root (holds ``dataset_description.json`` and ``sub-*`` folders).
    datatypes
        Datatypes to read among :data:`DATATYPES` (empty: all found).
    subjects, tasks
        Keep only these subject / task labels (without ``sub-`` / ``task-``; empty: all).
    echoes
        Keep only these ``echo-`` labels of multi-echo fMRI (empty: every echo, one event each,
        with an ``echo`` column).
    fmri_derivatives
        Folder (relative to ``path``, e.g. ``"derivatives/fmriprep"``, or absolute) whose
        ``desc-preproc`` BOLD runs replace the raw ``func`` ones: one event per ``space-`` (the
        event's ``space`` is e.g. ``"T1w"``, or ``"MNI152NLin2009cAsym_res-2"`` when a ``res-``
        or ``den-`` entity distinguishes several outputs in one space).
    spaces
        Keep only these fMRI spaces (empty: all).
    stimulus_columns
        ``events.tsv`` column -> event type: each non-empty cell becomes an extra event of that
        type at the row's onset. Text types (``Word``...) take the cell as ``text``; file types
        (``Image``, ``Audio``, ``Video``) take ``stimuli/<cell>`` as ``filepath``; ``"auto"``
        picks the file type from the extension.
    trial_event
        Type of the event made from every ``events.tsv`` row; ``""`` makes none.
    description_column, code_column
        ``events.tsv`` columns giving the trial events' ``description`` and integer ``code``
        (BIDS names them ``trial_type`` and ``value``; some datasets use others, e.g.
        ``stim_type`` and ``trigger``). :meth:`events` warns, naming a file and its columns,
        when events files lack ``description_column``.
    extra_columns
        Other ``events.tsv`` columns copied onto the events of each row (numbers when every
        cell is one, ``n/a`` empty).
    type_column
        A column naming each row's event type (``Word``, ``Stimulus``...), as written by
        :meth:`Study.to_bids`; used when present, its rows then make no trial event.
    require_events
        Fail when a run has no ``events.tsv`` (empty-room and ``task-rest*`` / ``task-noise``
        runs excepted); ``False`` reads such runs as recordings alone.
    language
        ``language`` of text events.
    source
        Where :meth:`Study.fetch` gets missing files: ``""`` (git-annex when ``path`` is a
        git-annex repository), ``"annex"``, or an ``http(s)://`` prefix such as
        ``"https://s3.amazonaws.com/openneuro.org/ds000117"``. Not part of the key.
    remote
        A dataset served over HTTP(S), explored without a clone: ``s3://openneuro.org/ds000117``,
        an S3 path-style ``https://host/bucket/prefix``, or a web folder with index pages.
        :meth:`events` first mirrors its metadata into ``path`` (once; see
        :func:`~neuralset.studies.fetch.mirror.mirror_metadata`), and :meth:`Study.fetch`
        downloads from it. Not part of the key (``path`` is).
    remote_listing
        How ``remote`` is listed: ``"auto"``, ``"s3"`` (ListObjectsV2) or ``"http-index"``.
    subdatasets
        DataLad subdatasets (per subject, derivatives...) not installed under ``path``:
        ``"error"`` (refused before any work, naming them and the ``datalad get -n`` command),
        ``"install"`` (:meth:`events` installs them, metadata only) or ``"installed"`` (explore
        only the installed ones).
    """

    tracks_files: ClassVar[bool] = True

    datatypes: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    echoes: tuple[str, ...] = ()
    fmri_derivatives: str | None = None
    spaces: tuple[str, ...] = ()
    stimulus_columns: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"word": "Word", "stim_file": "auto"}
    )
    trial_event: str = "Stimulus"
    description_column: str = "trial_type"
    code_column: str = "value"
    extra_columns: tuple[str, ...] = ()
    type_column: str = "neuralset_type"
    require_events: bool = True
    language: str = ""
    source: str = dataclasses.field(default="", metadata=KEY_EXCLUDED)
    remote: str = dataclasses.field(default="", metadata=KEY_EXCLUDED)
    remote_listing: str = dataclasses.field(default="auto", metadata=KEY_EXCLUDED)
    subdatasets: str = dataclasses.field(default="error", metadata=KEY_UNLESS_DEFAULT)

    def _check(self) -> None:
        from ..events import event_types

        one_of(self, "datatypes", DATATYPES, what="datatype")
        known = event_types()
        for column, etype in self.stimulus_columns.items():
            one_of(
                self,
                f"stimulus_columns.{column}",
                ["auto", *known],
                what="event type",
                value=etype,
                fix="register the event type, or use 'auto' for files",
            )
        if self.trial_event:
            one_of(self, "trial_event", known, what="event type", fix="or '' for none")
        one_of(self, "subdatasets", ("error", "install", "installed"), what="mode")
        one_of(self, "remote_listing", ("auto", "s3", "http-index"), what="listing")
        require(
            not self.remote or self.remote.startswith(("s3://", "http://", "https://")),
            self,
            "remote",
            f"expected an s3://, http:// or https:// URL of the dataset's top, got {self.remote!r}",
        )
        if self.fmri_derivatives is not None and not (self.remote and not self.path.is_dir()):
            existing_path(
                self,
                "fmri_derivatives",
                "folder",
                value=self._derivatives_root(),
                fix="give it relative to the BIDS root, e.g. 'derivatives/fmriprep'",
            )
        require(
            self.source in ("", "annex") or self.source.startswith(("http://", "https://")),
            self,
            "source",
            f"expected '', 'annex' or an http(s):// URL prefix, got {self.source!r}",
        )

    # -- remote mirror, DataLad subdatasets: neuralset.studies.bids_sources ------------------
    def creates_files(self) -> bool:
        return bool(self.remote)  # the mirror of a remote dataset is created by build()

    def build(self) -> None:
        """Mirror the metadata of ``remote`` (once); install subdatasets when asked."""
        from .bids_sources import build_sources

        build_sources(self)

    def content_key(self) -> str:
        from .bids_sources import sources_key

        return sources_key(self)

    def _derivatives_root(self) -> Path:
        assert self.fmri_derivatives is not None
        path = Path(self.fmri_derivatives)
        return path if path.is_absolute() else self.path / path

    # -- discovery (file names only) --------------------------------------------------
    def recordings(self) -> list[Recording]:
        """Every recording file of the dataset (cached on the instance; no file opened)."""
        return frozen_memo(self).get_or_set(_RECORDINGS, self._scan)

    def _scan(self) -> list[Recording]:
        from .bids_sources import check_sources

        check_sources(self)
        out = self._scan_all(select=True)
        check_selection(self, out, lambda: self._scan_all(select=False))
        seen: dict[tuple[str, str, str], Path] = {}
        for rec in out:
            ents = rec.entities
            ident = (
                rec.timeline,
                rec.datatype,
                f"{space_label(ents)}|{ents.get('hemi', '')}|{ents.get('echo', '')}",
            )
            if ident in seen:
                raise BidsError(
                    f"inconsistent run: {seen[ident]} and {rec.path} are two {rec.datatype} recordings "
                    f"of the same run {rec.timeline}; remove one, or select with datatypes/spaces"
                )
            seen[ident] = rec.path
        return sorted(out, key=lambda r: (r.timeline, r.datatype, str(r.path)))

    def _scan_all(self, *, select: bool) -> list[Recording]:
        """The recordings of the selected (``select=False``: all) datatypes, subjects, tasks..."""
        wanted = set(self.datatypes or DATATYPES) if select else set(DATATYPES)
        subjects = self.subjects if select else ()
        out: list[Recording] = []
        raw_dt = wanted - {"func"} if self.fmri_derivatives is not None else wanted
        for folder, datatype in datatype_folders(self.path, raw_dt, subjects):
            out.extend(self._scan_folder(folder, datatype, derivative=False, select=select))
        if self.fmri_derivatives is not None and "func" in wanted:
            for folder, datatype in datatype_folders(self._derivatives_root(), {"func"}, subjects):
                out.extend(self._scan_folder(folder, datatype, derivative=True, select=select))
        return out

    def _scan_folder(
        self, folder: Path, datatype: str, *, derivative: bool, select: bool = True
    ) -> list[Recording]:
        suffix, exts, _ = DATATYPES[datatype]
        ends = tuple(f"_{suffix}{ext}" for ext in exts)
        out = []
        for entry in os.scandir(folder):
            if entry.name.startswith(".") or not entry.name.endswith(exts):
                continue  # .DS_Store, macOS ._* resource forks, dot files; events, sidecars...
            ents, suf, ext = parse_entities(entry.name)
            end = next((e for e in ends if entry.name.endswith(e)), None)
            if end is not None:
                check_entities(Path(entry.path), end)  # a recording: its entities are read
            if suf != suffix or ext not in exts:
                continue
            if select and self.tasks and ents.get("task") not in self.tasks:
                continue
            if select and self.echoes and "echo" in ents and ents["echo"] not in self.echoes:
                continue
            if ents.get("split") not in (None, "01", "1"):
                continue  # MNE reads the following splits of a FIF from the first one
            if derivative:
                if ents.get("desc") != "preproc" or (
                    ext == ".func.gii" and ents.get("hemi") != "L"
                ):
                    continue
                if select and self.spaces and ents.get("space", "") not in self.spaces:
                    continue
            timeline = "_".join(f"{k}-{ents[k]}" for k in RUN_ENTITIES if k in ents)
            out.append(Recording(Path(entry.path), datatype, ents, timeline))
        return out

    def timelines(self) -> list[str]:
        return sorted({r.timeline for r in self.recordings()})

    # -- events: sidecars, events.tsv, channels.tsv, participants, scans --------------------
    def timeline_events(self, timeline: str) -> pd.DataFrame:
        recs = [r for r in self.recordings() if r.timeline == timeline]
        if not recs:
            raise KeyError(f"no timeline {timeline!r} in {self.path}")
        context = _Context(self.path)
        table = stack_columns(self._timeline_parts(timeline, recs, context))
        warn_notes(self.path, context.notes, self.code_column)
        return table

    def all_timeline_events(self) -> pd.DataFrame:
        """Every timeline's events, built for the whole dataset at once.

        The events files are read and turned into events together (see
        :mod:`neuralset.studies.bids_dataset`); when that finds the dataset malformed, the
        run-by-run build (:meth:`run_by_run_events`) raises the error of the first faulty run.
        """
        by_timeline = self._by_timeline()
        context = _Context(self.path)
        try:
            table = dataset_events(self, by_timeline, context)
        except BidsError:
            table = self.run_by_run_events()  # it warns about n/a onsets
        else:
            warn_notes(self.path, context.notes, self.code_column)
        warn_missing_descriptions(self, table, by_timeline)
        warn_absent_columns(self.path, self.extra_columns, table)
        return table

    def run_by_run_events(self) -> pd.DataFrame:
        """The events of every timeline built one run after the other, as
        :meth:`timeline_events` builds one (what :meth:`all_timeline_events` gives, slower on
        thousands of runs; its errors name the first faulty run)."""
        context = _Context(self.path)
        parts: list[dict[str, Any]] = []
        for timeline, recs in self._by_timeline().items():
            parts.extend(self._timeline_parts(timeline, recs, context))
        table = stack_columns(parts)
        warn_notes(self.path, context.notes, self.code_column)
        return table

    def _by_timeline(self) -> dict[str, list[Recording]]:
        by_timeline: dict[str, list[Recording]] = {}
        for rec in self.recordings():
            by_timeline.setdefault(rec.timeline, []).append(rec)
        if not by_timeline:
            raise ValueError(f"{type(self).__name__} at {self.path} has no timelines")
        return by_timeline

    def _options(self) -> EventsOptions:
        from ..events import TextEvent, event_types

        return EventsOptions(
            trial_event=self.trial_event,
            description_column=self.description_column,
            code_column=self.code_column,
            stimulus_columns=dict(self.stimulus_columns),
            extra_columns=self.extra_columns,
            type_column=self.type_column,
            language=self.language,
            text_types=frozenset(n for n, c in event_types().items() if issubclass(c, TextEvent)),
        )

    def _timeline_parts(
        self, timeline: str, recs: list[Recording], context: _Context
    ) -> list[dict[str, Any]]:
        parts = [self._recording_part(r, context) for r in recs]
        files = self._events_files(recs, context)
        if files:
            options = context.options(self)
            parts.extend(events_parts(files, options, first_duration(parts), context.notes))
        shared = self._shared(timeline, recs, context)
        for part in parts:
            part.update(shared)
        return parts

    def _events_files(self, recs: list[Recording], context: _Context) -> list[Path]:
        """The distinct events files of a run's recordings (an error for a run needing one)."""
        files: list[Path] = []
        for rec in recs:
            events_file = self._events_file(rec, context)
            if events_file is None:
                if self.require_events and not _needs_no_events(rec):
                    expected = raw_sibling(self.path, rec, "events", ".tsv")
                    raise BidsError(
                        f"missing events file {expected} for recording {rec.path}; add it, or pass "
                        "require_events=False to read runs without events"
                    )
                continue
            if events_file not in files:
                files.append(events_file)
        return files

    def _shared(self, timeline: str, recs: list[Recording], context: _Context) -> dict[str, Any]:
        """The columns every event of a run has: timeline, entities, participants.tsv values."""
        ents = recs[0].entities
        shared: dict[str, Any] = {"timeline": timeline}
        for key, entity in (
            ("subject", "sub"),
            ("session", "ses"),
            ("task", "task"),
            ("run", "run"),
        ):
            shared[key] = ents.get(entity, "")
        columns, values = context.participants()
        row = values.get(ents["sub"], {})
        for column in columns:
            name = f"participant_{column}" if column in RESERVED_COLUMNS else column
            shared[name] = row.get(column)
        return shared

    def _events_file(self, rec: Recording, context: _Context) -> Path | None:
        candidates = [rec.path.with_name(sibling_name(rec, "events", ".tsv"))]
        if rec.datatype == "func" and self.fmri_derivatives is not None:
            candidates.append(raw_sibling(self.path, rec, "events", ".tsv"))
        for cand in candidates:
            if context.is_file(cand):
                return cand
        return context.inherited(self.path, candidates[-1])  # BIDS inheritance (upper folders)

    def _recording_part(self, rec: Recording, context: _Context) -> dict[str, Any]:
        etype = DATATYPES[rec.datatype][2]
        state = file_state(rec.path)
        meta = recording_metadata(self.path, rec, state, context.cache)
        part: dict[str, Any] = {
            "type": etype,
            "start": np.zeros(1),
            "filepath": context.relative(rec.path),
            "offset": 0.0,
            **meta,
        }
        if rec.datatype == "func":
            part["space"] = space_label(rec.entities)
        else:
            part["bads"] = self._bads(rec, context)
        if "echo" in rec.entities:
            part["echo"] = rec.entities["echo"]
        taken = context.taken()
        for column, value in context.scan_row(rec).items():
            part[f"scan_{column}" if column in taken else column] = value
        return part

    def _bads(self, rec: Recording, context: _Context) -> str:
        own = rec.path.with_name(sibling_name(rec, "channels", ".tsv"))
        path = own if context.is_file(own) else context.inherited(self.path, own)
        if path is None:
            return ""
        if path not in context.bads:
            context.bads[path] = _read_bads(path)
        return context.bads[path]


def _read_bads(path: Path) -> str:
    """The channels marked bad in a ``channels.tsv``, comma-separated."""
    table = read_tsv(path)
    if "name" not in table:
        raise BidsError(f"{path}: channels.tsv has no 'name' column")
    if "status" not in table:
        return ""
    return ",".join(n for n, s in zip(table["name"], table["status"]) if s.strip().lower() == "bad")


def _needs_no_events(rec: Recording) -> bool:
    task = rec.entities.get("task", "")
    return rec.entities.get("sub") == "emptyroom" or task.startswith(_NO_EVENTS_TASKS)

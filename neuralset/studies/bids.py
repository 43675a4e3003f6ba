"""A generic BIDS study: timelines, recordings and typed events from a BIDS folder, metadata only.

:class:`BidsStudy` scans ``sub-*/[ses-*/]<datatype>/`` for recordings (the BIDS file naming rules
decide the entities: subject, session, task, acquisition, run...), and for each recording builds a
data event from its sidecar JSON (``SamplingFrequency`` / ``RepetitionTime``,
``RecordingDuration``; BIDS inheritance from upper folders honoured) without opening the signal.
One timeline per run (``sub-01_ses-1_task-read_run-1``): the recordings of several datatypes of a
run (EEG-fMRI, MEG + EEG) share it. The run's ``*_events.tsv`` become typed events.

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
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import config, register
from ..validation import existing_path, one_of
from .base import Study
from .bids_files import (
    DATATYPES,
    RUN_ENTITIES,
    BidsError,
    Recording,
    datatype_folders,
    inherited_jsons,
    nifti_volumes,
    parse_entities,
    parse_numbers,
    raw_sibling,
    read_tsv,
    relative_path,
    sibling_name,
    space_label,
    stack_columns,
    stim_type,
)
from .headers import MAX_TR

__all__ = ["BidsStudy", "BidsError", "DATATYPES", "parse_entities"]


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
        Type of the event made from every ``events.tsv`` row (``description`` = ``trial_type``,
        ``code`` = integer ``value``); ``""`` makes none.
    require_events
        Fail when a run (other than ``task-rest*``) has no ``events.tsv``.
    language
        ``language`` of text events.
    """

    datatypes: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    fmri_derivatives: str | None = None
    spaces: tuple[str, ...] = ()
    stimulus_columns: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"word": "Word", "stim_file": "auto"}
    )
    trial_event: str = "Stimulus"
    require_events: bool = True
    language: str = ""

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
        if self.fmri_derivatives is not None:
            existing_path(
                self,
                "fmri_derivatives",
                "folder",
                value=self._derivatives_root(),
                fix="give it relative to the BIDS root, e.g. 'derivatives/fmriprep'",
            )

    def _derivatives_root(self) -> Path:
        assert self.fmri_derivatives is not None
        path = Path(self.fmri_derivatives)
        return path if path.is_absolute() else self.path / path

    # -- discovery (file names only) --------------------------------------------------
    def recordings(self) -> list[Recording]:
        """Every recording file of the dataset (cached on the instance; no file opened)."""
        cached = self.__dict__.get("_recordings")
        if cached is None:
            cached = self._scan()
            object.__setattr__(self, "_recordings", cached)
        return cached

    def _scan(self) -> list[Recording]:
        wanted = set(self.datatypes or DATATYPES)
        out: list[Recording] = []
        raw_dt = wanted - {"func"} if self.fmri_derivatives is not None else wanted
        for folder, datatype in datatype_folders(self.path, raw_dt, self.subjects):
            out.extend(self._scan_folder(folder, datatype, derivative=False))
        if self.fmri_derivatives is not None and "func" in wanted:
            for folder, datatype in datatype_folders(
                self._derivatives_root(), {"func"}, self.subjects
            ):
                out.extend(self._scan_folder(folder, datatype, derivative=True))
        seen: dict[tuple[str, str, str], Path] = {}
        for rec in out:
            ident = (
                rec.timeline,
                rec.datatype,
                space_label(rec.entities) + "|" + rec.entities.get("hemi", ""),
            )
            if ident in seen:
                raise BidsError(
                    f"inconsistent run: {seen[ident]} and {rec.path} are two {rec.datatype} recordings "
                    f"of the same run {rec.timeline}; remove one, or select with datatypes/spaces"
                )
            seen[ident] = rec.path
        return sorted(out, key=lambda r: (r.timeline, r.datatype, str(r.path)))

    def _scan_folder(self, folder: Path, datatype: str, *, derivative: bool) -> list[Recording]:
        suffix, exts, _ = DATATYPES[datatype]
        out = []
        for entry in os.scandir(folder):
            ents, suf, ext = parse_entities(entry.name)
            if suf != suffix or ext not in exts or entry.name.startswith("."):
                continue
            if self.tasks and ents.get("task") not in self.tasks:
                continue
            if ents.get("split") not in (None, "01", "1"):
                continue  # MNE reads the following splits of a FIF from the first one
            if derivative:
                if ents.get("desc") != "preproc" or (
                    ext == ".func.gii" and ents.get("hemi") != "L"
                ):
                    continue
                if self.spaces and ents.get("space", "") not in self.spaces:
                    continue
            timeline = "_".join(f"{k}-{ents[k]}" for k in RUN_ENTITIES if k in ents)
            out.append(Recording(Path(entry.path), datatype, ents, timeline))
        return out

    def timelines(self) -> list[str]:
        return sorted({r.timeline for r in self.recordings()})

    # -- one timeline: sidecars, events.tsv, channels.tsv -----------------------------
    def timeline_events(self, timeline: str) -> pd.DataFrame:
        recs = [r for r in self.recordings() if r.timeline == timeline]
        if not recs:
            raise KeyError(f"no timeline {timeline!r} in {self.path}")
        parts = [self._recording_event(r) for r in recs]
        rec_duration = float(parts[0]["duration"][0])
        files: list[Path] = []
        for rec in recs:
            events_file = self._events_file(rec)
            if events_file is None:
                if self.require_events and not rec.entities.get("task", "").startswith("rest"):
                    expected = raw_sibling(self.path, rec, "events", ".tsv")
                    raise BidsError(
                        f"missing events file {expected} for recording {rec.path}; add it, or pass "
                        "require_events=False to read runs without events"
                    )
                continue
            if events_file not in files:
                files.append(events_file)
        for events_file in files:
            parts.extend(self._read_events(events_file, rec_duration))
        table = stack_columns(parts)
        table["timeline"] = timeline
        for key, entity in (
            ("subject", "sub"),
            ("session", "ses"),
            ("task", "task"),
            ("run", "run"),
        ):
            table[key] = recs[0].entities.get(entity, "")
        if len(files) > 1:  # the same events listed by several datatypes of one run
            subset = ("type", "start", "duration", "text", "description", "code", "filepath")
            table = table.drop_duplicates(subset=[c for c in subset if c in table]).reset_index(
                drop=True
            )
        return table

    def _events_file(self, rec: Recording) -> Path | None:
        candidates = [rec.path.with_name(sibling_name(rec, "events", ".tsv"))]
        if rec.datatype == "func" and self.fmri_derivatives is not None:
            candidates.append(raw_sibling(self.path, rec, "events", ".tsv"))
        for cand in candidates:
            if cand.is_file():
                return cand
        return None

    def _recording_event(self, rec: Recording) -> dict[str, Any]:
        etype = DATATYPES[rec.datatype][2]
        row: dict[str, Any] = {
            "type": [etype],
            "start": [0.0],
            "filepath": [relative_path(rec.path, self.path)],
            "offset": [0.0],
        }
        if rec.datatype == "func":
            sidecar = self._sidecar(rec, required=False)
            tr = sidecar.get("RepetitionTime")
            n_vol, header_tr = nifti_volumes(rec.path)
            tr = float(tr) if tr else header_tr
            if not tr or tr <= 0:
                raise BidsError(
                    f"{rec.path}: no RepetitionTime in its sidecar JSON nor in the image header"
                )
            if tr > MAX_TR:
                raise BidsError(
                    f"{rec.path}: a repetition time of {tr:g} s (from the "
                    f"{'sidecar JSON' if sidecar.get('RepetitionTime') else 'image header'}) is "
                    f"not plausible (above {MAX_TR:g} s; milliseconds written as seconds?); set "
                    "RepetitionTime in seconds in the sidecar JSON"
                )
            row.update(
                frequency=[1.0 / tr], duration=[n_vol * tr], space=[space_label(rec.entities)]
            )
            return row
        sidecar = self._sidecar(rec, required=True)
        sfreq = sidecar.get("SamplingFrequency")
        if not isinstance(sfreq, int | float) or sfreq <= 0:
            raise BidsError(
                f"{self._sidecar_path(rec)}: SamplingFrequency missing or not a positive number"
            )
        duration = sidecar.get("RecordingDuration")
        if isinstance(duration, int | float) and duration > 0:
            duration = float(duration) + 1.0 / sfreq  # mne-bids writes the time of the last sample
        else:
            duration = self._duration_from_header(rec)
        row.update(frequency=[float(sfreq)], duration=[duration], bads=[self._bads(rec)])
        return row

    def _sidecar_path(self, rec: Recording) -> Path:
        return rec.path.with_name(sibling_name(rec, DATATYPES[rec.datatype][0], ".json"))

    def _sidecar(self, rec: Recording, *, required: bool) -> dict[str, Any]:
        """The recording's sidecar JSON merged over inherited ones from upper folders."""
        suffix = DATATYPES[rec.datatype][0]
        merged: dict[str, Any] = {}
        found = False
        folder = rec.path.parent
        chain = []
        while True:
            chain.append(folder)
            if folder == self.path or folder.parent == folder or len(chain) > 4:
                break
            folder = folder.parent
        for folder in reversed(chain):  # root first, the file's folder last (it wins)
            for path in inherited_jsons(folder, rec.entities, suffix):
                try:
                    merged.update(json.loads(path.read_text()))
                except (OSError, ValueError) as err:
                    raise BidsError(f"unreadable sidecar {path}: {err}") from None
                found = True
        if required and not found:
            raise BidsError(
                f"missing sidecar {self._sidecar_path(rec)} for recording {rec.path} "
                "(BIDS requires it: it gives SamplingFrequency)"
            )
        return merged

    def _duration_from_header(self, rec: Recording) -> float:
        import mne

        try:
            raw = mne.io.read_raw(rec.path, preload=False, verbose="error")
        except Exception as err:
            raise BidsError(
                f"unreadable recording {rec.path} (no RecordingDuration in its sidecar): {err}"
            ) from None
        return float(raw.n_times / raw.info["sfreq"])

    def _bads(self, rec: Recording) -> str:
        path = rec.path.with_name(sibling_name(rec, "channels", ".tsv"))
        if not path.is_file():
            return ""
        table = read_tsv(path)
        if "name" not in table:
            raise BidsError(f"{path}: channels.tsv has no 'name' column")
        if "status" not in table:
            return ""
        return ",".join(
            n for n, s in zip(table["name"], table["status"]) if s.strip().lower() == "bad"
        )

    def _read_events(self, path: Path, rec_duration: float) -> list[dict[str, Any]]:
        """Column parts (``type``, ``start``, ``duration``, fields) of an events.tsv."""
        table = read_tsv(path)
        if "onset" not in table:
            raise BidsError(
                f"{path}: events.tsv has no 'onset' column (columns: {', '.join(table)})"
            )
        onset = parse_numbers(table["onset"], path, "onset")
        n = len(onset)
        duration = (
            parse_numbers(table["duration"], path, "duration")
            if "duration" in table
            else np.zeros(n)
        )
        keep = ~np.isnan(onset)
        duration = np.nan_to_num(duration, nan=0.0)
        late = keep & (onset > rec_duration + 1e-3)
        if late.any():
            raise BidsError(
                f"inconsistent run: {path} has onsets after the end of its recording ({rec_duration:.3f} s), "
                f"rows {np.flatnonzero(late)[:5].tolist()}; check that the events file belongs to this run"
            )
        parts: list[dict[str, Any]] = []
        if self.trial_event:
            base: dict[str, Any] = {
                "type": [self.trial_event] * int(keep.sum()),
                "start": onset[keep],
                "duration": duration[keep],
            }
            if "trial_type" in table:
                base["description"] = [
                    v if v != "n/a" else "" for v, k in zip(table["trial_type"], keep) if k
                ]
            if "value" in table:
                codes = np.zeros(n, dtype=np.int64)
                for i, v in enumerate(table["value"]):
                    try:
                        f = float(v)
                    except ValueError:
                        continue
                    if f == f and f == round(f):
                        codes[i] = int(f)
                base["code"] = codes[keep]
            parts.append(base)
        for column, etype in self.stimulus_columns.items():
            if column not in table:
                continue
            has = keep & np.array([c not in ("", "n/a") for c in table[column]], dtype=bool)
            if not has.any():
                continue
            values = [c for c, h in zip(table[column], has) if h]
            sub: dict[str, Any] = {"start": onset[has], "duration": duration[has]}
            if etype == "auto" or etype in ("Image", "Audio", "Video"):
                sub["type"] = [
                    stim_type(v, path, column) if etype == "auto" else etype for v in values
                ]
                sub["filepath"] = [f"stimuli/{v}" for v in values]
            else:
                sub["type"] = [etype] * len(values)
                sub["text"] = values
                sub["language"] = [self.language] * len(values)
            parts.append(sub)
        return parts

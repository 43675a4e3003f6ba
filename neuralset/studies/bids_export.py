"""Export any study's events and recordings as a BIDS dataset: :func:`to_bids` (``Study.to_bids``).

Each timeline becomes a BIDS run. Its entities come from the events' ``subject``, ``session``,
``task`` and ``run`` columns when present (a :class:`~neuralset.studies.bids.BidsStudy` or MOABB
study), else from a BIDS-like timeline name (``sub-01_ses-2_run-1``), else the timeline name
made alphanumeric becomes the subject (task ``task``). Recordings:

==========================  =====================================  =========================
event type                  written as                              by
==========================  =====================================  =========================
``Meg``                     FIF (KIT/CTF... files are copied)       ``mne_bids.write_raw_bids``
``Eeg``, ``Ieeg``           BrainVision (``eeg_format="EDF"``)      ``mne_bids.write_raw_bids``
``Emg``                     EDF (labels ``EMG <name>``)             ``mne_bids.write_raw_bids``
``Fnirs``                   the SNIRF file, copied                  ``mne_bids.write_raw_bids``
``Fmri``                    NIfTI + sidecar (``RepetitionTime``)    by hand (nibabel)
==========================  =====================================  =========================

An ``Fmri`` event with a ``space`` is a preprocessed image: it goes to
``derivatives/neuralset/`` with ``space-<label>_desc-preproc`` (read it back with
``BidsStudy(fmri_derivatives="derivatives/neuralset")``). A recording event that covers part of
its file is cropped to its span. Channels listed in a ``bads`` column are marked ``bad`` in
``channels.tsv``. iEEG (EMG) channels that the source file types as EEG are written as sEEG (EMG):
BrainVision and EDF files do not store channel types, ``channels.tsv`` does.

Every other event of the timeline is a row of the run's ``events.tsv``: ``onset`` and
``duration`` (seconds from the recording's start), ``trial_type`` (the ``description``, else the
type), ``value`` (the ``code``), ``neuralset_type`` (the event type: what
``BidsStudy(type_column="neuralset_type")``, the default, reads back), ``stim_file`` for file
events (the file is copied under ``stimuli/``), and one column per other field of the types
(``text``, ``language``, ``sentence``...), described in ``events.json``. ``participants.tsv``
gets the columns that are constant per subject (``age``, ``sex``...).

Not exported: ``Spikes`` (no BIDS datatype; drop them first), and fNIRS recordings that are not
SNIRF files or that the event crops (mne-bids copies SNIRF files, it does not write them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .bids_files import parse_entities
from .file_state import event_paths

__all__ = ["to_bids", "ExportError", "RECORDING_TYPES"]

#: event type -> BIDS datatype of the recordings :func:`to_bids` writes
RECORDING_TYPES = {
    "Meg": "meg",
    "Eeg": "eeg",
    "Ieeg": "ieeg",
    "Emg": "emg",
    "Fnirs": "nirs",
    "Fmri": "func",
}
_NOT_FIELDS = {"type", "start", "duration", "timeline", "filepath", "description", "code"}


class ExportError(ValueError):
    """The events cannot be written as BIDS as they are; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class _Run:
    subject: str
    session: str | None
    task: str
    run: str | None

    def entities(self) -> dict[str, str]:
        out = {"sub": self.subject}
        if self.session:
            out["ses"] = self.session
        out["task"] = self.task
        if self.run:
            out["run"] = self.run
        return out


def _label(value: Any) -> str:
    return re.sub(r"[^a-zA-Z0-9]", "", str(value)) if value is not None else ""


def _run_of(timeline: str, row: pd.Series, default_task: str) -> _Run:
    def cell(name: str) -> str:
        value = row.get(name)
        return _label(value) if isinstance(value, str | int | np.integer) else ""

    if cell("subject"):
        return _Run(cell("subject"), cell("session") or None, cell("task") or default_task,
                    cell("run") or None)  # fmt: skip
    ents, _, _ = parse_entities(timeline + "_x")
    if "sub" in ents:
        return _Run(ents["sub"], ents.get("ses"), ents.get("task", default_task), ents.get("run"))
    return _Run(_label(timeline) or "unknown", None, default_task, None)


def to_bids(
    events: pd.DataFrame,
    root: str | Path,
    *,
    overwrite: bool = False,
    eeg_format: str = "BrainVision",
    task: str = "task",
) -> Path:
    """Write ``events`` (a validated study table, with ``study_root``) as BIDS at ``root``.

    Parameters
    ----------
    events
        The events of a study (``Study.events()``), possibly filtered.
    root
        The BIDS root to write (must not exist, unless ``overwrite``).
    overwrite
        Replace an existing folder.
    eeg_format
        ``"BrainVision"`` or ``"EDF"`` for EEG, iEEG and EMG recordings.
    task
        Task label of timelines that have none.

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    if root.exists():
        if not overwrite:
            raise ExportError(f"{root} exists; pass overwrite=True to replace it")
        shutil.rmtree(root)
    if eeg_format not in ("BrainVision", "EDF"):
        raise ExportError(f"eeg_format: expected 'BrainVision' or 'EDF', got {eeg_format!r}")
    spikes = events["type"] == "Spikes"
    if spikes.any():
        raise ExportError(
            f"{int(spikes.sum())} Spikes events: BIDS has no datatype for sorted spikes; drop "
            "them first (events[events['type'] != 'Spikes'])"
        )
    root.mkdir(parents=True)
    runs = _assign_runs(events, task)
    paths = event_paths(events)
    for timeline, rows in events.groupby("timeline", observed=True).indices.items():
        rows = np.asarray(rows)
        _export_timeline(events, rows, paths, runs[str(timeline)], root, eeg_format)
    _write_description(root)
    _write_participants(events, runs, root)
    return root


def _assign_runs(events: pd.DataFrame, task: str) -> dict[str, _Run]:
    first = events.groupby("timeline", observed=True).head(1)
    runs: dict[str, _Run] = {}
    seen: dict[_Run, str] = {}
    for _, row in first.iterrows():
        timeline = str(row["timeline"])
        run = _run_of(timeline, row, task)
        if run in seen:
            raise ExportError(
                f"timelines {seen[run]!r} and {timeline!r} would be the same BIDS run "
                f"{run.entities()}; give them distinct subject/session/task/run columns"
            )
        seen[run] = timeline
        runs[timeline] = run
    return runs


def _export_timeline(
    events: pd.DataFrame,
    rows: np.ndarray,
    paths: list[Path | None],
    run: _Run,
    root: Path,
    eeg_format: str,
) -> None:
    types = events["type"].astype(str).to_numpy()
    recs = [r for r in rows if types[r] in RECORDING_TYPES]
    others = [r for r in rows if types[r] not in RECORDING_TYPES]
    if not recs:
        raise ExportError(
            f"timeline {events['timeline'].iloc[rows[0]]!r} has no recording event "
            f"({', '.join(RECORDING_TYPES)}): BIDS runs are recordings"
        )
    for r in recs:
        src = paths[r]
        if src is None or not src.exists():
            raise ExportError(
                f"{types[r]} event {r}: its file {src} is not on disk; fetch it first"
            )
        folder = _write_recording(events, r, src, run, root, eeg_format)
        rec_start = float(events["start"].iloc[r])
        _write_events_tsv(events, others, paths, rec_start, folder, run, root)


def _bids_path(run: _Run, datatype: str, root: Path) -> Any:
    from mne_bids import BIDSPath

    return BIDSPath(subject=run.subject, session=run.session, task=run.task, run=run.run,
                    datatype=datatype, root=root)  # fmt: skip


def _write_recording(
    events: pd.DataFrame, row: int, src: Path, run: _Run, root: Path, eeg_format: str
) -> Path:
    """Write one recording; returns the folder its events.tsv goes to."""
    etype = str(events["type"].iloc[row])
    if etype == "Fmri":
        return _write_fmri(events, row, src, run, root)
    import mne
    from mne_bids import write_raw_bids

    edf = src.suffix.lower() in (".edf", ".bdf")
    # EMG channels are typed from their EDF labels ("EMG EMG1"), as EmgExtractor reads them
    infer = {"infer_types": True} if etype == "Emg" and edf else {}
    raw = mne.io.read_raw(src, preload=False, verbose="error", **infer)
    _type_channels(raw, etype)
    offset = float(np.nan_to_num(events["offset"].iloc[row])) if "offset" in events else 0.0
    duration = float(events["duration"].iloc[row])
    whole = offset == 0 and abs(duration * raw.info["sfreq"] - raw.n_times) < 1
    if not whole:
        if etype == "Fnirs":
            raise ExportError(
                f"{src}: mne-bids copies SNIRF files whole; this Fnirs event covers "
                f"[{offset}, {offset + duration}] s of it"
            )
        raw.crop(offset, offset + duration - 1 / raw.info["sfreq"])
    raw.set_annotations(None)
    bads = events["bads"].iloc[row] if "bads" in events.columns else None
    if isinstance(bads, str) and bads:
        raw.info["bads"] = [b for b in bads.split(",") if b in raw.ch_names]
    if raw.info["line_freq"] is None:
        raw.info["line_freq"] = 50.0  # required by mne-bids; not known from the events
    datatype = RECORDING_TYPES[etype]
    fmt = {"Meg": "FIF" if src.suffix == ".fif" else "auto", "Fnirs": "auto", "Emg": "EDF"}.get(
        etype, eeg_format
    )
    if etype == "Emg":  # EDF labels carry the type back ("EMG <name>"), channels.tsv too
        raw.rename_channels(
            {n: f"EMG {n}" for n, t in zip(raw.ch_names, raw.get_channel_types()) if t == "emg"}
        )
    bp = _bids_path(run, datatype, root)
    kwargs: dict[str, Any] = {"emg_placement": "Other"} if etype == "Emg" else {}
    write_raw_bids(raw, bp, format=fmt, allow_preload=fmt != "auto", overwrite=True, verbose="error",
                   **kwargs)  # fmt: skip
    return bp.directory


def _type_channels(raw: Any, etype: str) -> None:
    """Give iEEG / EMG recordings whose file types them as EEG the type mne-bids expects."""
    types = set(raw.get_channel_types())
    wanted = {"Ieeg": ("seeg", {"seeg", "ecog", "dbs"}), "Emg": ("emg", {"emg"})}.get(etype)
    if wanted is None or types & wanted[1]:
        return
    raw.set_channel_types(
        {n: wanted[0] for n, t in zip(raw.ch_names, raw.get_channel_types()) if t == "eeg"},
        verbose="error",
    )


def _write_fmri(events: pd.DataFrame, row: int, src: Path, run: _Run, root: Path) -> Path:
    import nibabel as nib

    space = events["space"].iloc[row] if "space" in events.columns else ""
    space = _label(space) if isinstance(space, str) else ""
    base = root / "derivatives" / "neuralset" if space else root
    folder = base / f"sub-{run.subject}"
    if run.session:
        folder = folder / f"ses-{run.session}"
    folder = folder / "func"
    folder.mkdir(parents=True, exist_ok=True)
    name = "_".join(f"{k}-{v}" for k, v in run.entities().items())
    if space:
        name += f"_space-{space}_desc-preproc"
    img = nib.load(str(src))
    nib.save(img, folder / f"{name}_bold.nii.gz")
    freq = float(events["frequency"].iloc[row])
    sidecar = {"RepetitionTime": 1.0 / freq, "TaskName": run.task}
    (folder / f"{name}_bold.json").write_text(json.dumps(sidecar, indent=1))
    if space:
        _write_description(base, derivative=True)
    return folder


def _field_columns(events: pd.DataFrame, rows: list[int]) -> list[str]:
    from ..events import event_type

    names: list[str] = []
    for etype in sorted(set(events["type"].astype(str).to_numpy()[rows])):
        for f in dataclasses.fields(event_type(etype)):
            if f.name not in _NOT_FIELDS and f.name in events.columns and f.name not in names:
                names.append(f.name)
    return names


def _write_events_tsv(
    events: pd.DataFrame,
    rows: list[int],
    paths: list[Path | None],
    rec_start: float,
    folder: Path,
    run: _Run,
    root: Path,
) -> None:
    name = "_".join(f"{k}-{v}" for k, v in run.entities().items()) + "_events.tsv"
    sub = events.iloc[rows] if rows else events.iloc[:0]
    table = pd.DataFrame(
        {
            "onset": np.round(sub["start"].to_numpy() - rec_start, 9),
            "duration": np.round(sub["duration"].to_numpy(), 9),
        }
    )
    desc = sub["description"] if "description" in sub.columns else pd.Series([None] * len(sub))
    table["trial_type"] = [
        d if isinstance(d, str) and d else t
        for d, t in zip(desc.to_numpy(), sub["type"].astype(str).to_numpy())
    ]
    codes = sub["code"].to_numpy() if "code" in sub.columns else np.full(len(sub), np.nan)
    table["value"] = ["n/a" if pd.isna(c) else str(int(c)) for c in codes]
    table["neuralset_type"] = sub["type"].astype(str).to_numpy()
    table["stim_file"] = [_copy_stimulus(paths[r], root) for r in rows]
    for column in _field_columns(events, rows):
        values = sub[column].to_numpy()
        table[column] = ["n/a" if _missing(v) else v for v in values]
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / name, sep="\t", index=False, na_rep="n/a")
    describe = {
        "neuralset_type": {"Description": "neuralset event type of the row"},
        "stim_file": {"Description": "stimulus file, relative to the stimuli/ folder"},
    }
    (folder / name.replace(".tsv", ".json")).write_text(json.dumps(describe, indent=1))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


def _copy_stimulus(src: Path | None, root: Path) -> str:
    if src is None:
        return "n/a"
    parts = src.parts
    rel = Path(*parts[parts.index("stimuli") + 1 :]) if "stimuli" in parts else Path(src.name)
    dest = root / "stimuli" / rel
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return rel.as_posix()


def _write_description(root: Path, *, derivative: bool = False) -> None:
    path = root / "dataset_description.json"
    if path.exists() and not derivative:
        return
    meta: dict[str, Any] = {"Name": "neuralset export", "BIDSVersion": "1.9.0"}
    if derivative:
        meta.update(DatasetType="derivative", GeneratedBy=[{"Name": "neuralset"}])
    path.write_text(json.dumps(meta, indent=1))


def _write_participants(events: pd.DataFrame, runs: dict[str, _Run], root: Path) -> None:
    """participants.tsv with the columns constant within each subject (age, sex...)."""
    from ..events import event_types
    from .bids import RESERVED_COLUMNS

    fields = {f.name for cls in event_types().values() for f in dataclasses.fields(cls)}
    skip = RESERVED_COLUMNS | fields | {"meas_date", "acq_time"}
    subject = events["timeline"].astype(str).map(lambda t: runs[t].subject)
    candidates = [c for c in events.columns if c not in skip]
    keep = []
    for column in candidates:
        per = events.groupby(subject, observed=True)[column].nunique(dropna=False)
        if (per <= 1).all() and events[column].notna().any():
            keep.append(column)
    table = pd.DataFrame({"participant_id": [f"sub-{s}" for s in sorted(set(subject))]})
    first = events.assign(_sub=subject).groupby("_sub", observed=True).first()
    for column in keep:
        table[column] = [first.loc[s[4:], column] for s in table["participant_id"]]
    path = root / "participants.tsv"
    if path.exists():  # mne-bids wrote one (with its own columns): add ours
        existing = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        extra = [c for c in table.columns if c != "participant_id" and c not in existing.columns]
        table = existing.merge(table[["participant_id", *extra]], on="participant_id", how="left")
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    os.chmod(path, 0o644)

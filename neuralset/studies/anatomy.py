"""Anatomy and empty-room recordings of a BIDS-like study folder, as entity tables.

Discovery reads file names only (nothing is opened). Two tables, keyed by ``subject`` and
``session`` (``""`` for files that apply to every session of a subject):

``anatomy`` (:func:`discover_anatomy`), from ``sub-<label>/[ses-<label>/]anat/``:

==============  ==========================================  ================================
column          file                                        what it is
==============  ==========================================  ================================
``t1w``         ``*_T1w.nii``, ``.nii.gz``, ``.mgz``        T1-weighted MRI (first by name)
``trans``       ``*_trans.fif``                             head<->MRI transform (MNE FIF)
``bem``         ``*_bem.fif``                               BEM surfaces or BEM solution
``atlas``       ``*_dseg.mgz``                              volume parcellation (MRI space)
``atlas_labels`` ``*_dseg.tsv``                             parcel ``index`` -> ``name``
==============  ==========================================  ================================

``empty_room`` (:func:`discover_empty_rooms`): ``sub-<label>/[ses-<label>/]meg/`` files named
``*_task-noise_meg.fif`` or ``*_task-emptyroom_meg.fif``.

``participants`` (:func:`read_participants`, keyed by ``subject`` only): the columns of the
study's ``participants.tsv`` (``participant_id`` ``sub-01`` becomes ``subject`` ``01``; ``n/a``
cells are empty).

A folder with two candidate files for one column (other than ``t1w``) is an error naming both:
nothing is picked silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..entities import EntityError, EntityTable
from .bids_files import datatype_folders, parse_entities, read_tsv, relative_path, text_present

__all__ = [
    "ANATOMY_FILES",
    "discover_anatomy",
    "discover_empty_rooms",
    "study_entities",
    "read_participants",
    "read_atlas_labels",
]

#: anatomy column -> (BIDS suffix, accepted extensions)
ANATOMY_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "t1w": ("T1w", (".nii", ".nii.gz", ".mgz")),
    "trans": ("trans", (".fif",)),
    "bem": ("bem", (".fif",)),
    "atlas": ("dseg", (".mgz",)),
    "atlas_labels": ("dseg", (".tsv",)),
}
_EMPTY_ROOM_TASKS = ("noise", "emptyroom")


def _key(folder: Path) -> tuple[str, str]:
    """(subject, session) of a ``sub-X[/ses-Y]/<datatype>`` folder."""
    parent = folder.parent
    if parent.name.startswith("ses-"):
        return parent.parent.name[4:], parent.name[4:]
    return parent.name[4:], ""


def _pick(folder: Path, candidates: list[str], column: str, first: bool) -> str:
    if not candidates:
        return ""
    candidates = sorted(candidates)
    if len(candidates) > 1 and not first:
        raise EntityError(
            f"{folder}: several files for the {column!r} entity ({', '.join(candidates)}); "
            "keep one per folder (move the others out of the BIDS tree)"
        )
    return candidates[0]


def discover_anatomy(root: str | Path) -> EntityTable:
    """The ``anatomy`` entity table of the study at ``root`` (see the module docstring)."""
    root = Path(root)
    rows = []
    for folder, _ in datatype_folders(root, {"anat"}, ()):
        found: dict[str, list[str]] = {c: [] for c in ANATOMY_FILES}
        for entry in os.scandir(folder):
            if not entry.is_file():
                continue
            _, suffix, ext = parse_entities(entry.name)
            for column, (want, exts) in ANATOMY_FILES.items():
                if suffix == want and ext in exts:
                    found[column].append(entry.name)
        subject, session = _key(folder)
        row = {"subject": subject, "session": session}
        for column, names in found.items():
            name = _pick(folder, names, column, first=column == "t1w")
            row[column] = relative_path(folder / name, root) if name else ""
        if any(row[c] for c in ANATOMY_FILES):
            rows.append(row)
    frame = pd.DataFrame(rows, columns=["subject", "session", *ANATOMY_FILES])
    return EntityTable("anatomy", frame, files=tuple(ANATOMY_FILES), root=str(root.resolve()))


def discover_empty_rooms(root: str | Path) -> EntityTable:
    """The ``empty_room`` entity table of the study at ``root`` (see the module docstring)."""
    root = Path(root)
    rows = []
    for folder, _ in datatype_folders(root, {"meg"}, ()):
        names = []
        for entry in os.scandir(folder):
            ents, suffix, ext = parse_entities(entry.name)
            if suffix == "meg" and ext == ".fif" and ents.get("task") in _EMPTY_ROOM_TASKS:
                if "split" in ents and ents["split"] not in ("01", "1"):
                    continue  # later parts of a split file are read with the first
                names.append(entry.name)
        name = _pick(folder, names, "empty_room", first=False)
        if name:
            subject, session = _key(folder)
            rows.append(
                {
                    "subject": subject,
                    "session": session,
                    "empty_room": relative_path(folder / name, root),
                }
            )
    frame = pd.DataFrame(rows, columns=["subject", "session", "empty_room"])
    return EntityTable("empty_room", frame, files=("empty_room",), root=str(root.resolve()))


def read_participants(root: str | Path) -> EntityTable:
    """The ``participants`` entity table of ``root/participants.tsv`` (empty when absent).

    Raises
    ------
    EntityError
        When the file has no ``participant_id`` column.
    """
    path = Path(root) / "participants.tsv"
    if not text_present(path):
        return EntityTable("participants", pd.DataFrame({"subject": []}), link=("subject",))
    table = read_tsv(path)
    if "participant_id" not in table:
        raise EntityError(
            f"{path}: a participants.tsv needs a 'participant_id' column (found: "
            f"{', '.join(table)})"
        )
    columns = {
        "subject": [p[4:] if p.startswith("sub-") else p for p in table.pop("participant_id")]
    }
    columns.update({k: ["" if v == "n/a" else v for v in vals] for k, vals in table.items()})
    return EntityTable(
        "participants", pd.DataFrame(columns), link=("subject",), root=str(Path(root).resolve())
    )


def study_entities(root: str | Path) -> dict[str, EntityTable]:
    """Every entity table of the study at ``root``: ``anatomy``, ``empty_room``, ``participants``."""
    return {
        "anatomy": discover_anatomy(root),
        "empty_room": discover_empty_rooms(root),
        "participants": read_participants(root),
    }


def read_atlas_labels(path: str | Path) -> dict[str, int]:
    """Parcel name -> value of a BIDS ``*_dseg.tsv`` (columns ``index`` and ``name``).

    Raises
    ------
    EntityError
        When a column is missing, an index is not an integer or a name is given twice (naming
        the file).
    """
    table = read_tsv(Path(path))
    for column in ("index", "name"):
        if column not in table:
            raise EntityError(
                f"{path}: a dseg.tsv needs the columns 'index' and 'name' (found: "
                f"{', '.join(table)})"
            )
    out: dict[str, int] = {}
    for index, name in zip(table["index"], table["name"]):
        if name in out:
            raise EntityError(
                f"{path}: parcel name {name!r} is given twice (indexes {out[name]} and "
                f"{index}); give each parcel its own name"
            )
        try:
            out[name] = int(index)
        except ValueError:
            raise EntityError(
                f"{path}: index {index!r} of parcel {name!r} is not an integer"
            ) from None
    return out

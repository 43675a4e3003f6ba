"""BIDS file-level helpers of :mod:`neuralset.studies.bids`: names, entities, sidecars, TSV files.

Everything here works from file names and small text files (sidecar JSON, TSV); the only binary
read is a NIfTI/GIfTI header (to count volumes).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "BidsError",
    "DATATYPES",
    "RUN_ENTITIES",
    "Recording",
    "parse_entities",
    "stack_columns",
    "parse_numbers",
    "datatype_folders",
    "sibling_name",
    "raw_sibling",
    "inherited_jsons",
    "read_tsv",
    "nifti_volumes",
    "space_label",
    "relative_path",
    "stim_type",
    "STIM_TYPES",
]


class BidsError(ValueError):
    """The BIDS dataset is malformed; the message names the file and the fix."""


#: datatype -> (suffix, accepted extensions, event type)
DATATYPES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "meg": ("meg", (".fif", ".ds", ".con", ".sqd"), "Meg"),
    "eeg": ("eeg", (".vhdr", ".edf", ".bdf", ".set"), "Eeg"),
    "ieeg": ("ieeg", (".vhdr", ".edf", ".set", ".nwb", ".mefd"), "Ieeg"),
    "emg": ("emg", (".vhdr", ".edf", ".bdf"), "Emg"),
    "nirs": ("nirs", (".snirf",), "Fnirs"),
    "func": ("bold", (".nii", ".nii.gz", ".func.gii"), "Fmri"),
}
#: entities that identify a run (and so a timeline), in BIDS order
RUN_ENTITIES = ("sub", "ses", "task", "acq", "run")
_STIM_TYPES = {
    **{e: "Image" for e in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")},
    **{e: "Audio" for e in (".wav", ".flac", ".mp3", ".ogg")},
    **{e: "Video" for e in (".mp4", ".avi", ".mov", ".mkv", ".webm")},
}
#: stimulus file extension -> event type
STIM_TYPES = _STIM_TYPES
_ENTITY = re.compile(r"([a-zA-Z]+)-([a-zA-Z0-9]+)")


def parse_entities(name: str) -> tuple[dict[str, str], str, str]:
    """Entities, suffix and extension of a BIDS file name.

    Examples
    --------
    >>> parse_entities("sub-01_task-read_run-2_eeg.vhdr")
    ({'sub': '01', 'task': 'read', 'run': '2'}, 'eeg', '.vhdr')
    """
    stem, ext = name, ""
    for multi in (".nii.gz", ".func.gii", ".tsv.gz", ".dtseries.nii"):
        if name.endswith(multi):
            stem, ext = name[: -len(multi)], multi
            break
    else:
        dot = name.find(".")
        if dot >= 0:
            stem, ext = name[:dot], name[dot:]
    parts = stem.split("_")
    entities: dict[str, str] = {}
    suffix = ""
    for part in parts:
        m = _ENTITY.fullmatch(part)
        if m:
            entities[m.group(1)] = m.group(2)
        else:
            suffix = part
    return entities, suffix, ext


@dataclasses.dataclass(frozen=True)
class Recording:
    """A recording file found by discovery: its datatype, entities and timeline name."""

    path: Path
    datatype: str
    entities: dict[str, str]
    timeline: str


def stack_columns(parts: list[dict[str, Any]]) -> pd.DataFrame:
    """One DataFrame from column parts, in one pass (no per-part DataFrame).

    Each part maps column -> array, list or scalar (broadcast to the part's length, given by its
    ``start``). A column missing from a part is NaN (numeric columns) or None.
    """
    sizes = [len(p["start"]) for p in parts]
    columns = list(dict.fromkeys(c for p in parts for c in p))
    data: dict[str, Any] = {}
    for col in columns:
        present = [p[col] for p in parts if col in p]
        if all(_is_numeric(v) for v in present):
            data[col] = np.concatenate(
                [
                    _numeric(p[col], n) if col in p else np.full(n, np.nan)
                    for p, n in zip(parts, sizes)
                ]
            )
        elif not any(isinstance(v, list | np.ndarray) for v in present):
            # one value per part (subject, task, duration_source...): repeated in C
            scalars = np.empty(len(parts), dtype=object)
            scalars[:] = [p.get(col) for p in parts]
            data[col] = np.repeat(scalars, sizes)
        else:
            chunks = []
            for p, n in zip(parts, sizes):
                value = p.get(col)
                if isinstance(value, np.ndarray):
                    chunks.append(value.astype(object, copy=False))
                elif isinstance(value, list):
                    chunk = np.empty(len(value), dtype=object)
                    chunk[:] = value
                    chunks.append(chunk)
                else:
                    chunk = np.empty(n, dtype=object)
                    chunk[:] = [value] * n if isinstance(value, tuple) else value
                    chunks.append(chunk)
            data[col] = np.concatenate(chunks) if chunks else np.empty(0, dtype=object)
    return pd.DataFrame(data)


def _numeric(value: Any, n: int) -> np.ndarray:
    if isinstance(value, np.ndarray | list):
        return np.asarray(value, dtype=float)
    return np.full(n, np.nan if value is None else float(value))


def _is_numeric(values: Any) -> bool:
    if isinstance(values, np.ndarray):
        return values.dtype.kind in "iuf"
    if isinstance(values, list):
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    return isinstance(values, int | float) and not isinstance(values, bool)


def parse_numbers(cells: list[str], path: Path, column: str) -> np.ndarray:
    """A TSV column of seconds as float64 (``n/a`` and empty cells -> NaN)."""
    try:
        return np.array(cells, dtype=np.float64)  # the fast path: every cell is a number
    except ValueError:
        pass
    try:
        return np.array([np.nan if c in ("n/a", "") else float(c) for c in cells], dtype=np.float64)
    except ValueError as err:
        raise BidsError(
            f"{path}: column {column!r} must hold numbers (seconds) or n/a: {err}"
        ) from None


def datatype_folders(
    root: Path, datatypes: set[str], subjects: tuple[str, ...]
) -> list[tuple[Path, str]]:
    out = []
    try:
        subs = sorted(
            (e for e in os.scandir(root) if e.name.startswith("sub-") and e.is_dir()),
            key=lambda e: e.name,
        )
    except OSError as err:
        raise BidsError(f"cannot list {root}: {err}") from None
    for sub in subs:
        if subjects and sub.name[4:] not in subjects:
            continue
        children = list(os.scandir(sub.path))
        folders = [Path(sub.path)] + [
            Path(e.path) for e in children if e.is_dir() and e.name.startswith("ses-")
        ]
        for folder in folders:
            for dt in sorted(datatypes):
                candidate = folder / dt
                if candidate.is_dir():
                    out.append((candidate, dt))
    return out


def sibling_name(rec: Recording, suffix: str, ext: str) -> str:
    ents = rec.entities
    if suffix in ("events", "channels"):
        drop = {"space", "desc", "res", "den", "hemi", "split"}
        if suffix == "events":
            drop |= {"rec", "echo", "part"}
        ents = {k: v for k, v in ents.items() if k not in drop}
    else:
        ents = {k: v for k, v in ents.items() if k != "split"}
    return "_".join(f"{k}-{v}" for k, v in ents.items()) + f"_{suffix}{ext}"


def raw_sibling(root: Path, rec: Recording, suffix: str, ext: str) -> Path:
    """Where a raw-data file of ``rec``'s run lives (under the BIDS root, not a derivative)."""
    ents = rec.entities
    folder = root / f"sub-{ents['sub']}"
    if "ses" in ents:
        folder = folder / f"ses-{ents['ses']}"
    return folder / rec.datatype / sibling_name(rec, suffix, ext)


def inherited_jsons(
    folder: Path,
    entities: dict[str, str],
    suffix: str,
    cache: dict[Path, dict[str, list[tuple[dict[str, str], Path]]]] | None = None,
) -> list[Path]:
    """JSON files of ``folder`` that apply to a file with ``entities`` (fewest entities first).

    ``cache`` (folder -> suffix -> parsed JSON names) saves listing a folder again for each
    recording.
    """
    listing = cache.get(folder) if cache is not None else None
    if listing is None:
        try:
            names = [n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")]
        except OSError:
            names = []
        listing = {}
        for name in names:
            ents, suf, ext = parse_entities(name)
            if ext == ".json":
                listing.setdefault(suf, []).append((ents, folder / name))
        if cache is not None:
            cache[folder] = listing
    hits = [
        (len(ents), path)
        for ents, path in listing.get(suffix, ())
        if all(entities.get(k) == v for k, v in ents.items())
    ]
    return [p for _, p in sorted(hits)]


def read_tsv(path: Path) -> dict[str, list[str]]:
    """A TSV file as columns of strings (header row first; cells kept verbatim)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise BidsError(f"unreadable TSV file {path}: {err}") from None
    if not rows:
        raise BidsError(f"unreadable TSV file {path}: empty (a header row is required)")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if r]
    width = len(header)
    if body and set(map(len, body)) != {width}:
        bad = [i + 2 for i, r in enumerate(body) if len(r) != width]
        raise BidsError(f"unreadable TSV file {path}: lines {bad[:5]} do not have {width} columns")
    if not body:
        return {name: [] for name in header}
    return {name: list(col) for name, col in zip(header, zip(*body))}


def nifti_volumes(path: Path) -> tuple[int, float]:
    """Number of volumes and header TR (s) of a 4D NIfTI / GIfTI run (header only)."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as err:
        raise BidsError(f"unreadable fMRI file {path}: {err}") from None
    if path.name.endswith(".gii"):
        return len(img.darrays), 0.0  # type: ignore[attr-defined]
    shape = img.shape
    if len(shape) != 4:
        raise BidsError(f"{path}: expected a 4D BOLD image, got shape {shape}")
    from .headers import nifti_tr

    return int(shape[3]), nifti_tr(img.header)[0]  # in seconds, whatever the header's unit


def space_label(entities: dict[str, str]) -> str:
    """The space label of an fMRI run: ``space`` plus ``res``/``den`` when given (``T1w``, ``MNI_res-2``)."""
    out = entities.get("space", "")
    for key in ("res", "den"):
        if key in entities:
            out += f"_{key}-{entities[key]}"
    return out


def relative_path(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def stim_type(value: str, path: Path, column: str) -> str:
    ext = os.path.splitext(value)[1].lower()
    if ext not in _STIM_TYPES:
        raise BidsError(
            f"{path}: cannot tell the stimulus type of {value!r} in column {column!r} from its extension; "
            f"map the column explicitly, e.g. stimulus_columns={{'{column}': 'Image'}}"
        )
    return _STIM_TYPES[ext]

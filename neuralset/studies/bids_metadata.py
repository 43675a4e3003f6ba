"""What a BIDS dataset says about its recordings and participants, read from text files only.

Used by :class:`~neuralset.studies.bids.BidsStudy`:

* :func:`recording_metadata` - sampling rate and duration of a recording from its sidecar JSON
  (with BIDS inheritance), from the file header when the file is present and the sidecar is
  silent, or an explicit *unknown* when neither can say (see :data:`UNKNOWN`);
* :func:`participants` - ``participants.tsv`` as one row of values per subject;
* :func:`scans` - ``*_scans.tsv`` (``acq_time`` and any other column) per recording file.

Unknown values
--------------
A recording whose file is not fetched yet and whose sidecar gives no ``RecordingDuration`` (or,
for fMRI, whose number of volumes is only in the image header) gets ``duration = NaN`` and
``duration_source = "unknown"``; a rate that nothing gives is ``frequency = NaN``. Never 0: a
0-duration recording would silently give no windows. The events table accepts NaN durations only
on such rows, and anything that needs the duration (segments, extractors) refuses them with a
message that says how to fetch the files. Once the files are fetched, the study reads the values
from the headers (``duration_source = "header"``). Known values say where they came from:
``"sidecar"`` (``RecordingDuration``) or ``"header"``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .bids_files import (
    DATATYPES,
    BidsError,
    Recording,
    inherited_jsons,
    nifti_volumes,
    not_fetched,
    read_tsv,
    sibling_name,
    text_present,
)
from .file_state import FileState

__all__ = [
    "UNKNOWN",
    "DURATION_SOURCES",
    "recording_metadata",
    "sidecar",
    "sidecar_path",
    "participants",
    "scans",
    "cell_values",
    "MetadataCache",
]

#: ``duration_source`` of a recording whose duration nothing on disk can give yet
UNKNOWN = "unknown"
#: every value ``duration_source`` takes
DURATION_SOURCES = ("sidecar", "header", UNKNOWN)


@dataclasses.dataclass
class MetadataCache:
    """Folder listings, parsed JSON files and merged sidecars, shared by the recordings of one
    discovery (each folder listed once, each JSON read once, each inheritance chain merged once)."""

    listings: dict[Path, dict[str, Any]] = dataclasses.field(default_factory=dict)
    jsons: dict[Path, dict[str, Any]] = dataclasses.field(default_factory=dict)
    chains: dict[tuple[str, str], tuple[Path, ...]] = dataclasses.field(default_factory=dict)
    merged: dict[tuple[Path, ...], dict[str, Any]] = dataclasses.field(default_factory=dict)
    named: dict[tuple[str, str, str], tuple[str, ...]] = dataclasses.field(default_factory=dict)
    matched: dict[tuple[Any, ...], tuple[Path, ...]] = dataclasses.field(default_factory=dict)


def sidecar_path(rec: Recording) -> Path:
    """The recording's own sidecar JSON (which may not exist: values can be inherited)."""
    return rec.path.with_name(sibling_name(rec, DATATYPES[rec.datatype][0], ".json"))


def sidecar(
    root: Path, rec: Recording, *, required: bool, cache: MetadataCache | None = None
) -> dict[str, Any]:
    """The recording's sidecar JSON merged over inherited ones from upper folders."""
    return dict(_sidecar(root, rec, required, cache if cache is not None else MetadataCache()))


def _sidecar(root: Path, rec: Recording, required: bool, cache: MetadataCache) -> dict[str, Any]:
    """:func:`sidecar`, the merged dict shared by the recordings with the same JSON files."""
    paths = _sidecar_paths(root, rec, DATATYPES[rec.datatype][0], cache)
    if required and not paths:
        raise BidsError(
            f"missing sidecar {sidecar_path(rec)} for recording {rec.path} "
            "(BIDS requires it: it gives SamplingFrequency)"
        )
    merged = cache.merged.get(paths)
    if merged is None:
        merged = {}
        for path in paths:
            merged.update(_json(path, cache))
        cache.merged[paths] = merged
    return merged


def _sidecar_paths(
    root: Path, rec: Recording, suffix: str, cache: MetadataCache
) -> tuple[Path, ...]:
    """The sidecars of ``rec``, root first (found once per folder and entities they name)."""
    where = (str(root), os.path.dirname(rec.path), suffix)
    keys = cache.named.get(where)  # the entities the folders' sidecars name
    if keys is not None:
        found = cache.matched.get((where, tuple(rec.entities.get(k) for k in keys)))
        if found is not None:
            return found
    chain = _chain(root, rec.path, cache)
    found = tuple(
        path
        for folder in chain  # root first: the file's folder wins
        for path in inherited_jsons(folder, rec.entities, suffix, cache.listings)
    )
    if keys is None:
        named = {k for f in chain for ents, _ in cache.listings[f].get(suffix, ()) for k in ents}
        keys = cache.named[where] = tuple(sorted(named))
    cache.matched[(where, tuple(rec.entities.get(k) for k in keys))] = found
    return found


def _chain(root: Path, path: Path, cache: MetadataCache) -> tuple[Path, ...]:
    """The folders whose sidecars ``path`` inherits, ``root`` (or 4 levels up) first.

    Cached by the folder's name: the same :class:`Path` objects come back each time (their
    hashes computed once for the listings cache).
    """
    key = (str(root), os.path.dirname(path))
    chain = cache.chains.get(key)
    if chain is None:
        found, folder = [], path.parent
        while True:
            found.append(folder)
            if folder == root or folder.parent == folder or len(found) > 4:
                break
            folder = folder.parent
        chain = cache.chains[key] = tuple(reversed(found))
    return chain


def _json(path: Path, cache: MetadataCache) -> dict[str, Any]:
    content = cache.jsons.get(path)
    if content is None:
        try:
            content = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as err:
            if os.path.islink(path) and not path.exists() or _pointer_text(path):
                raise BidsError(not_fetched(path)) from None
            raise BidsError(f"unreadable sidecar {path}: {err}") from None
        if not isinstance(content, dict):
            raise BidsError(f"unreadable sidecar {path}: expected a JSON object")
        cache.jsons[path] = content
    return content


def _pointer_text(path: Path) -> bool:
    """Whether a sidecar that is no JSON is a git-annex pointer (unlocked or flattened link)."""
    from .bids_files import is_pointer_text

    try:
        return is_pointer_text(path.read_text(encoding="utf-8", errors="replace")[:1024])
    except OSError:
        return False


def recording_metadata(
    root: Path, rec: Recording, state: FileState, cache: MetadataCache | None = None
) -> dict[str, Any]:
    """``frequency``, ``duration`` and ``duration_source`` of a recording (see module doc)."""
    cache = cache if cache is not None else MetadataCache()
    if rec.datatype == "func":
        meta = _sidecar(root, rec, False, cache)
        tr = _positive_float(meta.get("RepetitionTime")) or math.nan
        if tr > 0:
            _plausible_tr(rec.path, tr, "sidecar JSON")
        if not state.present:
            return {"frequency": 1.0 / tr, "duration": math.nan, "duration_source": UNKNOWN}
        n_vol, header_tr = nifti_volumes(rec.path)
        from_sidecar = tr > 0
        if not from_sidecar:
            tr = header_tr
        if not tr or tr <= 0:
            raise BidsError(
                f"{rec.path}: no RepetitionTime in its sidecar JSON nor in the image header"
            )
        _plausible_tr(rec.path, tr, "sidecar JSON" if from_sidecar else "image header")
        return {"frequency": 1.0 / tr, "duration": n_vol * tr, "duration_source": "header"}
    meta = _sidecar(root, rec, True, cache)
    sfreq = _positive_float(meta.get("SamplingFrequency"))
    if sfreq is None:
        raise BidsError(f"{sidecar_path(rec)}: SamplingFrequency missing or not a positive number")
    duration = _positive_float(meta.get("RecordingDuration"))
    if duration is not None:
        # mne-bids writes the time of the last sample; the recording lasts one sample more
        return {
            "frequency": sfreq,
            "duration": duration + 1.0 / sfreq,
            "duration_source": "sidecar",
        }
    if not state.present:
        return {"frequency": sfreq, "duration": math.nan, "duration_source": UNKNOWN}
    return {"frequency": sfreq, "duration": _header_duration(rec), "duration_source": "header"}


def _plausible_tr(path: Path, tr: float, where: str) -> None:
    from .headers import MAX_TR

    if tr > MAX_TR:
        raise BidsError(
            f"{path}: a repetition time of {tr:g} s (from the {where}) is not plausible (above "
            f"{MAX_TR:g} s; milliseconds written as seconds?); set RepetitionTime in seconds in "
            "the sidecar JSON"
        )


def _positive_float(value: Any) -> float | None:
    """``value`` as a float when it is a positive number (JSON), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _header_duration(rec: Recording) -> float:
    import mne

    try:
        raw = mne.io.read_raw(rec.path, preload=False, verbose="error")
    except Exception as err:
        raise BidsError(
            f"unreadable recording {rec.path} (no RecordingDuration in its sidecar): {err}"
        ) from None
    return float(raw.n_times / raw.info["sfreq"])


def cell_values(cells: list[str] | np.ndarray) -> list[Any] | np.ndarray:
    """TSV cells as floats when every non-``n/a`` cell is a number, else strings (``n/a`` -> None)."""
    values: list[Any] = [None if c in ("n/a", "") else c for c in cells]
    try:
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    except ValueError:
        return values


def participants(root: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Columns and per-subject values (subject label without ``sub-``) of ``participants.tsv``.

    A dataset without the file gives no columns. Values are floats for numeric columns, strings
    otherwise, None for ``n/a``.
    """
    path = root / "participants.tsv"
    if not text_present(path):
        return [], {}
    table = read_tsv(path)
    if "participant_id" not in table:
        raise BidsError(
            f"{path}: participants.tsv has no 'participant_id' column (columns: "
            f"{', '.join(table)}); BIDS requires it as the first column"
        )
    ids = [p[4:] if p.startswith("sub-") else p for p in table["participant_id"]]
    columns = [c for c in table if c != "participant_id"]
    parsed = {c: cell_values(table[c]) for c in columns}
    out: dict[str, dict[str, Any]] = {}
    for i, sub in enumerate(ids):
        out[sub] = {c: _item(parsed[c][i]) for c in columns}
    return columns, out


def scans(folder: Path, entities: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Rows of the ``_scans.tsv`` of a subject/session folder, by ``filename`` (relative path)."""
    name = f"sub-{entities['sub']}" + (f"_ses-{entities['ses']}" if "ses" in entities else "")
    path = folder / f"{name}_scans.tsv"
    if not text_present(path):
        return {}
    table = read_tsv(path)
    if "filename" not in table:
        raise BidsError(f"{path}: scans.tsv has no 'filename' column")
    columns = [c for c in table if c != "filename"]
    parsed = {c: cell_values(table[c]) if c != "acq_time" else table[c] for c in columns}
    return {
        fname: {c: _item(parsed[c][i]) for c in columns}
        for i, fname in enumerate(table["filename"])
    }


def _item(value: Any) -> Any:
    if isinstance(value, np.floating):
        return float(value)
    if value == "n/a":
        return None
    return value

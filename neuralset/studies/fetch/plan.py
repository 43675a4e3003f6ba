"""Which files a selection of events needs, and which of them are not on disk yet.

:func:`needed_files` lists, for the data events of a selection (an events table, or the events a
:class:`~neuralset.segments.Segments` overlaps), the recording files with their companions
(FIF splits, BrainVision ``.eeg``/``.vmrk``, EEGLAB ``.fdt``, CTF ``.ds`` content), the BIDS
sidecars of each recording's run (``_channels.tsv``, ``_events.tsv``, ``_coordsystem.json``...
in the same folder) and the stimulus files the events reference (``Image``, ``Audio``, ``Video``
events are data events too). :func:`check_present` is what ``Extractor.prepare`` runs before any
work: it raises :class:`MissingFilesError` naming the files and how to fetch them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..file_state import FileState, companion_files, event_paths, file_state

if TYPE_CHECKING:
    from ...segments import Segments

__all__ = [
    "NeededFile",
    "MissingFilesError",
    "needed_files",
    "selected_rows",
    "check_present",
    "summary",
    "format_bytes",
]


class MissingFilesError(FileNotFoundError):
    """Files the events need are not on disk (not fetched yet); the message says how to get them."""


@dataclasses.dataclass(frozen=True)
class NeededFile:
    """A file a selection needs: where it is, its state, why it is needed."""

    path: Path
    state: FileState
    reason: str  # "recording", "companion", "sidecar" or "stimulus"
    of: Path | None = None  # the recording a companion or sidecar belongs to

    @property
    def present(self) -> bool:
        return self.state.present


def selected_rows(selection: pd.DataFrame | Segments) -> tuple[pd.DataFrame, np.ndarray]:
    """The events table and the rows of its data events that the selection needs.

    For an events table: every row with a ``filepath``. For segments: the data events that
    overlap at least one segment (the recordings the windows are cut from, the stimuli shown
    during them).
    """
    if isinstance(selection, pd.DataFrame):
        events = selection
        if "filepath" not in events.columns:
            return events, np.zeros(0, dtype=np.int64)
        return events, np.flatnonzero(events["filepath"].notna().to_numpy())
    events = selection.events
    if "filepath" not in events.columns or not len(selection):
        return events, np.zeros(0, dtype=np.int64)
    with_file = events["filepath"].notna().to_numpy()
    types = sorted(set(events["type"].astype(str).to_numpy()[with_file]))
    rows: list[np.ndarray] = []
    for etype in types:
        _, found = selection.index.overlapping(
            selection.timeline, selection.start, selection.stop, etype
        )
        rows.append(found)
    if not rows:
        return events, np.zeros(0, dtype=np.int64)
    return events, np.unique(np.concatenate(rows))


def needed_files(selection: pd.DataFrame | Segments, *, sidecars: bool = True) -> list[NeededFile]:
    """Every file the selection needs, each once, recordings first (see the module docstring)."""
    events, rows = selected_rows(selection)
    types = events["type"].astype(str).to_numpy()
    stimulus = {"Image", "Audio", "Video"}
    out: dict[Path, NeededFile] = {}
    listings: dict[Path, list[str]] = {}

    def add(path: Path, reason: str, of: Path | None = None) -> None:
        if path not in out:
            out[path] = NeededFile(path, file_state(path), reason, of)

    for row, path in zip(rows, event_paths(events, rows)):
        if path is None:
            continue
        is_stim = types[row] in stimulus
        add(path, "stimulus" if is_stim else "recording")
        if is_stim:
            continue
        for companion in companion_files(path, listings):
            add(companion, "companion", path)
        if sidecars:
            for sidecar in _run_sidecars(path):
                add(sidecar, "sidecar", path)
    return list(out.values())


def _run_sidecars(path: Path) -> list[Path]:
    """Files of the recording's folder that belong to its run (BIDS entities before the suffix)."""
    name = path.name
    if "_" not in name:
        return []
    prefix = name[: name.rfind("_")]
    keys = [prefix]
    # channels/events files drop some entities (split, desc...); match the run entities only
    run = "_".join(p for p in prefix.split("_") if not p.startswith(("split-", "desc-", "space-")))
    keys.append(run)
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    found = []
    for other in names:
        if other == name or other.startswith("."):
            continue
        if not other.endswith((".json", ".tsv", ".tsv.gz", ".txt", ".pos", ".elp", ".hsp")):
            continue
        if any(other.startswith(k + "_") for k in keys) or _session_level(other, run):
            found.append(path.parent / other)
    return sorted(found)


def _session_level(other: str, run: str) -> bool:
    """``sub-01_ses-1_coordsystem.json``-like files: entities a prefix of the run's."""
    stem = other[: other.rfind("_")] if "_" in other else other
    return bool(stem) and (run + "_").startswith(stem + "_") and stem.startswith("sub-")


def summary(files: Iterable[NeededFile]) -> dict[str, float]:
    """Counts and bytes: recordings, present recordings, files and bytes still to fetch."""
    files = list(files)
    recs = [f for f in files if f.reason == "recording"]
    todo = [f for f in files if not f.present]
    incomplete = {f.of for f in todo if f.reason == "companion"}
    unknown = sum(1 for f in todo if f.state.size is None)
    return {
        "recordings": len(recs),
        "recordings_present": sum(f.present and f.path not in incomplete for f in recs),
        "files": len(files),
        "files_missing": len(todo),
        "bytes_to_fetch": float(sum(f.state.size or 0 for f in todo)),
        "sizes_unknown": unknown,
    }


def format_bytes(n: float) -> str:
    """``1.9 TB``-style size (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def check_present(events: pd.DataFrame, event_type: str, *, what: str = "") -> None:
    """Raise :class:`MissingFilesError` when data events of ``event_type`` lack their files.

    Run by ``Extractor.prepare`` before any work. The message names up to 5 missing files, the
    total to fetch, and the commands that fetch them.
    """
    if "filepath" not in events.columns or not len(events):
        return
    rows = np.flatnonzero(((events["type"] == event_type) & events["filepath"].notna()).to_numpy())
    if not len(rows):
        return
    files = needed_files(events.iloc[rows], sidecars=False)
    # pointers to content not fetched yet; a file that does not exist at all is left to the
    # extractor's own preflight, which names the event that refers to it
    missing = [f for f in files if f.state.exists and not f.present]
    if not missing:
        return
    raise MissingFilesError(missing_message(missing, events, what or event_type))


def missing_message(missing: list[NeededFile], events: pd.DataFrame, what: str) -> str:
    shown = ", ".join(str(f.path) for f in missing[:5])
    more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
    size = format_bytes(sum(f.state.size or 0 for f in missing))
    unknown = sum(f.state.size is None for f in missing)
    if unknown:
        size += f" and {unknown} files of unknown size"
    annexed = any(f.state.key is not None for f in missing)
    root = ""
    if "study_root" in events.columns and len(events):
        root = str(events["study_root"].iloc[0])
    how = "fetch them with study.fetch(events) (or `neuralset fetch CONFIG`)" + (
        f", or `datalad get` / `git annex get` in {root}" if annexed and root else ""
    )
    return (
        f"{what}: {len(missing)} files are not on disk yet ({size} to fetch): {shown}{more}; {how}"
    )

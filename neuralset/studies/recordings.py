"""A study over any recording files MNE reads, with their annotations as typed events.

:class:`RecordingsStudy` takes a folder and glob patterns (``"**/*.edf"``, ``"sub-*/*.vhdr"``,
or plain file names) and makes one timeline per recording file: a data event whose duration and
rate come from the file header (``mne.io.read_raw(preload=False)``), plus the file's annotations
(EDF+ TAL, FIF annotations, BrainVision markers, EEGLAB events) and, optionally, the events coded
in its stim channel (``mne.find_events``), typed through a declared
:class:`~neuralset.studies.annotations.EventMap` per description.

The timeline of a file is its path relative to the study folder (``edf/test.bdf``).
Recognised extensions: :data:`RECORDING_EXTENSIONS` (a CTF ``.ds`` folder counts as a file). The
continuation parts of split FIF files (``raw-1.fif``, ``_split-02_``) are read with their first
part, and companions (BrainVision ``.eeg``/``.vmrk``, EEGLAB ``.fdt``) are not recordings of their
own. A file that is a git-annex pointer not fetched yet gives a data event of unknown duration
(``duration_source = "unknown"``) and no annotation events until it is fetched.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from ..hashing import KEY_EXCLUDED, KEY_UNLESS_DEFAULT, structural_key
from ..memo import Slot, frozen_memo
from ..readers import ReaderOptions, is_split_part, open_raw, reader_hint
from ..validation import at_least, require
from .annotations import EventMap, Unmapped, annotation_events, stim_events
from .base import Study
from .bids_files import stack_columns
from .file_state import companion_files, file_state

__all__ = ["RecordingsStudy", "RECORDING_EXTENSIONS", "recording_type_of"]

#: file extensions read as recordings (lower case)
RECORDING_EXTENSIONS = (
    ".fif", ".fif.gz", ".edf", ".bdf", ".gdf", ".vhdr", ".set", ".cnt", ".snirf", ".sqd",
    ".con", ".mff", ".ds", ".nxe", ".lay", ".edf+", ".bdf+",
)  # fmt: skip
#: :meth:`RecordingsStudy.recording_files`, matched once per (frozen) instance.
_FILES: Slot[list[Path]] = Slot("matched recording files")


def recording_type_of(channel_types: list[str]) -> str:
    """The data event type of a recording from its channel types (MEG > iEEG > fNIRS > EEG > EMG)."""
    kinds = set(channel_types)
    if kinds & {"mag", "grad", "ref_meg"}:
        return "Meg"
    if kinds & {"seeg", "ecog", "dbs"}:
        return "Ieeg"
    if any(k.startswith(("fnirs", "hbo", "hbr")) for k in kinds):
        return "Fnirs"
    if "eeg" in kinds:
        return "Eeg"
    if "emg" in kinds:
        return "Emg"
    return "Eeg"


@register("recordings")
@config
class RecordingsStudy(Study):
    """Recording files of any MNE-readable format, one timeline each (see the module docstring).

    Parameters
    ----------
    path
        Folder the patterns are relative to (and file paths are stored relative to).
    files
        Glob patterns (``**`` recurses) or file names; sorted, each file once.
    recording_type
        Event type of the recordings (``Meg``, ``Eeg``, ``Ieeg``, ``Emg``, ``Fnirs``), or
        ``"auto"``: from the channel types of each file.
    annotations
        Description (or pattern) -> :class:`EventMap`, for annotations and stim values alike.
    unmapped
        Descriptions no key matches: ``"keep"`` (``Stimulus`` events), ``"drop"`` or
        ``"error"``. Both keep and drop warn, listing them.
    stim_channel
        ``None`` (no stim events), ``"auto"`` (MNE's default stim channel) or a channel name:
        its events (``mne.find_events``) are mapped like annotations, keyed by value (``"32"``).
        EDF/BDF/GDF files are then read with ``stim_channel=<name>`` (MNE's way of reading a
        trigger channel its header calls EEG); a named channel is recorded in the data event's
        ``stim_channel`` column, which the MNE extractors read to leave it out of the data.
    shortest_event
        ``mne.find_events``' minimum number of samples of an event.
    reader_options
        Keyword arguments for ``mne.io.read_raw`` when a format needs them, e.g.
        ``{"data_format": "int16"}`` for Neuroscan ``.cnt`` files (see :mod:`neuralset.readers`);
        give the extractor the same ones.
    source
        Where :meth:`Study.fetch` gets files not fetched yet (see ``BidsStudy.source``).
    """

    tracks_files: ClassVar[bool] = True

    files: tuple[str, ...] = ("**/*",)
    recording_type: Literal["auto", "Meg", "Eeg", "Ieeg", "Emg", "Fnirs"] = "auto"
    annotations: dict[str, EventMap] = dataclasses.field(default_factory=dict)
    unmapped: Unmapped = "keep"
    stim_channel: str | None = None
    shortest_event: int = 1
    reader_options: ReaderOptions = dataclasses.field(
        default_factory=dict, metadata=KEY_UNLESS_DEFAULT
    )
    source: str = dataclasses.field(default="", metadata=KEY_EXCLUDED)

    def _check(self) -> None:
        require(bool(self.files), self, "files", "give at least one pattern, e.g. '**/*.edf'")
        at_least(self, "shortest_event", 1, unit="sample")

    # -- discovery ----------------------------------------------------------------------------
    def recording_files(self) -> list[Path]:
        """The recording files the patterns match (cached on the instance)."""
        return frozen_memo(self).get_or_set(_FILES, self._match)

    def _match(self) -> list[Path]:
        found: set[Path] = set()
        for pattern in self.files:
            for name in glob.glob(str(self.path / pattern), recursive=True):
                path = Path(name)
                lower = path.name.lower()
                if path.name.startswith(".") or not lower.endswith(RECORDING_EXTENSIONS):
                    continue
                if is_split_part(path) or (path.is_dir() and not lower.endswith(".ds")):
                    continue
                if not path.is_dir() and any(p.name.lower().endswith(".ds") for p in path.parents):
                    continue
                found.add(path)
        if not found:
            raise ConfigError(
                f"RecordingsStudy.files: no recording matches {list(self.files)} under {self.path} "
                f"(recognised extensions: {', '.join(RECORDING_EXTENSIONS)})"
            )
        return sorted(found)

    def timelines(self) -> list[str]:
        return [self._timeline(p) for p in self.recording_files()]

    def _timeline(self, path: Path) -> str:
        """The file's path relative to ``path`` (``edf/test.bdf``): one timeline per file."""
        return path.relative_to(self.path).as_posix()

    def content_key(self) -> str:
        """Identity (path, size, mtime) of the matched files and of their companions (see
        :func:`~neuralset.studies.file_state.companion_files`): the cached events follow them."""
        ident = []
        for recording in self.recording_files():
            for path in (recording, *companion_files(recording)):
                st = os.stat(path) if os.path.exists(path) else None
                size, mtime = (st.st_size, st.st_mtime_ns) if st else (-1, -1)
                ident.append((path.as_posix(), size, mtime))
        return structural_key(ident)

    # -- events -------------------------------------------------------------------------------
    def timeline_events(self, timeline: str) -> pd.DataFrame:
        for path in self.recording_files():
            if self._timeline(path) == timeline:
                parts, unmapped = self._file_parts(path)
                self._warn_unmapped(unmapped)
                return stack_columns(parts)
        raise KeyError(f"no timeline {timeline!r} in {self.path}")

    def all_timeline_events(self) -> pd.DataFrame:
        parts: list[dict[str, Any]] = []
        unmapped: dict[str, int] = {}
        for path in self.recording_files():
            file_parts, missing = self._file_parts(path)
            parts.extend(file_parts)
            for d in missing:
                unmapped[d] = unmapped.get(d, 0) + 1
        self._warn_unmapped(unmapped)
        return stack_columns(parts)

    def _warn_unmapped(self, unmapped: dict[str, int]) -> None:
        if not unmapped or self.unmapped == "error":
            return
        what = "kept as Stimulus events" if self.unmapped == "keep" else "dropped"
        listing = ", ".join(f"{d!r} ({n} files)" for d, n in list(unmapped.items())[:20])
        warnings.warn(
            f"RecordingsStudy at {self.path}: descriptions without an event map, {what}: "
            f"{listing}; map them with annotations={{...}}, or set unmapped='drop' (or 'error')",
            UserWarning,
            stacklevel=3,
        )

    def _file_parts(self, path: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
        rel = path.relative_to(self.path).as_posix()
        shared = {"timeline": self._timeline(path)}
        state = file_state(path)
        if not state.present:
            data = {
                "type": self.recording_type if self.recording_type != "auto" else "Eeg",
                "start": np.zeros(1),
                "duration": math.nan,
                "duration_source": "unknown",
                "frequency": math.nan,
                "filepath": rel,
                "offset": 0.0,
                **shared,
            }
            return [data], {}
        raw = _read_header(path, self.stim_channel, self.reader_options)
        sfreq = float(raw.info["sfreq"])
        etype: str = self.recording_type
        if etype == "auto":
            etype = recording_type_of(raw.get_channel_types())
        meas = raw.info.get("meas_date")
        parts: list[dict[str, Any]] = [
            {
                "type": etype,
                "start": np.zeros(1),
                "duration": raw.n_times / sfreq,
                "duration_source": "header",
                "frequency": sfreq,
                "filepath": rel,
                "offset": 0.0,
                "meas_date": meas.isoformat() if meas is not None else None,
            }
        ]
        if self.stim_channel not in (None, "auto"):  # the extractor leaves it out of the data
            parts[0]["stim_channel"] = self.stim_channel
        label = str(path)
        ann, missing, _ = annotation_events(raw, dict(self.annotations), self.unmapped, label)
        parts.extend(ann)
        unmapped = dict.fromkeys(missing, 1)
        if self.stim_channel is not None:
            stim, missing_stim, _ = stim_events(
                raw, self.stim_channel, dict(self.annotations), self.unmapped, label,
                self.shortest_event,
            )  # fmt: skip
            parts.extend(stim)
            unmapped.update(dict.fromkeys(missing_stim, 1))
        for part in parts:
            part.update(shared)
        return parts, unmapped


def _read_header(path: Path, stim_channel: str | None, reader_options: ReaderOptions) -> Any:
    """The file opened by :func:`~neuralset.readers.open_raw`; EDF/BDF/GDF get a named stim
    channel typed as stim."""
    kwargs: dict[str, Any] = {}
    if stim_channel not in (None, "auto") and path.suffix.lower() in (".edf", ".bdf", ".gdf"):
        kwargs["stim_channel"] = stim_channel  # read unscaled, as MNE's EDF reader does
    try:
        return open_raw(path, reader_options, **kwargs)
    except Exception as err:
        hint = reader_hint(err, "RecordingsStudy")
        if hint:
            raise ConfigError(
                f"unreadable recording {path}: {hint}, and the same on the extractor"
            ) from None
        raise ConfigError(
            f"unreadable recording {path}: {type(err).__name__}: {err}; check the file, or leave "
            "it out of RecordingsStudy.files"
        ) from None

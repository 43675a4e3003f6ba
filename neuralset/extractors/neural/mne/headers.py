"""What neuralset reads of an MNE-readable recording file before loading its data.

:class:`RecordingHeader` (channel names and types, bad channels, rate, length), memoised per
reader class and file version; the bad channels an event declares on top of the file's (the
``bads`` column a BIDS study fills from ``channels.tsv``); and the check that an event's span
lies inside its file; the per-channel scaling statistics fitted on a stored recording; and
the channel types ``picks`` accepts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CHANNEL_TYPES",
    "PICK_ALIASES",
    "RecordingHeader",
    "cached_header",
    "fit_scaling",
    "check_complete",
    "truncated_error",
    "check_rate",
    "check_span",
    "event_bads",
    "event_stim_channel",
    "header_of",
    "with_event_bads",
    "apply_event_channels",
    "event_reader",
    "recording_identity",
    "STIM_CHANNEL_FORMATS",
]


#: Channel types accepted by ``picks`` (MNE's channel types, plus "meg" for mag + grad).
CHANNEL_TYPES: tuple[str, ...] = (
    "meg", "mag", "grad", "ref_meg", "eeg", "seeg", "ecog", "dbs", "emg", "ecg", "eog", "misc",
    "stim", "resp", "bio", "syst", "chpi", "exci", "ias", "gsr", "temperature", "eyegaze", "pupil",
    "hbo", "hbr", "fnirs_cw_amplitude", "fnirs_fd_ac_amplitude", "fnirs_fd_phase", "fnirs_od",
    "fnirs_td_gated_amplitude", "fnirs_td_moments_intensity", "fnirs_td_moments_mean",
    "fnirs_td_moments_variance", "csd", "dipole", "gof",
)  # fmt: skip
#: What a pick stands for when it is not one MNE channel type.
PICK_ALIASES = {"meg": ("mag", "grad")}


def event_bads(events: pd.DataFrame, row: int) -> list[str]:
    """Bad channels declared by the event's ``bads`` column (comma-separated, e.g. from BIDS)."""
    if "bads" not in events.columns:
        return []
    value = events["bads"].iloc[row]
    if not isinstance(value, str) or not value.strip():
        return []
    return sorted({name.strip() for name in value.split(",") if name.strip()})


def recording_identity(path: Path, root: str | None, content_hash: bool) -> tuple[Any, ...]:
    """The cache identity of a recording: that of its file and, when it is read from others too
    (a BrainVision ``.eeg`` and ``.vmrk``, an EEGLAB ``.fdt``, a split FIF's parts), theirs:
    replacing one of them is a new version (:func:`neuralset.studies.file_state.companion_files`)."""
    from ....studies.file_state import companion_files
    from ...base import source_identity

    ident = source_identity(path, root, content_hash=content_hash)
    parts = [p for p in companion_files(path) if p.exists()]
    if not parts:
        return ident
    return (ident, *(source_identity(p, root, content_hash=content_hash) for p in parts))


def event_stim_channel(events: pd.DataFrame, row: int) -> str | None:
    """The trigger channel the event's ``stim_channel`` column names (a
    :class:`~neuralset.studies.recordings.RecordingsStudy` fills it), else ``None``."""
    if "stim_channel" not in events.columns:
        return None
    value = events["stim_channel"].iloc[row]
    return value if isinstance(value, str) and value else None


def with_event_bads(head: RecordingHeader, payload: dict[str, Any]) -> RecordingHeader:
    """``head`` with the event's declared bad channels added to those of the file, and its
    declared trigger channel (``payload["stim_channel"]``) typed ``stim``."""
    extra = [b for b in payload.get("bads", []) if b in head.names and b not in head.bads]
    stim = payload.get("stim_channel")
    if stim in head.names and head.types[head.names.index(stim)] != "stim":
        types = tuple("stim" if n == stim else t for n, t in zip(head.names, head.types))
        head = dataclasses.replace(head, types=types)
    return dataclasses.replace(head, bads=head.bads + tuple(extra)) if extra else head


#: Formats whose reader takes ``stim_channel=<name>`` (their headers type a trigger channel EEG).
STIM_CHANNEL_FORMATS = (".edf", ".bdf", ".gdf")


def event_reader(extractor: Any, path: Path | str, payload: dict[str, Any]) -> Any:
    """The extractor that opens ``path`` for this event: ``extractor`` itself, or, for an EDF,
    BDF or GDF file whose event names a trigger channel (``payload["stim_channel"]``), a copy
    whose ``reader_options`` add ``stim_channel=<name>``, so that MNE reads that channel as its
    stim channel (typed stim, its values unscaled), as the study read it."""
    stim = payload.get("stim_channel")
    if not stim or Path(path).suffix.lower() not in STIM_CHANNEL_FORMATS:
        return extractor
    return extractor.replace(reader_options={**extractor.reader_options, "stim_channel": stim})


def apply_event_channels(raw: Any, payload: dict[str, Any]) -> None:
    """Mark, in place, the event's declared bad channels bad and its declared trigger channel
    ``stim`` on an opened raw (an EDF trigger channel is typed EEG by its header: read as EEG,
    it would be stored among the EEG channels)."""
    head = with_event_bads(header_of(raw), payload)
    if head.bads != tuple(raw.info["bads"]):
        raw.info["bads"] = list(head.bads)
    stim = payload.get("stim_channel")
    if stim in raw.ch_names and raw.get_channel_types(picks=[stim])[0] != "stim":
        raw.set_channel_types({stim: "stim"}, verbose="error")


@dataclasses.dataclass(frozen=True)
class RecordingHeader:
    """Channel names, types and bads, sampling rate and length of a recording file."""

    names: tuple[str, ...]
    types: tuple[str, ...]
    bads: tuple[str, ...]
    sfreq: float
    n_times: int


_HEADERS: dict[tuple[str, str, str, int, int], RecordingHeader] = {}


def check_span(head: RecordingHeader, payload: dict[str, Any], label: str) -> tuple[int, int]:
    """First sample and sample count of the event's span in the file (error if it runs past)."""
    sfreq = head.sfreq
    duration = payload["duration"]
    if not duration >= 0:  # negative or NaN: never read as "the whole file"
        raise ValueError(
            f"{label} has duration {duration} s; a recording event needs its duration (> 0 s): "
            "fix the events table (neuralset.validate_events refuses such rows)"
        )
    first = int(round(payload["offset"] * sfreq))
    count = int(round(duration * sfreq)) if duration > 0 else head.n_times - first
    if first < 0 or first + count > head.n_times:
        raise ValueError(
            f"{label} spans file samples {first}..{first + count} (offset {payload['offset']} s, "
            f"duration {duration} s) but {payload['path']} has {head.n_times} samples at {sfreq:g} Hz; "
            "fix the event's offset/duration"
            + (
                " (or, if the file is shorter than its recording, it was cut short: copy it "
                "again from its source)"
                if first >= 0 and first < head.n_times
                else ""
            )
        )
    return first, count


def check_rate(file_sfreq: float, event_frequency: Any, label: str, path: str) -> None:
    """The event's ``frequency`` (when it gives one, > 0) must be the file's sampling rate.

    Raises
    ------
    ValueError
        Naming the file, both rates and the fix. A relative difference up to 1e-3 is rounding.
    """
    try:
        declared = float(event_frequency)
    except (TypeError, ValueError):
        return
    if not declared > 0:  # 0 or NaN: the event does not say
        return
    if abs(declared - file_sfreq) > 1e-3 * file_sfreq:
        raise ValueError(
            f"{label} says frequency {declared:g} Hz but the header of {path} says "
            f"{file_sfreq:g} Hz; fix the event's frequency (set it to {file_sfreq:g}, or to 0 "
            "when unknown)"
        )


def header_of(raw: Any) -> RecordingHeader:
    """The header of an opened ``mne.io.Raw``."""
    return RecordingHeader(
        names=tuple(raw.ch_names),
        types=tuple(raw.get_channel_types()),
        bads=tuple(raw.info["bads"]),
        sfreq=float(raw.info["sfreq"]),
        n_times=int(raw.n_times),
    )


def cached_header(
    reader_name: str,
    path: Path,
    read_raw: Callable[[Path], Any],
    reader_options: dict[str, Any] | None = None,
) -> RecordingHeader:
    """The header of ``path`` opened by ``read_raw``, memoised by reader (and its options),
    path, size and mtime.

    The file's last sample is read too: a file cut short (a copy or a download interrupted)
    fails here, named as such, instead of in the middle of ``prepare``.

    Raises
    ------
    ValueError
        ``path`` is a directory, or is truncated or damaged.
    """
    if Path(path).is_dir() and Path(path).suffix.lower() not in DIRECTORY_FORMATS:
        raise ValueError(f"{path} is a directory, not a recording file; point filepath at the file")
    st = os.stat(path)
    options = repr(sorted((reader_options or {}).items()))  # another reading of the same file
    cache_key = (reader_name, options, str(path), st.st_size, st.st_mtime_ns)
    if cache_key not in _HEADERS:
        if len(_HEADERS) > 10_000:
            _HEADERS.clear()
        raw = read_raw(path)
        check_complete(raw, path)
        _HEADERS[cache_key] = header_of(raw)
    return _HEADERS[cache_key]


#: Recording formats stored as a folder (CTF ``.ds``, EGI ``.mff``).
DIRECTORY_FORMATS = (".ds", ".mff")


def check_complete(raw: Any, path: Path | str) -> None:
    """Raise ``ValueError`` naming ``path`` as truncated or damaged when its last sample (as
    its header counts them) cannot be read."""
    n = int(raw.n_times)
    try:
        raw.get_data(start=max(n - 1, 0), stop=n, verbose="error")
    except Exception as err:
        raise truncated_error(path, err) from err


def truncated_error(path: Path | str, err: BaseException) -> ValueError:
    """The error of a recording file whose data cannot be read as its header describes."""
    try:
        size = f"{os.stat(path).st_size} bytes"
    except OSError:
        size = "size unknown"
    return ValueError(
        f"{path} is truncated or damaged ({size}): its header describes data that cannot be "
        f"read ({type(err).__name__}: {err}); copy the file again from its source (a copy or "
        "download cut short?)"
    )


def fit_scaling(data: np.ndarray, scaling: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel ``(center, scale)`` of a ``(time, channels)`` array: ``"robust"`` (median and
    interquartile range), ``"standard"`` (mean and standard deviation) or ``None`` (no scaling).
    A zero scale becomes 1."""
    if scaling == "robust":
        low, center, high = np.percentile(data, [25, 50, 75], axis=0)
        scale = high - low
    elif scaling == "standard":
        center, scale = data.mean(axis=0), data.std(axis=0)
    else:
        return None
    return center, np.where(scale > 0, scale, 1.0)

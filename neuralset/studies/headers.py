"""Recording lengths and rates read from file headers (never the signal).

Recording events (``Meg``, ``Eeg``, ``Ieeg``, ``Emg``, ``Ecg``, ``Fnirs``, ``Fmri``, ``Spikes``)
must say how long their recording lasts: :func:`~neuralset.events.validate_events` refuses a
duration of 0, which would give no sliding window and make every window fall outside the
recording.
:func:`fill_durations` sets those durations from the files' headers, for tables written by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..readers import ReaderOptions, open_raw, reader_hint
from .file_state import file_state

__all__ = [
    "fill_durations",
    "recording_length",
    "nifti_tr",
    "gifti_dims",
    "check_fmri_run",
    "MAX_TR",
]

#: Longest repetition time (s) taken from a NIfTI header without the event saying so: a larger
#: header TR is almost surely in another unit (milliseconds written as seconds).
MAX_TR = 30.0

_MNE_TYPES = ("Meg", "Eeg", "Ieeg", "Emg", "Fnirs", "Ecg")
_TIME_UNITS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}


def nifti_tr(header: Any) -> tuple[float, str]:
    """The repetition time of a NIfTI header in seconds, and the unit the header declares.

    The 4th zoom is scaled by the header's time unit (``msec``, ``usec``); an unknown unit is
    read as seconds. 0 when the header has no 4th dimension.
    """
    zooms = header.get_zooms()
    if len(zooms) < 4:
        return 0.0, "none"
    try:
        unit = str(header.get_xyzt_units()[1])
    except (AttributeError, IndexError):  # not a NIfTI header (e.g. Analyze)
        unit = "unknown"
    return float(zooms[3]) * _TIME_UNITS.get(unit, 1.0), unit


def gifti_dims(img: Any) -> tuple[int, int]:
    """``(volumes, vertices)`` of a GIfTI time series, read as
    :func:`~neuralset.extractors.neural.fmri_surface.load_gifti` reads it: one data array per
    volume, or a single 2D array whose longer axis is the vertices."""
    arrays = img.darrays
    if len(arrays) == 1 and len(arrays[0].dims) == 2:
        return min(arrays[0].dims), max(arrays[0].dims)
    return len(arrays), int(arrays[0].dims[0]) if arrays else 0


def recording_length(
    path: Path, event_type: str, frequency: float = 0.0, reader_options: ReaderOptions | None = None
) -> float:
    """Length in seconds of the recording in ``path``, from its header.

    MNE-readable types: samples / rate (:func:`neuralset.readers.open_raw`, with
    ``reader_options``, as the extractors open it). ``Fmri``: volumes x TR, the TR being
    ``1 / frequency`` when the event gives one, else the header's.

    Raises
    ------
    ValueError
        An unreadable header, an fMRI TR that is missing or above :data:`MAX_TR`, or a type
        whose length cannot be read from a header (``Spikes``).
    """
    if event_type in _MNE_TYPES:
        try:  # open_raw: mne.io.read_raw on a Neuroscan .cnt can crash the process (ANT reader)
            raw = open_raw(path, reader_options)
        except Exception as err:
            reason = reader_hint(err, "fill_durations") or str(err)
            raise ValueError(f"cannot read the header of {path}: {reason}") from None
        return float(raw.n_times / raw.info["sfreq"])
    if event_type == "Fmri":
        import nibabel as nib

        try:
            img = nib.load(str(path))
        except Exception as err:
            raise ValueError(f"cannot read the header of {path}: {err}") from None
        if str(path).endswith(".gii"):
            n_volumes, tr = gifti_dims(img)[0], 0.0
        elif str(path).endswith(".dtseries.nii"):  # CIFTI-2: volumes on the series axis
            series = img.header.get_axis(0)  # type: ignore[attr-defined]
            n_volumes = int(img.shape[0])
            tr = float(series.step) if getattr(series, "unit", "") == "SECOND" else 0.0
        else:
            n_volumes = int(img.shape[3]) if len(img.shape) == 4 else 0
            tr = nifti_tr(img.header)[0]
        if frequency > 0:
            tr = 1.0 / frequency
        if not 0 < tr <= MAX_TR:
            raise ValueError(
                f"{path}: cannot tell its length: header TR {tr:g} s; set the event's frequency "
                "(1 / TR in Hz) and duration"
            )
        return float(n_volumes * tr)
    raise ValueError(f"the length of a {event_type} recording is not in a header: set its duration")


def fill_durations(
    events: pd.DataFrame, reader_options: ReaderOptions | None = None
) -> pd.DataFrame:
    """A copy of ``events`` whose recording events without a duration get their file's length.

    Rows of a recording type whose ``duration`` is missing or 0 take the length read from the
    header of their ``filepath`` (relative paths are joined to ``study_root`` when present),
    minus their ``offset``. A file that is a git-annex pointer not fetched yet cannot say: its
    row gets ``duration = NaN`` and ``duration_source = "unknown"`` (and, when that column
    exists, filled rows get ``"header"``; see :mod:`neuralset.studies.bids_metadata`). Other
    rows are unchanged; the input is not modified.

    Parameters
    ----------
    events
        An events table.
    reader_options
        Keyword arguments for ``mne.io.read_raw`` when a format needs them (e.g.
        ``{"data_format": "int16"}`` for a Neuroscan ``.cnt``; see :mod:`neuralset.readers`).

    Examples
    --------
    >>> events = pd.DataFrame([{"type": "Eeg", "start": 0.0, "timeline": "s1",
    ...                         "filepath": "rec.edf"}])  # doctest: +SKIP
    >>> validate_events(fill_durations(events))  # doctest: +SKIP
    """
    from ..events.schema import event_types

    out = events.copy()
    if "duration" not in out.columns:
        out["duration"] = 0.0
    kinds = event_types()
    recording = out["type"].map(lambda t: getattr(kinds.get(str(t)), "is_recording", False))
    duration = pd.to_numeric(out["duration"], errors="coerce").fillna(0.0)
    rows = np.flatnonzero(recording.to_numpy(dtype=bool) & (duration.to_numpy() == 0))
    lengths = duration.to_numpy(dtype=np.float64).copy()
    sources: dict[int, str] = {}
    for row in rows:
        ev = out.iloc[int(row)]
        path = Path(str(ev["filepath"]))
        root = ev.get("study_root")
        if not path.is_absolute() and isinstance(root, str) and root:
            path = Path(root) / path
        if not file_state(path).present and file_state(path).exists:  # not fetched yet
            lengths[row], sources[int(row)] = np.nan, "unknown"
            continue
        sources[int(row)] = "header"
        freq = pd.to_numeric(ev.get("frequency", 0.0), errors="coerce")
        offset = pd.to_numeric(ev.get("offset", 0.0), errors="coerce")
        length = recording_length(
            path, str(ev["type"]), float(freq) if freq == freq else 0.0, reader_options
        )
        lengths[row] = length - (float(offset) if offset == offset else 0.0)
    out["duration"] = lengths
    if sources and ("duration_source" in out.columns or "unknown" in sources.values()):
        column = (
            out["duration_source"].astype(object)
            if "duration_source" in out.columns
            else pd.Series([None] * len(out), index=out.index, dtype=object)
        )
        column.iloc[list(sources)] = list(sources.values())
        out["duration_source"] = column
    return out


def check_fmri_run(
    path: Path, frequency: float, offset: float, duration: float, label: str
) -> tuple[int, float]:
    """Check an fMRI run's header against its event; return its volumes and TR (s).

    The header's TR (units applied) must match the event's ``frequency`` when both give one
    (relative difference up to 1e-3; a header without a time unit makes no claim); without an event frequency the header's TR is used and must
    be within ``(0, MAX_TR]``; the event's span (``offset + duration``) must lie within the run
    (volumes x TR, up to half a TR of rounding). GIfTI runs need the event's frequency.

    Raises
    ------
    ValueError
        Naming the file, the values that disagree and the fix.
    """
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as err:
        raise ValueError(f"{label}: cannot read the header of {path}: {err}") from None
    if str(path).endswith(".gii"):
        if not frequency > 0:
            raise ValueError(
                f"{label}: GIfTI runs carry no repetition time; set the event's frequency "
                "(1 / RepetitionTime in Hz)"
            )
        n_volumes, tr = gifti_dims(img)[0], 1.0 / frequency
    elif str(path).endswith(".dtseries.nii"):  # CIFTI-2: the series axis holds volumes and TR
        n_volumes, tr = _cifti_volumes_tr(path, img, frequency, label)
    else:
        if len(img.shape) != 4:
            raise ValueError(f"{label}: {path} is not a 4D fMRI run (shape {img.shape})")
        n_volumes = int(img.shape[3])
        tr = _checked_tr(path, img.header, frequency, label)
    span = n_volumes * tr
    if offset + duration > span + tr / 2:
        raise ValueError(
            f"{label} spans {offset:g}..{offset + duration:g} s of the run, but {path} holds "
            f"{n_volumes} volumes x TR {tr:g} s = {span:g} s; fix the event's duration (or "
            "offset, or frequency)"
        )
    return n_volumes, tr


def _cifti_volumes_tr(path: Path, img: Any, frequency: float, label: str) -> tuple[int, float]:
    """Volumes and TR of a CIFTI-2 dense time series (its series axis; seconds only)."""
    series = img.header.get_axis(0)
    header_tr = float(series.step) if getattr(series, "unit", "") == "SECOND" else 0.0
    if frequency > 0:
        tr = 1.0 / frequency
        if header_tr > 0 and abs(header_tr - tr) > 1e-3 * tr:
            raise ValueError(
                f"{label} says frequency {frequency:g} Hz (TR {tr:g} s) but the series axis of "
                f"{path} says a step of {header_tr:g} s; fix the event's frequency"
            )
    elif not 0 < header_tr <= MAX_TR:
        raise ValueError(
            f"{label}: {path} gives no usable repetition time (series step {header_tr:g} s); "
            "set the event's frequency (1 / RepetitionTime in Hz)"
        )
    else:
        tr = header_tr
    return int(img.shape[0]), tr


def _checked_tr(path: Path, header: Any, frequency: float, label: str) -> float:
    """The TR of a NIfTI run: the event's (checked against the header's) or the header's."""
    header_tr, unit = nifti_tr(header)
    if frequency > 0:
        tr = 1.0 / frequency
        # a header without a time unit makes no claim (nibabel writes TR 1 with no unit by default)
        if header_tr > 0 and unit != "unknown" and abs(header_tr - tr) > 1e-3 * tr:
            raise ValueError(
                f"{label} says frequency {frequency:g} Hz (TR {tr:g} s) but the header of {path} "
                f"says TR {header_tr:g} s (unit {unit!r}); fix the event's frequency, or the "
                "header (nibabel: img.header.set_zooms / set_xyzt_units)"
            )
        return tr
    if not 0 < header_tr <= MAX_TR:
        hint = (
            f" (unit {unit!r}: probably milliseconds written as seconds)"
            if header_tr > MAX_TR
            else ""
        )
        raise ValueError(
            f"{label} has no frequency and the header of {path} says TR {header_tr:g} s{hint}, "
            f"not a repetition time (0 < TR <= {MAX_TR:g} s); set the event's frequency "
            "(1 / TR in Hz), or fix the header's TR and unit"
        )
    return header_tr

"""Synthetic recordings of iEEG, EMG, fNIRS and spikes, written in real formats.

Each writer has the signature of the synthetic study's pluggable writers,
``fn(study, subject, folder, rng, words_df) -> events_df``: it writes one file per timeline of
``words_df`` (the subject's words; files named ``<timeline>_<modality>.<ext>``) into ``folder``
(skipping files already present; each file is
written under a temporary name then moved into place with :func:`os.replace`) and returns the
recording events (``type``, ``start``, ``duration``, ``timeline``, ``filepath``, ``frequency``,
``offset``). Recordings last the study's ``duration`` (or :data:`TAIL` s past the last word).

Known structure, for tests:

* **iEEG** (BrainVision, float32): 2 or 3 shanks of 3 to 5 contacts (``LA1``, ``LA2``...), chosen
  per subject by ``rng``; background noise, a 110 Hz burst :data:`IEEG_BURST` s after every word on the
  first shank (larger on its deeper contacts), and a ``RAMP`` channel whose every sample equals its
  own time in the file, in microvolts (``t * 1e-6`` V; BrainVision reads it back as ``misc``).
* **EMG** (EDF, channel types in the labels): ``EMG1`` with broadband bursts :data:`EMG_BURST` s
  after each word, ``EMG2`` background only.
* **fNIRS** (SNIRF, continuous-wave intensities at 760 and 850 nm): 4 source-detector pairs 3 cm
  apart with a cardiac oscillation (good scalp coupling) and a slow haemodynamic response after each
  word (:func:`hrf`; HbO rises, HbR falls by about a third), except one pair per subject (drawn by ``rng``) which is pure noise (bad scalp coupling,
  rejected by the scalp-coupling index).
* **spikes** (NWB): 5 to 9 units per subject, Poisson background at 5 Hz; the first two units
  fire an extra spike :data:`SPIKE_LATENCY` (52.5 ms) after each word.
"""

from __future__ import annotations

import datetime
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .files import safe_name, study_relative, write_atomic

__all__ = [
    "write_ieeg",
    "write_emg",
    "write_fnirs",
    "write_spikes",
    "write_snirf",
    "hrf",
    "ieeg_channel_names",
    "WRITERS",
]

IEEG_SFREQ = 1000.0
EMG_SFREQ = 1000.0
FNIRS_SFREQ = 10.0
SPIKE_RATE = 5.0
#: Window (s after each word onset) of the iEEG high-gamma burst and of the EMG burst.
IEEG_BURST = (0.05, 0.15)
EMG_BURST = (0.05, 0.2)
#: Latency (s) of the extra spike of units 0 and 1 after each word (mid-bin at 100 and 1000 Hz).
SPIKE_LATENCY = 0.0525
#: Seconds of recording after the last word.
TAIL = 2.0
_SHANKS = ("LA", "RH", "LT", "RA")


def _timelines(words_df: pd.DataFrame) -> Iterator[tuple[str, np.ndarray]]:
    words = words_df
    if "type" in words.columns:
        words = words[words["type"].astype(str) == "Word"]
    for timeline, group in words.groupby(words["timeline"].astype(str), sort=True, observed=True):
        yield str(timeline), np.sort(group["start"].to_numpy(dtype=np.float64))


def _events(kind: str, rows: list[tuple[str, Path, float, float]], study: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "type": kind,
            "start": 0.0,
            "duration": [r[2] for r in rows],
            "timeline": [r[0] for r in rows],
            "filepath": [study_relative(r[1], study) for r in rows],
            "frequency": [r[3] for r in rows],
            "offset": 0.0,
        }
    )


def _duration(study: Any, onsets: np.ndarray) -> float:
    """The study's ``duration`` when it has one, else up to :data:`TAIL` s after the last word."""
    duration = getattr(study, "duration", None)
    if isinstance(duration, int | float) and duration > 0:
        return float(duration)
    return (float(onsets.max()) if len(onsets) else 0.0) + TAIL


def _n_samples(study: Any, onsets: np.ndarray, sfreq: float, whole_seconds: bool = False) -> int:
    duration = _duration(study, onsets)
    if whole_seconds:  # EDF stores whole data records of 1 s
        duration = float(np.ceil(duration - 1e-9))
    return int(round(duration * sfreq))


def _locked(onsets: np.ndarray, times: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Boolean mask of samples ``times`` within ``[onset + lo, onset + hi)`` of any onset."""
    if not len(onsets):
        return np.zeros(len(times), dtype=bool)
    k = np.searchsorted(onsets, times - lo, side="right") - 1  # last onset with onset + lo <= t
    ok = k >= 0
    return ok & (times < onsets[np.maximum(k, 0)] + hi)


def ieeg_channel_names(rng: np.random.Generator) -> list[str]:
    """Contact names of a subject: 2 or 3 shanks of 3 to 5 contacts, plus ``RAMP``."""
    n_shanks = int(rng.integers(2, 4))
    shanks = list(rng.choice(_SHANKS, size=n_shanks, replace=False))
    names = [f"{s}{k}" for s in shanks for k in range(1, int(rng.integers(3, 6)) + 1)]
    return names + ["RAMP"]


def write_ieeg(
    study: Any, subject: Any, folder: Path, rng: np.random.Generator, words_df: pd.DataFrame
) -> pd.DataFrame:
    """iEEG recordings as BrainVision files (see module docstring for their structure)."""
    import mne

    names = ieeg_channel_names(rng)
    rows = []
    for timeline, onsets in _timelines(words_df):
        n = _n_samples(study, onsets, IEEG_SFREQ)
        path = Path(folder) / f"{safe_name(timeline)}_ieeg.vhdr"

        def write(tmp: Path, onsets: np.ndarray = onsets, n: int = n, path: Path = path) -> None:
            times = np.arange(n) / IEEG_SFREQ
            data = rng.normal(0.0, 10e-6, (len(names), n))
            burst = _locked(onsets, times, *IEEG_BURST) * np.sin(2 * np.pi * 110.0 * times) * 50e-6
            first = names[0][:2]
            for i, name in enumerate(names[:-1]):  # the last channel is RAMP
                if name.startswith(first) and name[2:].isdigit():
                    data[i] += burst * int(name[2:])
            data[-1] = times * 1e-6
            info = mne.create_info(names, IEEG_SFREQ, ["seeg"] * (len(names) - 1) + ["misc"])
            raw = mne.io.RawArray(data, info, verbose="error")
            # the .vhdr names its .eeg/.vmrk: write under a temporary folder, then move the three
            tmpdir = tmp.parent / f"{tmp.name}.d"
            tmpdir.mkdir(parents=True, exist_ok=True)
            try:
                with warnings.catch_warnings():  # pybv: RAMP is not in volts (read back as misc)
                    warnings.simplefilter("ignore", UserWarning)
                    mne.export.export_raw(
                        tmpdir / path.name, raw, fmt="brainvision", verbose="error"
                    )
                for suffix in (".eeg", ".vmrk"):
                    os.replace(tmpdir / path.with_suffix(suffix).name, path.with_suffix(suffix))
                os.replace(tmpdir / path.name, tmp)
            finally:
                for f in tmpdir.glob("*"):
                    f.unlink()
                tmpdir.rmdir()

        write_atomic(path, write)
        rows.append((timeline, path, n / IEEG_SFREQ, IEEG_SFREQ))
    return _events("Ieeg", rows, study)


def write_emg(
    study: Any, subject: Any, folder: Path, rng: np.random.Generator, words_df: pd.DataFrame
) -> pd.DataFrame:
    """EMG recordings as EDF files (see module docstring)."""
    import mne

    rows = []
    for timeline, onsets in _timelines(words_df):
        n = _n_samples(study, onsets, EMG_SFREQ, whole_seconds=True)
        path = Path(folder) / f"{safe_name(timeline)}_emg.edf"

        def write(tmp: Path, onsets: np.ndarray = onsets, n: int = n) -> None:
            times = np.arange(n) / EMG_SFREQ
            data = rng.normal(0.0, 5e-6, (2, n))
            data[0] += rng.normal(0.0, 100e-6, n) * _locked(onsets, times, *EMG_BURST)
            info = mne.create_info(["EMG1", "EMG2"], EMG_SFREQ, "emg")
            raw = mne.io.RawArray(data, info, verbose="error")
            mne.export.export_raw(
                tmp.with_suffix(".edf"), raw, fmt="edf", add_ch_type=True, verbose="error"
            )
            os.replace(tmp.with_suffix(".edf"), tmp)

        write_atomic(path, write)
        rows.append((timeline, path, n / EMG_SFREQ, EMG_SFREQ))
    return _events("Emg", rows, study)


def hrf(t: np.ndarray) -> np.ndarray:
    """A gamma-shaped haemodynamic response peaking near 5 s (0 before onset)."""
    t = np.clip(t, 0.0, None)
    return (t / 5.0) ** 2 * np.exp(2.0 - 2.0 * t / 5.0) * (t > 0)


def write_snirf(
    path: Path,
    intensities: np.ndarray,
    sfreq: float,
    pairs: list[tuple[int, int]],
    wavelengths: tuple[float, float],
    source_pos: np.ndarray,
    detector_pos: np.ndarray,
    subject: str = "synthetic",
) -> None:
    """Write continuous-wave intensities to a minimal SNIRF 1.1 file (one data block).

    Parameters
    ----------
    path
        The ``.snirf`` file written.
    intensities
        ``(time, channels)``; channel ``2 * p + w`` is pair ``pairs[p]`` at ``wavelengths[w]``.
    sfreq
        Sampling frequency in Hz.
    pairs
        1-based ``(source, detector)`` indices per pair.
    wavelengths
        The two wavelengths in nm.
    source_pos, detector_pos
        Optode positions in metres, ``(n, 3)``.
    subject
        Subject id written in the metadata.
    """
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("formatVersion", data=b"1.1")
        nirs = f.create_group("nirs")
        tags = nirs.create_group("metaDataTags")
        for key, value in (
            ("SubjectID", subject),
            ("MeasurementDate", "2020-01-01"),
            ("MeasurementTime", "12:00:00Z"),
            ("LengthUnit", "m"),
            ("TimeUnit", "s"),
            ("FrequencyUnit", "Hz"),
        ):
            tags.create_dataset(key, data=value.encode())
        block = nirs.create_group("data1")
        block.create_dataset("dataTimeSeries", data=np.asarray(intensities, dtype=np.float64))
        # (onset, period): the spec's regular-sampling form, read back as exactly ``sfreq``
        block.create_dataset("time", data=np.array([0.0, 1.0 / sfreq]))
        k = 0
        for src, det in pairs:
            for w in range(len(wavelengths)):
                k += 1
                ml = block.create_group(f"measurementList{k}")
                ml.create_dataset("sourceIndex", data=src, dtype="int32")
                ml.create_dataset("detectorIndex", data=det, dtype="int32")
                ml.create_dataset("wavelengthIndex", data=w + 1, dtype="int32")
                ml.create_dataset("dataType", data=1, dtype="int32")
                ml.create_dataset("dataTypeIndex", data=1, dtype="int32")
        probe = nirs.create_group("probe")
        probe.create_dataset("wavelengths", data=np.asarray(wavelengths, dtype=np.float64))
        probe.create_dataset("sourcePos3D", data=np.asarray(source_pos, dtype=np.float64))
        probe.create_dataset("detectorPos3D", data=np.asarray(detector_pos, dtype=np.float64))
        probe.create_dataset(
            "sourceLabels", data=[f"S{i + 1}".encode() for i in range(len(source_pos))]
        )
        probe.create_dataset(
            "detectorLabels", data=[f"D{i + 1}".encode() for i in range(len(detector_pos))]
        )


def write_fnirs(
    study: Any, subject: Any, folder: Path, rng: np.random.Generator, words_df: pd.DataFrame
) -> pd.DataFrame:
    """fNIRS recordings as SNIRF files (see module docstring)."""
    n_pairs = 4
    angles = np.linspace(0.0, np.pi / 2, n_pairs)
    radius = 0.09
    src = np.stack(
        [radius * np.cos(angles), radius * np.sin(angles), np.full(n_pairs, 0.02)], axis=1
    )
    det = src + np.array([0.0, 0.0, 0.03])  # 3 cm source-detector distance
    pairs = [(i + 1, i + 1) for i in range(n_pairs)]
    bad_pair = int(rng.integers(0, n_pairs))
    rows = []
    for timeline, onsets in _timelines(words_df):
        n = _n_samples(study, onsets, FNIRS_SFREQ)
        path = Path(folder) / f"{safe_name(timeline)}_nirs.snirf"

        def write(tmp: Path, onsets: np.ndarray = onsets, n: int = n) -> None:
            times = np.arange(n) / FNIRS_SFREQ
            response = np.zeros(n)
            for onset in onsets:
                response += hrf(times - onset)
            cardiac = np.sin(2 * np.pi * 1.1 * times)
            data = np.empty((n, 2 * n_pairs))
            for p in range(n_pairs):
                for w, gain in enumerate((0.1, 1.0)):  # HbO up, HbR down (about a third)
                    if p == bad_pair:  # bad coupling: independent noise per wavelength
                        sig = 1.0 + 0.05 * rng.normal(size=n)
                    else:
                        sig = 1.0 + 0.01 * cardiac - 0.005 * gain * response
                        sig += 0.001 * rng.normal(size=n)
                    data[:, 2 * p + w] = sig
            write_snirf(tmp, data, FNIRS_SFREQ, pairs, (760.0, 850.0), src, det, str(subject))

        write_atomic(path, write)
        rows.append((timeline, path, n / FNIRS_SFREQ, FNIRS_SFREQ))
    return _events("Fnirs", rows, study)


def write_spikes(
    study: Any, subject: Any, folder: Path, rng: np.random.Generator, words_df: pd.DataFrame
) -> pd.DataFrame:
    """Sorted units as NWB files (see module docstring)."""
    n_units = int(rng.integers(5, 10))
    rows = []
    for timeline, onsets in _timelines(words_df):
        duration = _duration(study, onsets)
        path = Path(folder) / f"{safe_name(timeline)}_spikes.nwb"

        def write(
            tmp: Path,
            onsets: np.ndarray = onsets,
            duration: float = duration,
            timeline: str = timeline,
        ) -> None:
            from pynwb import NWBHDF5IO, NWBFile

            nwb = NWBFile(
                session_description=f"synthetic spikes of {subject}",
                identifier=f"{safe_name(subject)}-{safe_name(timeline)}",
                session_start_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
            )
            for unit in range(n_units):
                times = rng.uniform(0.0, duration, rng.poisson(SPIKE_RATE * duration))
                if unit < 2:
                    times = np.concatenate([times, onsets + SPIKE_LATENCY])
                nwb.add_unit(spike_times=np.sort(times), id=100 + unit)
            with NWBHDF5IO(str(tmp), "w") as io:
                io.write(nwb)

        write_atomic(path, write)
        rows.append((timeline, path, duration, 0.0))
    return _events("Spikes", rows, study)


#: Writer entries for the synthetic study's ``SYNTHETIC_WRITERS``.
WRITERS: dict[str, str] = {
    "ieeg": "neuralset.synthetic.recordings:write_ieeg",
    "emg": "neuralset.synthetic.recordings:write_emg",
    "fnirs": "neuralset.synthetic.recordings:write_fnirs",
    "spikes": "neuralset.synthetic.recordings:write_spikes",
}

"""Synthetic MEG and EEG writers: FIF files with a RAMP channel and word-locked responses.

See :mod:`neuralset.synthetic.study` for what the files hold; :func:`write_meg` and
:func:`write_eeg` are the ``meg`` and ``eeg`` entries of
:data:`~neuralset.synthetic.study.SYNTHETIC_WRITERS`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .files import must_write
from .study import (
    EEG_AMPLITUDE,
    EEG_NAMES,
    GRAD_AMPLITUDE,
    LINE_RATIO,
    MEG_AMPLITUDE,
    N_RESPONSE_CHANNELS,
    NOISE_RATIO,
    RAMP_CHANNEL,
    RESPONSE_LATENCY,
    RESPONSE_WIDTH,
    SyntheticStudy,
)

__all__ = ["write_meg", "write_eeg", "response_kernel", "atomic_save_raw"]


# -- signals -------------------------------------------------------------------------------
def response_kernel(sfreq: float) -> tuple[np.ndarray, int]:
    """The word response (peak 1 at :data:`RESPONSE_LATENCY`) and its first sample after onset."""
    first = 0
    last = int(math.ceil((RESPONSE_LATENCY + 5 * RESPONSE_WIDTH) * sfreq))
    t = np.arange(first, last + 1) / sfreq
    return np.exp(-0.5 * ((t - RESPONSE_LATENCY) / RESPONSE_WIDTH) ** 2), first


def _response_series(words: pd.DataFrame, sfreq: float, n_times: int) -> np.ndarray:
    """Sum of response kernels at every word onset (one series, unit peak)."""
    onsets = words.loc[words["type"] == "Word", "start"].to_numpy()
    impulses = np.zeros(n_times)
    samples = np.round(onsets * sfreq).astype(np.int64)
    np.add.at(impulses, samples[samples < n_times], 1.0)
    kernel, first = response_kernel(sfreq)
    out = np.convolve(impulses, kernel)[:n_times]
    return out


def _signals(
    rng: np.random.Generator,
    words: pd.DataFrame,
    sfreq: float,
    n_times: int,
    amplitudes: np.ndarray,
) -> np.ndarray:
    """``(channels, time)`` float64: response on the first channels + 50 Hz line + noise."""
    n_ch = len(amplitudes)
    data = rng.standard_normal((n_ch, n_times), dtype=np.float32).astype(np.float64)
    data *= (NOISE_RATIO * amplitudes)[:, None]
    t = np.arange(n_times) / sfreq
    line = np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi))
    data += (LINE_RATIO * amplitudes)[:, None] * line[None, :]
    response = _response_series(words, sfreq, n_times)
    k = min(N_RESPONSE_CHANNELS, n_ch)
    signs = np.where(np.arange(k) % 2 == 0, 1.0, -1.0)
    data[:k] += (signs * amplitudes[:k])[:, None] * response[None, :]
    return data


def atomic_save_raw(raw: Any, target: Path) -> None:
    """Save an MNE Raw to ``target`` through a temporary name and :func:`os.replace`."""
    suffix = target.name.rsplit("_", 1)[-1]  # keep an MNE-accepted ending (e.g. "meg.fif")
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.stem.rsplit('_', 1)[0]}_{suffix}")
    try:
        raw.save(tmp, overwrite=True, verbose="error")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _annotate(raw: Any, words: pd.DataFrame) -> None:
    import mne

    w = words[words["type"] == "Word"]
    raw.set_annotations(
        mne.Annotations(
            onset=w["start"].to_numpy(),
            duration=w["duration"].to_numpy(),
            description=["Word"] * len(w),
        )
    )


def _recording_event(
    kind: str, study: SyntheticStudy, subject: int, target: Path, sfreq: float, n_times: int
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "type": [kind],
            "start": [0.0],
            "duration": [n_times / sfreq],
            "timeline": [study.timelines()[subject]],
            "filepath": [target.relative_to(study.path).as_posix()],
            "frequency": [sfreq],
            "offset": [0.0],
        }
    )


def _write_fif(
    kind: str,
    study: SyntheticStudy,
    subject: int,
    folder: Path,
    sfreq: float,
    words: pd.DataFrame,
    make_raw: Callable[[int], Any],
) -> pd.DataFrame:
    """Write ``sub-XX_<kind>.fif`` from ``make_raw(n_times)`` (annotated with the words) if
    missing; return its recording event."""
    n_times = int(round(study.duration * sfreq))
    target = folder / f"{folder.name}_{kind.lower()}.fif"
    if must_write(target):
        raw = make_raw(n_times)
        _annotate(raw, words)
        atomic_save_raw(raw, target)
    return _recording_event(kind, study, subject, target, sfreq, n_times)


def _ramp_raw(signals: np.ndarray, names: list[str], types: list[str], sfreq: float) -> Any:
    """An ``mne.io.RawArray``: the RAMP misc channel (each sample = its time) then ``signals``."""
    import mne

    n_times = signals.shape[1]
    data = np.empty((len(signals) + 1, n_times))
    data[0] = np.arange(n_times) / sfreq
    data[1:] = signals
    info = mne.create_info([RAMP_CHANNEL, *names], sfreq, ["misc", *types])
    info["line_freq"] = 50.0
    return mne.io.RawArray(data, info, verbose="error")


def write_meg(
    study: SyntheticStudy, subject: int, folder: Path, rng: np.random.Generator, words: pd.DataFrame
) -> pd.DataFrame:
    """Write ``sub-XX_meg.fif`` (RAMP misc channel + mag/grad triplets) if missing; return the Meg event."""
    sfreq = float(study.meg_sfreq)

    def make_raw(n_times: int) -> Any:
        types = ["mag" if i % 3 == 0 else "grad" for i in range(study.meg_channels)]
        amplitudes = np.array([MEG_AMPLITUDE if t == "mag" else GRAD_AMPLITUDE for t in types])
        signals = _signals(rng, words, sfreq, n_times, amplitudes)
        names = [f"MEG {i + 1:03d}" for i in range(study.meg_channels)]
        raw = _ramp_raw(signals, names, types, sfreq)
        if "anatomy" in study.modalities:
            from .anatomy import add_meg_geometry

            add_meg_geometry(raw, study, subject)
        return raw

    return _write_fif("Meg", study, subject, folder, sfreq, words, make_raw)


def write_eeg(
    study: SyntheticStudy, subject: int, folder: Path, rng: np.random.Generator, words: pd.DataFrame
) -> pd.DataFrame:
    """Write ``sub-XX_eeg.fif`` (RAMP misc channel + 10-20 EEG, one bad channel) if missing; return the Eeg event."""
    sfreq = float(study.eeg_sfreq)

    def make_raw(n_times: int) -> Any:
        n = study.eeg_channels
        signals = _signals(rng, words, sfreq, n_times, np.full(n, EEG_AMPLITUDE))
        names = list(EEG_NAMES[:n])
        bad = (study.seed + 5 * subject) % n if n > 1 else -1  # differs between neighbours
        if bad >= 0:
            signals[bad] += rng.standard_normal(n_times) * 20 * NOISE_RATIO * EEG_AMPLITUDE
        raw = _ramp_raw(signals, names, ["eeg"] * n, sfreq)
        raw.set_montage(_montage(), on_missing="ignore", verbose="error")
        if bad >= 0:
            raw.info["bads"] = [names[bad]]
        return raw

    return _write_fif("Eeg", study, subject, folder, sfreq, words, make_raw)


def _montage() -> Any:
    import warnings

    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # standard_1020 is being renamed
        return mne.channels.make_standard_montage("standard_1020")

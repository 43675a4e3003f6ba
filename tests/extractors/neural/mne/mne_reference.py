"""Reference results built the MNE way, shared by the extractor tests (EMG, fNIRS, iEEG, M/EEG)."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd


def word_onsets(events: pd.DataFrame, timeline: str | None = None) -> np.ndarray:
    """Onsets (s) of the Word events, of one timeline when given."""
    mask = events["type"] == "Word"
    if timeline is not None:
        mask &= events["timeline"] == timeline
    return events.loc[mask, "start"].to_numpy()


def word_epochs(
    raw: mne.io.BaseRaw, onsets: np.ndarray, sfreq: float, tmin: float, duration: float
) -> np.ndarray:
    """``mne.Epochs`` data of ``round(duration * sfreq)`` samples per onset, without baseline.

    Each window starts at the sample nearest to ``onset + tmin``.
    """
    samples = np.round((onsets + tmin) * sfreq).astype(int) - int(round(tmin * sfreq))
    n = int(round(duration * sfreq))
    ev = np.c_[samples, np.zeros_like(samples), np.ones_like(samples)]
    epochs = mne.Epochs(
        raw,
        ev,
        tmin=tmin,
        tmax=tmin + (n - 1) / sfreq,
        baseline=None,
        preload=True,
        verbose="error",
    )
    return epochs.get_data()


def assert_close(ours: np.ndarray, ref: np.ndarray, rtol: float) -> None:
    """Same shape, and equal within ``rtol`` of each channel's peak (axis 1) in ``ref``."""
    assert ours.shape == ref.shape
    scale = np.abs(ref).max(axis=(0, 2), keepdims=True)
    err = np.abs(ours - ref) / scale
    assert err.max() < rtol, err.max()

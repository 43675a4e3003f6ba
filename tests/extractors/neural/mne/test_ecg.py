"""EcgExtractor against MNE on an ECG recording with known beats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.extractors.neural.mne.ecg import EcgExtractor, heart_rate
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

SFREQ = 250.0
DURATION = 30.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """An ECG (+ an EEG channel) FIF: QRS-like spikes at jittered beats around 72 bpm."""
    import mne

    root = tmp_path_factory.mktemp("ecg")
    rng = np.random.default_rng(5)
    beats = np.cumsum(rng.uniform(0.75, 0.92, size=60))
    beats = beats[beats < DURATION - 0.5]
    t = np.arange(int(DURATION * SFREQ)) / SFREQ
    ecg = np.zeros_like(t)
    for b in beats:
        ecg += 1e-3 * np.exp(-0.5 * ((t - b) / 0.012) ** 2)  # R wave
        ecg -= 2e-4 * np.exp(-0.5 * ((t - b - 0.25) / 0.05) ** 2)  # T wave
    ecg += rng.normal(0, 2e-5, size=t.shape)
    eeg = rng.normal(0, 1e-5, size=t.shape)
    info = mne.create_info(["ECG 001", "Cz"], SFREQ, ch_types=["ecg", "eeg"])
    raw = mne.io.RawArray(np.vstack([ecg, eeg]), info, verbose="error")
    path = root / "sub-01_ecg_raw.fif"
    raw.save(path, verbose="error")
    return path, beats


def _events(path: Path) -> pd.DataFrame:
    rows = [
        dict(
            type="Ecg",
            start=0.0,
            duration=DURATION,
            timeline="a",
            filepath=path.name,
            frequency=SFREQ,
        ),
        dict(type="Word", start=5.0, duration=0.3, timeline="a", text="w"),
    ]
    table = pd.DataFrame(rows)
    table["study_root"] = str(path.parent)
    return validate_events(table)


def test_ecg_signal_equals_mne(recording, tmp_path):
    import mne

    path, _ = recording
    ex = EcgExtractor(filter=(1.0, 40.0), frequency=100.0)
    store = Store(tmp_path)
    ex.prepare(_events(path), store, progress=False)
    stored = np.asarray(store.get_arrays(ex.items(_events(path))[0].key)["data"])
    raw = mne.io.read_raw(path, preload=True, verbose="error").pick(["ECG 001"])
    raw.filter(1.0, 40.0, picks="all", verbose="error").resample(100.0, verbose="error")
    np.testing.assert_allclose(stored, raw.get_data().T, rtol=1e-5, atol=1e-9)
    assert store.meta(ex.items(_events(path))[0].key)["ch_names"] == ["ECG 001"]


def test_heart_rate_from_mne_r_peaks(recording, tmp_path):
    import mne

    path, beats = recording
    ex = EcgExtractor(signal="heart_rate")
    store = Store(tmp_path)
    events = _events(path)
    ex.prepare(events, store, progress=False)
    stored = np.asarray(store.get_arrays(ex.items(events)[0].key)["data"])[:, 0]
    raw = mne.io.read_raw(path, preload=True, verbose="error").pick(["ECG 001"])
    found, _, _ = mne.preprocessing.find_ecg_events(
        raw, ch_name="ECG 001", l_freq=5.0, h_freq=35.0, verbose="error"
    )
    peaks = found[:, 0] - raw.first_samp
    np.testing.assert_allclose(stored, heart_rate(peaks, raw.n_times, SFREQ), rtol=1e-6)
    # MNE finds the true beats, so the rate is the true one (within a few samples of jitter)
    assert len(peaks) == len(beats)
    np.testing.assert_allclose(peaks / SFREQ, beats, atol=0.02)
    mid = int(10.0 * SFREQ)
    k = np.searchsorted(beats, 10.0) - 1
    assert abs(stored[mid] - 60.0 / (beats[k + 1] - beats[k])) < 3.0
    # read as a dynamic window at 10 Hz after resampling
    segs = segment_on_triggers(events, "Word", duration=2.0)
    windows = EcgExtractor(signal="heart_rate", frequency=10.0)
    windows.prepare(events, store, progress=False)
    assert windows.read(segs, store).data.shape == (1, 1, 20)


def test_config_errors():
    with pytest.raises(
        ConfigError, match=r"^EcgExtractor.qrs_band: expected \(low, high\) with 0 < low < high Hz"
    ):
        EcgExtractor(qrs_band=(30.0, 5.0))
    with pytest.raises(ValueError, match=r"2 R peak\(s\)|1 R peak\(s\)"):
        heart_rate(np.array([10]), 100, 100.0)

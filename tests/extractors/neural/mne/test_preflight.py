"""The MNE preflight refuses, from the headers and before any work, a ``notch`` or a causal
design that the recordings' sampling rate cannot carry (the small synthetic MEG: 1000 Hz)."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.extractors.neural.mne import (
    EcgExtractor,
    EmgExtractor,
    IeegExtractor,
    MegExtractor,
)
from neuralset.store import Store


def test_notch_above_the_source_nyquist_names_the_field_before_any_work(
    small_study, small_events, tmp_path
):
    path = small_study.path / "sub-01" / "sub-01_meg.fif"
    with pytest.raises(ConfigError) as info:
        MegExtractor(frequency=100.0, notch=(50.0, 499.0)).prepare(
            small_events, Store(tmp_path / "store"), progress=False
        )
    assert str(info.value) == (
        "MegExtractor.notch: the notch at 499 Hz stops a band up to 500.748 Hz, at or above the "
        f"Nyquist frequency (500 Hz) of {path}, recorded at 1000 Hz; keep only line frequencies "
        "below 498.254 Hz (this file holds no line noise above its Nyquist frequency)"
    )
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(("line", "accepted"), [(498.25, True), (498.26, False)])
def test_the_notch_limit_is_where_mne_refuses(line: float, accepted: bool) -> None:
    raw = mne.io.RawArray(np.zeros((1, 2000)), mne.create_info(1, 1000.0, "mag"), verbose="error")
    try:
        raw.notch_filter([line], verbose="error")
        mne_accepts = True
    except ValueError:
        mne_accepts = False
    assert mne_accepts is accepted
    assert (line + line / 400 + 0.5 < 500.0) is accepted  # the preflight's rule


def test_causal_frequency_that_does_not_divide_the_rate_fails_before_any_work(
    small_study, small_events, tmp_path
):
    path = small_study.path / "sub-01" / "sub-01_meg.fif"
    with pytest.raises(ValueError) as info:
        MegExtractor(frequency=300.0, causal=True).prepare(
            small_events, Store(tmp_path / "store"), progress=False
        )
    assert str(info.value) == (
        f"MegExtractor on {path}: causal resampling keeps one sample in q, so the 1000 Hz "
        "recording needs an output frequency of 1000/q Hz, got 300 Hz; pick such a frequency "
        "or set causal=False"
    )
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("drop_bads", [False, True])
def test_different_channels_suggest_drop_bads_only_when_it_is_set(tmp_path, drop_bads: bool):
    from neuralset.extractors.neural.mne import EegExtractor, RecordingMismatchError
    from neuralset.studies.recordings import RecordingsStudy

    for name, channels in (("a", ["Fz", "Cz"]), ("b", ["Fz", "Pz"])):
        info = mne.create_info(channels, 100.0, "eeg")
        raw = mne.io.RawArray(np.zeros((2, 200)), info, verbose="error")
        raw.save(tmp_path / f"{name}_raw.fif", verbose="error")
    events = RecordingsStudy(path=tmp_path, files=("*.fif",)).events()
    with pytest.raises(RecordingMismatchError) as info:
        EegExtractor(drop_bads=drop_bads).prepare(events, Store(tmp_path / "store"), progress=False)
    assert str(info.value) == (
        "EegExtractor: recordings select different channels: Eeg event 0 (timeline a_raw.fif, "
        "file a_raw.fif) has 2 (Cz not in the other), Eeg event 1 (timeline b_raw.fif, file "
        "b_raw.fif) has 2 (Pz not in the first); pass channels='intersection', or ch_names=(...)"
        + (", or drop_bads=False" if drop_bads else "")
    )


@pytest.mark.parametrize(
    ("kind", "ch_type", "extractor", "field"),
    [
        ("Ecg", "ecg", EcgExtractor(signal="heart_rate", qrs_band=(5.0, 60.0)), "qrs_band[1]"),
        ("Emg", "emg", EmgExtractor(band=(20.0, 60.0)), "band[1] (high cut-off)"),
        ("Ieeg", "seeg", IeegExtractor(envelope=(20.0, 60.0)), "envelope[1] (high cut-off)"),
    ],
    ids=["ecg", "emg", "ieeg"],
)
def test_a_modality_band_above_the_source_nyquist_fails_before_any_work(
    tmp_path, kind: str, ch_type: str, extractor, field: str
):
    """A band of a modality's own step (ECG's QRS detection, EMG's band-pass, iEEG's
    envelope) checked from the header of a 100 Hz file, as ``filter`` is."""
    path = tmp_path / "rec_raw.fif"
    info = mne.create_info(["A1", "A2"], 100.0, ch_type)
    mne.io.RawArray(np.zeros((2, 1000)), info, verbose="error").save(path, verbose="error")
    row = {"type": kind, "start": 0.0, "duration": 10.0, "timeline": "r", "filepath": str(path)}
    events = validate_events(pd.DataFrame([row]))
    with pytest.raises(ConfigError) as err:
        extractor.prepare(events, Store(tmp_path / "store"), progress=False)
    assert str(err.value) == (
        f"{type(extractor).__name__}.{field}: 60 Hz is at or above the Nyquist frequency (50 Hz) "
        f"of {path}, recorded at 100 Hz; set it below 50 Hz"
    )
    assert not (tmp_path / "store").exists()

"""EMG extractor against the same MNE calls on the synthetic EDF files."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.extractors.neural.mne.emg import EmgExtractor
from neuralset.segments import segment_on_triggers
from neuralset.synthetic import SyntheticStudy
from tests.extractors.neural.mne.mne_reference import assert_close, word_epochs, word_onsets

TMIN, DURATION, FREQ = -0.1, 0.4, 100.0
RTOL = 1e-5


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStudy:
    return SyntheticStudy(
        path=tmp_path_factory.mktemp("emg"), n_subjects=1, duration=8.0, modalities=("emg",)
    )


def _reference(study: SyntheticStudy, events: pd.DataFrame, notch: bool) -> np.ndarray:
    raw = mne.io.read_raw_edf(
        study.path / "sub-01/sub-01_emg.edf", infer_types=True, preload=True, verbose="error"
    )
    if notch:
        raw.notch_filter(50.0, picks="all", verbose="error")
    raw.filter(20.0, 450.0, picks="all", verbose="error")
    raw.apply_function(np.abs, picks="all")
    raw.filter(None, 10.0, picks="all", verbose="error")
    raw.resample(FREQ, verbose="error")
    return word_epochs(raw, word_onsets(events), FREQ, TMIN, DURATION)


@pytest.mark.parametrize("notch", [False, True])
def test_envelope_matches_mne(study, events, store, notch: bool) -> None:  # noqa: ANN001
    emg = EmgExtractor(
        band=(20.0, 450.0), envelope=10.0, frequency=FREQ, notch=(50.0,) if notch else ()
    )
    emg.prepare(events, store, progress=False)
    words = segment_on_triggers(events, "Word", offset=TMIN, duration=DURATION)
    out = emg.read(words, store)
    ref = _reference(study, events, notch)
    assert out.data.shape == ref.shape == (len(words), 2, 40)
    assert out.channels == ("EMG1", "EMG2")
    assert_close(out.data, ref, RTOL)
    # known structure: EMG1 bursts 0.05-0.2 s after each word; EMG2 is background only
    during, before = out.data[:, :, 17:28].mean(axis=(0, 2)), out.data[:, :, 2:10].mean(axis=(0, 2))
    assert during[0] > 3 * before[0]
    assert 0.7 < during[1] / before[1] < 1.4


def test_notch_runs_before_rectification(study, events, store) -> None:  # noqa: ANN001
    emg = EmgExtractor(notch=(50.0,), frequency=FREQ)
    item = emg.items(events)[0]
    data, sfreq, meta = emg.compute_recording(item.payload)
    raw = mne.io.read_raw_edf(
        study.path / "sub-01/sub-01_emg.edf", infer_types=True, preload=True, verbose="error"
    )
    raw.filter(20.0, 450.0, picks="all", verbose="error").apply_function(np.abs, picks="all")
    raw.filter(None, 10.0, picks="all", verbose="error")
    raw.notch_filter(50.0, picks="all", verbose="error").resample(FREQ, verbose="error")  # after
    assert sfreq == FREQ and data.shape == (800, 2) and meta["ch_names"] == ["EMG1", "EMG2"]
    assert not np.allclose(data, raw.get_data().T, rtol=1e-3, atol=0)


def test_errors(events, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(
        ConfigError, match=r"EmgExtractor.band: expected \(low, high\) with 0 < low < high"
    ):
        EmgExtractor(band=(450.0, 20.0))
    with pytest.raises(
        ConfigError, match=r"EmgExtractor.envelope: the envelope cut-off \(500.0 Hz\) must be below"
    ):
        EmgExtractor(envelope=500.0)
    with pytest.raises(ConfigError, match="EmgExtractor.envelope: low-pass cut-off must be > 0 Hz"):
        EmgExtractor(envelope=-1.0)
    item = EmgExtractor().items(events)[0]
    with pytest.raises(
        ValueError,
        match=r"EmgExtractor.band: high cut-off 600.0 Hz is not below the Nyquist frequency \(500 Hz\)",
    ):
        EmgExtractor(band=(20.0, 600.0)).compute_recording(item.payload)
    # an EDF without channel-type labels reads as EEG: picks must say so
    raw = mne.io.RawArray(
        np.zeros((1, 1000)), mne.create_info(["X"], 1000.0, "emg"), verbose="error"
    )
    mne.export.export_raw(tmp_path / "plain.edf", raw, verbose="error")
    plain = {**item.payload, "path": str(tmp_path / "plain.edf"), "duration": 1.0}
    with pytest.raises(
        ValueError,
        match=r"EmgExtractor: no channel of types \('emg',\) in .*its types: eeg\); change picks",
    ):
        EmgExtractor().compute_recording(plain)
    data, _, _ = EmgExtractor(picks=("eeg",), frequency=100.0).compute_recording(plain)
    assert data.shape == (100, 1)


def test_envelope_above_nyquist_fails_in_preflight(events, store) -> None:  # noqa: ANN001
    # without a band-pass nothing else bounds the envelope: MNE's filter used to fail mid-prepare
    emg = EmgExtractor(band=None, envelope=600.0)
    with pytest.raises(
        ConfigError,
        match=r"^EmgExtractor.envelope \(low-pass\): 600 Hz is at or above the Nyquist frequency "
        r"\(500 Hz\) of .*sub-01_emg.edf, recorded at 1000 Hz; set it below 500 Hz$",
    ):
        emg.preflight(events, store)


def test_causal_refuses_zero_phase_steps() -> None:
    # band, envelope and a notch before rectification ran as zero-phase FIR filters under causal=True
    with pytest.raises(ConfigError) as err:
        EmgExtractor(causal=True, notch=(50.0,), frequency=100.0)
    assert str(err.value) == (
        "EmgExtractor.causal: band=(20.0, 450.0), envelope=10.0, notch=(50.0,) before rectify run "
        "as zero-phase filters (they use later samples), so causal=True would store non-causal "
        "values; set them to None/() (the causal filter=(low, high) runs after rectification) or "
        "use causal=False"
    )
    ok = EmgExtractor(causal=True, band=None, envelope=None, filter=(None, 10.0), frequency=100.0)
    assert ok.causal and EmgExtractor(causal=True, band=None, envelope=None, rectify=False).causal

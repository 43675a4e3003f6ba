"""A file header that contradicts its event is an error before any work; frequency=None keeps
each file's rate. On real EDF/BDF files from MNE-Python's test data (issue 8, cases 3 and 4)."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neuralset.events import validate_events
from neuralset.extractors.neural.mne import EegExtractor, RecordingMismatchError
from neuralset.segments import sliding_windows
from neuralset.store import Store
from tests.real_data import mne_testing_file


def _eeg_events(*recordings: tuple[Path, float, float]) -> pd.DataFrame:
    """One Eeg event per (file, frequency, duration), each on its own timeline."""
    return validate_events(
        pd.DataFrame(
            [
                {"type": "Eeg", "start": 0.0, "timeline": path.stem, "filepath": str(path),
                 "frequency": freq, "duration": duration}
                for path, freq, duration in recordings
            ]
        )
    )  # fmt: skip


def test_event_frequency_that_contradicts_the_header_fails_before_any_work(tmp_path):
    edf = mne_testing_file("edf/test.edf")  # 512 Hz, 6 s
    store = Store(tmp_path / "store")
    events = _eeg_events((edf, 500.0, 6.0))
    with pytest.raises(ValueError) as info:
        EegExtractor(frequency=100.0).prepare(events, store, progress=False)
    assert str(info.value) == (
        f"Eeg event 0 (timeline test, file {edf}) says frequency 500 Hz but the header of {edf} "
        "says 512 Hz; fix the event's frequency (set it to 512, or to 0 when unknown)"
    )
    assert not (tmp_path / "store").exists()  # nothing computed, nothing stored
    # a frequency of 0 says nothing; rounding is not a contradiction
    for freq in (0.0, 512.0004):
        EegExtractor(frequency=100.0).preflight(_eeg_events((edf, freq, 6.0)), store)


def test_event_longer_than_its_file_fails_before_any_work(tmp_path):
    bdf = mne_testing_file("edf/test_bdf_stim_channel.bdf")  # 500 Hz, 10 s
    with pytest.raises(ValueError) as info:
        EegExtractor(frequency=100.0).prepare(
            _eeg_events((bdf, 500.0, 12.0)), Store(tmp_path / "store"), progress=False
        )
    assert str(info.value) == (
        f"Eeg event 0 (timeline test_bdf_stim_channel, file {bdf}) spans file samples 0..6000 "
        f"(offset 0.0 s, duration 12.0 s) but {bdf} has 5000 samples at 500 Hz; fix the event's "
        "offset/duration (or, if the file is shorter than its recording, it was cut short: copy "
        "it again from its source)"
    )
    assert not (tmp_path / "store").exists()


def test_frequency_none_keeps_the_file_rate(tmp_path):
    edf = mne_testing_file("edf/test.edf")
    events = _eeg_events((edf, 512.0, 6.0))
    store = Store(tmp_path / "store")
    eeg = EegExtractor(frequency=None)
    eeg.prepare(events, store, progress=False)
    windows = sliding_windows(events, duration=1.0, stride=0.5, blocks="Eeg")
    out = eeg.read(windows, store).data
    raw = mne.io.read_raw(edf, preload=True, verbose="error").pick("eeg")
    reference = raw.get_data()
    assert out.shape == (11, len(raw.ch_names), 512)  # 512 samples: the file's rate
    for k in range(len(windows)):
        window = reference[:, 256 * k : 256 * k + 512]
        np.testing.assert_allclose(out[k], window, rtol=1e-6, atol=1e-6 * np.abs(window).max())


def test_frequency_none_with_files_at_different_rates(tmp_path):
    edf = mne_testing_file("edf/test_edf_stim_channel.edf")  # 128 Hz, 9.59 s, 25 EEG channels
    bdf = mne_testing_file("edf/test_bdf_stim_channel.bdf")  # 500 Hz, 10 s, 3 EEG channels
    both = _eeg_events((edf, 128.0, 9.5), (bdf, 500.0, 10.0))
    eeg = EegExtractor(frequency=None, channels="intersection")
    store = Store(tmp_path / "store")
    with pytest.raises(RecordingMismatchError) as info:  # one prepare: refused at preflight
        eeg.prepare(both, store, progress=False)
    assert str(info.value) == (
        f"EegExtractor: recordings have different sampling rates (Eeg event 0 (timeline "
        f"test_edf_stim_channel, file {edf}): 128 Hz, Eeg event 1 (timeline test_bdf_stim_channel, "
        f"file {bdf}): 500 Hz); set EegExtractor.frequency to resample them to one rate"
    )
    # prepared one by one, a batch that mixes them is refused at read, naming both
    eeg.replace(channels="error").prepare(both.iloc[[0]], store, progress=False)
    eeg.replace(channels="error").prepare(
        both.iloc[[1]].reset_index(drop=True), store, progress=False
    )
    windows = sliding_windows(both, duration=1.0, stride=1.0, blocks="Eeg")
    with pytest.raises(ValueError) as info:
        eeg.replace(channels="error").read(windows, store)
    assert str(info.value) == (
        f"EegExtractor.frequency is None (each file's rate), but this batch mixes Eeg event 0 "
        f"(timeline test_edf_stim_channel, file {edf}) at 128 Hz and Eeg event 1 (timeline "
        f"test_bdf_stim_channel, file {bdf}) at 500 Hz; set EegExtractor.frequency to resample "
        "every recording to one rate"
    )
    bdf_only = windows.select(windows.timeline_names == "test_bdf_stim_channel")
    one = eeg.replace(channels="error").read(bdf_only, store)
    assert one.data.shape[-1] == 500

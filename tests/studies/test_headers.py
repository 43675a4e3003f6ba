"""A recording event left at duration 0 is refused at validation; fill_durations reads the
length from the file's header (issue 8, case 2), on real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mne
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neuralset.events import EventsError, validate_events
from neuralset.extractors.neural.mne import EegExtractor
from neuralset.segments import sliding_windows
from neuralset.store import Store
from neuralset.studies import fill_durations
from neuralset.studies.headers import nifti_tr, recording_length
from tests.real_data import mne_testing_file, nibabel_example


def test_zero_duration_recording_is_refused_then_filled_from_its_header(tmp_path):
    edf = mne_testing_file("edf/test.edf")
    table = pd.DataFrame(
        [
            {"type": "Eeg", "start": 2.0, "timeline": "edf", "filepath": str(edf), "frequency": 512.0},
            {"type": "Word", "start": 3.0, "timeline": "edf", "text": "cat", "duration": 0.2},
        ]
    )  # fmt: skip
    with pytest.raises(EventsError) as info:
        validate_events(table)  # no duration column: every row at 0
    assert str(info.value) == (
        f"Eeg events need the duration of their recording (> 0 s): nan at rows 0 ({edf}); set it, "
        "or read it from the files' headers with neuralset.studies.fill_durations(events)"
    )
    events = validate_events(fill_durations(table))
    raw = mne.io.read_raw(edf, verbose="error")
    assert events["duration"].tolist() == [raw.n_times / raw.info["sfreq"], 0.2] == [6.0, 0.2]
    assert table["duration"].tolist() == [np.nan, 0.2] or table["duration"].isna().iloc[0]
    windows = sliding_windows(events, duration=1.0, stride=1.0, blocks="Eeg")
    assert windows.start.tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    eeg = EegExtractor(frequency=128.0)
    store = Store(tmp_path / "store")
    eeg.prepare(events, store, progress=False)
    n_eeg = len(raw.copy().pick("eeg").ch_names)
    assert eeg.read(windows, store).data.shape == (6, n_eeg, 128) == (6, 138, 128)


def test_fill_durations_subtracts_the_offset_and_keeps_given_durations():
    bdf = mne_testing_file("edf/test_bdf_stim_channel.bdf")  # 10 s
    table = pd.DataFrame(
        {"type": "Eeg", "start": 0.0, "timeline": ["a", "b"], "filepath": str(bdf),
         "offset": [4.0, 0.0], "duration": [0.0, 3.0]}
    )  # fmt: skip
    assert fill_durations(table)["duration"].tolist() == [6.0, 3.0]


def test_an_ecg_recording_needs_its_duration_and_fill_durations_reads_it():
    """``Ecg`` is a recording: at duration 0 it was accepted (and held no window), and
    ``fill_durations`` left it at 0."""
    bdf = mne_testing_file("edf/test_bdf_stim_channel.bdf")  # 10 s
    table = pd.DataFrame([{"type": "Ecg", "start": 0.0, "timeline": "a", "filepath": str(bdf)}])
    with pytest.raises(EventsError, match=r"^Ecg events need the duration of their recording"):
        validate_events(table)
    assert validate_events(fill_durations(table))["duration"].tolist() == [10.0]


def test_fmri_length_and_header_units():
    path = nibabel_example()  # 2 volumes; its header says TR = 2000 with the unit "sec"
    header = nib.load(str(path)).header
    assert nifti_tr(header) == (2000.0, "sec")
    assert recording_length(path, "Fmri", frequency=0.5) == 4.0  # the event's TR wins
    with pytest.raises(ValueError) as info:
        recording_length(path, "Fmri")
    assert str(info.value) == (
        f"{path}: cannot tell its length: header TR 2000 s; set the event's frequency "
        "(1 / TR in Hz) and duration"
    )
    header.set_xyzt_units("mm", "msec")
    assert nifti_tr(header) == (2.0, "msec")
    with pytest.raises(ValueError, match=r"^the length of a Spikes recording is not in a header"):
        recording_length(path, "Spikes")


CNT = Path(__file__).parents[1] / "data" / "cnt" / "test_CNT_events_mne_JWoess_clipped.cnt"


def test_fill_durations_opens_a_neuroscan_cnt_as_the_extractors_do() -> None:
    """``mne.io.read_raw`` on this real Neuroscan ``.cnt`` crashed the process (segmentation
    fault in the ANT reader it also tries); the header is now read as the extractors read it."""
    code = (
        "import pandas as pd\n"
        "from neuralset.studies.headers import fill_durations\n"
        f"table = pd.DataFrame([{{'type': 'Eeg', 'start': 0.0, 'timeline': 's1', "
        f"'filepath': {str(CNT)!r}}}])\n"
        "try:\n    fill_durations(table)\nexcept ValueError as err:\n    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == (
        f"cannot read the header of {CNT}: this Neuroscan CNT file does not record how its "
        "samples are stored, and MNE will not guess; set fill_durations.reader_options="
        "{'data_format': 'int16'} (or 'int32'; 16-bit is the most common)"
    )
    table = pd.DataFrame([{"type": "Eeg", "start": 0.0, "timeline": "s1", "filepath": str(CNT)}])
    filled = fill_durations(table, reader_options={"data_format": "int16"})
    raw = mne.io.read_raw_cnt(CNT, data_format="int16", verbose="error")
    assert filled["duration"].tolist() == [raw.n_times / raw.info["sfreq"]]

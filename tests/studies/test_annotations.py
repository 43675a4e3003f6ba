"""Annotation onsets of files whose first sample is not sample 0 (``first_samp``), as MNE counts them.

Reference: ``mne.events_from_annotations`` on the same FIF file.
"""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest

from neuralset.studies.annotations import EventMap
from neuralset.studies.recordings import RecordingsStudy


@pytest.mark.parametrize("meas_date", [1_600_000_000, None], ids=["meas_date", "no_meas_date"])
def test_onsets_from_first_sample_equal_events_from_annotations(
    tmp_path: Path, meas_date: int | None
) -> None:
    info = mne.create_info(["Fz", "Cz"], 100.0, "eeg")
    data = np.random.default_rng(0).normal(size=(2, 1000)) * 1e-6
    raw = mne.io.RawArray(data, info, first_samp=500, verbose="error")  # first_time: 5 s
    raw.set_meas_date(meas_date)
    raw.set_annotations(mne.Annotations([1.0, 2.5], [0.1, 0.2], ["face", "house"]))
    raw.save(tmp_path / "rec_raw.fif", verbose="error")
    raw = mne.io.read_raw(tmp_path / "rec_raw.fif", verbose="error")
    assert raw.first_samp == 500
    ref, event_id = mne.events_from_annotations(raw, verbose="error")
    study = RecordingsStudy(
        path=tmp_path,
        files=("*.fif",),
        annotations={d: EventMap(type="Stimulus", code=c) for d, c in event_id.items()},
        unmapped="error",
    )
    events = study.events()
    stim = events[events["type"] == "Stimulus"]
    assert stim["start"].tolist() == [1.0, 2.5]
    samples = np.round(stim["start"].to_numpy() * 100.0).astype(int) + raw.first_samp
    np.testing.assert_array_equal(samples, ref[:, 0])
    np.testing.assert_array_equal(stim["duration"], raw.annotations.duration)  # float32 in FIF

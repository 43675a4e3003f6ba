"""Synthetic iEEG/EMG/fNIRS/spikes writers: real files, read back by MNE and pynwb."""

from __future__ import annotations

import os
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neuralset.events import validate_events
from neuralset.extractors.neural.spikes import read_spike_times
from neuralset.synthetic import SYNTHETIC_WRITERS, SyntheticStudy
from neuralset.synthetic.recordings import (
    EMG_SFREQ,
    FNIRS_SFREQ,
    IEEG_SFREQ,
    SPIKE_LATENCY,
    WRITERS,
    write_ieeg,
    write_snirf,
)

DURATION = 6.0
MODALITIES = ("ieeg", "emg", "fnirs", "spikes")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStudy:
    return SyntheticStudy(
        path=tmp_path_factory.mktemp("modalities"),
        n_subjects=2,
        duration=DURATION,
        modalities=MODALITIES,
    )


def _file(study: SyntheticStudy, events: pd.DataFrame, kind: str, timeline: str) -> Path:
    rel = events.loc[(events["type"] == kind) & (events["timeline"] == timeline), "filepath"].iloc[
        0
    ]
    assert not Path(rel).is_absolute()
    return study.path / rel


def test_registered_writers() -> None:
    for name, target in WRITERS.items():
        assert SYNTHETIC_WRITERS[name] == target


def test_recording_events(events: pd.DataFrame) -> None:
    rec = events[events["type"].isin(["Ieeg", "Emg", "Fnirs", "Spikes"])]
    assert sorted(rec["type"].astype(str)) == sorted(["Ieeg", "Emg", "Fnirs", "Spikes"] * 2)
    assert (
        (rec["duration"] == DURATION).all()
        and (rec["start"] == 0).all()
        and (rec["offset"] == 0).all()
    )
    freq = dict(zip(rec["type"].astype(str), rec["frequency"]))
    assert freq == {"Ieeg": IEEG_SFREQ, "Emg": EMG_SFREQ, "Fnirs": FNIRS_SFREQ, "Spikes": 0.0}
    validate_events(rec.drop(columns=["study_root"]))


def test_ieeg_files(study: SyntheticStudy, events: pd.DataFrame) -> None:
    names = []
    for tl in ("sub-01", "sub-02"):
        raw = mne.io.read_raw(_file(study, events, "Ieeg", tl), preload=True, verbose="error")
        assert raw.info["sfreq"] == IEEG_SFREQ and raw.n_times == int(DURATION * IEEG_SFREQ)
        assert raw.ch_names[-1] == "RAMP" and raw.get_channel_types()[-1] == "misc"
        shanks = {n[:2] for n in raw.ch_names[:-1]}
        assert 2 <= len(shanks) <= 3 and all(
            3 <= sum(n.startswith(s) for n in raw.ch_names) <= 5 for s in shanks
        )
        np.testing.assert_allclose(
            raw.get_data(picks="RAMP")[0], raw.times * 1e-6, rtol=0, atol=1e-12
        )
        names.append(raw.ch_names)
    assert names[0] != names[1]  # channel sets differ per subject


def test_emg_files(study: SyntheticStudy, events: pd.DataFrame) -> None:
    path = _file(study, events, "Emg", "sub-01")
    raw = mne.io.read_raw_edf(path, infer_types=True, preload=True, verbose="error")
    assert raw.ch_names == ["EMG1", "EMG2"] and raw.get_channel_types() == ["emg", "emg"]
    assert raw.n_times == int(DURATION * EMG_SFREQ)
    assert raw.get_data()[0].std() > 2 * raw.get_data()[1].std()  # bursts on EMG1


def test_fnirs_files(study: SyntheticStudy, events: pd.DataFrame) -> None:
    raw = mne.io.read_raw_snirf(
        _file(study, events, "Fnirs", "sub-01"), preload=True, verbose="error"
    )
    assert raw.n_times == int(DURATION * FNIRS_SFREQ) and raw.info["sfreq"] == FNIRS_SFREQ
    assert raw.ch_names == [f"S{p}_D{p} {w}" for p in range(1, 5) for w in (760, 850)]
    assert set(raw.get_channel_types()) == {"fnirs_cw_amplitude"}
    np.testing.assert_allclose(mne.preprocessing.nirs.source_detector_distances(raw.info), 0.03)


def test_write_snirf_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = 1.0 + 0.1 * rng.random((50, 4))
    src = np.array([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0]])
    det = src + [0.0, 0.03, 0.0]
    write_snirf(tmp_path / "x.snirf", data, 5.0, [(1, 1), (2, 2)], (760.0, 850.0), src, det)
    raw = mne.io.read_raw_snirf(tmp_path / "x.snirf", preload=True, verbose="error")
    np.testing.assert_array_equal(raw.get_data().T, data)
    assert raw.info["sfreq"] == 5.0 and raw.ch_names == [
        "S1_D1 760",
        "S1_D1 850",
        "S2_D2 760",
        "S2_D2 850",
    ]
    np.testing.assert_allclose(raw.info["chs"][2]["loc"][3:9], np.r_[src[1], det[1]])


def test_spike_files(study: SyntheticStudy, events: pd.DataFrame) -> None:
    times, index, ids = read_spike_times(_file(study, events, "Spikes", "sub-01"))
    assert 5 <= len(ids) <= 9 and ids[0] == 100
    onsets = events.loc[
        (events["type"] == "Word") & (events["timeline"] == "sub-01"), "start"
    ].to_numpy()
    for unit in (0, 1):
        spikes = times[(index[unit - 1] if unit else 0) : index[unit]]
        assert np.isin(np.round(onsets + SPIKE_LATENCY, 9), np.round(spikes, 9)).all()
    assert times.min() >= 0 and times.max() < DURATION + SPIKE_LATENCY


def test_existing_files_are_kept_and_no_temp_left(
    study: SyntheticStudy, events: pd.DataFrame
) -> None:
    path = _file(study, events, "Ieeg", "sub-01")
    before = os.stat(path).st_mtime_ns
    words = study.words(0)
    again = write_ieeg(study, 0, path.parent, study.rng(0, "ieeg"), words)
    assert os.stat(path).st_mtime_ns == before
    assert again["filepath"].tolist() == ["sub-01/sub-01_ieeg.vhdr"]
    leftovers = [p.name for p in study.path.rglob("*") if p.name.startswith(".tmp")]
    assert leftovers == []


def test_ieeg_writer_with_a_shank_named_like_the_ramp(tmp_path):
    """Seed 7 draws an 'RA' shank first: the RAMP channel must not be taken for its contact."""
    import mne

    from neuralset.synthetic import SyntheticStudy

    study = SyntheticStudy(path=tmp_path, n_subjects=1, duration=10.0, seed=7, modalities=("ieeg",))
    events = study.events()
    path = events[events.type == "Ieeg"].iloc[0]
    raw = mne.io.read_raw(path.study_root + "/" + path.filepath, verbose="error")
    assert raw.ch_names[-1] == "RAMP"
    ramp = raw.get_data(picks=["RAMP"])[0]
    np.testing.assert_allclose(ramp * 1e6, np.arange(raw.n_times) / raw.info["sfreq"], atol=1e-3)

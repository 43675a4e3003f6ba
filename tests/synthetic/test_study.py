"""SyntheticStudy: real FIF files with known structure, deterministic and incremental."""

from __future__ import annotations

import os
import subprocess
import sys

import mne
import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, from_dict
from neuralset.synthetic.study import (
    EEG_AMPLITUDE,
    EEG_NAMES,
    MEG_AMPLITUDE,
    N_RESPONSE_CHANNELS,
    RESPONSE_LATENCY,
    SYNTHETIC_WRITERS,
    VOCABULARY,
    SyntheticStudy,
)


def _raw(
    study: SyntheticStudy, events: pd.DataFrame, kind: str, timeline: str = "sub-01"
) -> mne.io.Raw:
    row = events[(events["type"] == kind) & (events["timeline"] == timeline)].iloc[0]
    return mne.io.read_raw_fif(study.path / row["filepath"], preload=True, verbose="error")


def test_events_table(small_study, small_events):
    ev = small_events
    assert small_study.timelines() == ["sub-01", "sub-02"]
    assert list(ev["timeline"].cat.categories) == ["sub-01", "sub-02"]
    for kind, sfreq in (("Meg", 1000.0), ("Eeg", 500.0)):
        rec = ev[ev["type"] == kind]
        assert len(rec) == 2
        assert (rec["start"] == 0.0).all() and (rec["offset"] == 0.0).all()
        assert (rec["frequency"] == sfreq).all()
        assert (rec["duration"] == 12.0).all()
        for tl, path in zip(rec["timeline"], rec["filepath"]):
            assert path == f"{tl}/{tl}_{kind.lower()}.fif"  # relative to the study path
            assert (small_study.path / path).exists()
    words = ev[ev["type"] == "Word"]
    assert set(words["language"]) == {"en"}
    assert set(words["text"]) <= set(VOCABULARY)
    # onsets on integer samples at both rates, ~0.3 s apart, inside [1, duration - 1]
    for sfreq in (1000.0, 500.0):
        samples = words["start"].to_numpy() * sfreq
        np.testing.assert_allclose(samples, np.round(samples), atol=1e-9)
    for _, group in words.groupby("timeline", observed=True):
        gaps = np.diff(group["start"].to_numpy())
        assert gaps.min() >= 0.24 - 1e-9 and gaps.max() <= 0.36 + 1e-9
        assert abs(gaps.mean() - 0.3) < 0.03
        assert group["start"].min() == 1.0 and group["start"].max() <= 11.0
    # every word has a Stimulus at its onset with its category
    stim = ev[ev["type"] == "Stimulus"]
    assert np.array_equal(stim["start"].to_numpy(), words["start"].to_numpy())
    assert [VOCABULARY[t] for t in words["text"]] == list(
        zip(stim["code"].astype(int), stim["description"])
    )
    # sentences of 8-12 words (the last may be shorter) whose text joins their words
    sentences = ev[ev["type"] == "Sentence"]
    for _, s in sentences.iterrows():
        inside = words[(words["timeline"] == s["timeline"]) & (words["start"] >= s["start"])]
        inside = inside[inside["start"] < s["start"] + s["duration"]]
        assert " ".join(inside["text"]) == s["text"]
        assert (inside["sentence"] == s["text"]).all()
        assert len(inside) <= 12
    sizes = sentences.groupby("timeline", observed=True)["text"].apply(
        lambda t: [len(x.split()) for x in t]
    )
    assert all(8 <= n <= 12 for sz in sizes for n in sz[:-1])


def test_meg_file(small_study, small_events):
    raw = _raw(small_study, small_events, "Meg")
    assert raw.info["sfreq"] == 1000.0
    assert raw.n_times == 12000
    assert raw.ch_names[0] == "RAMP"
    assert raw.get_channel_types() == ["misc", "mag", "grad", "grad", "mag", "grad", "grad"]
    # the ramp holds each sample's own time (FIF single precision)
    ramp = raw.get_data(picks="RAMP")[0]
    np.testing.assert_array_equal(ramp, (np.arange(12000) / 1000.0).astype(np.float32))
    # the response: average over words peaks RESPONSE_LATENCY after onset with the known amplitude
    onsets = small_events[(small_events["type"] == "Word") & (small_events["timeline"] == "sub-01")]
    samples = np.round(onsets["start"].to_numpy() * 1000).astype(int)
    data = raw.get_data()
    erp = np.stack([data[:, s : s + 300] for s in samples]).mean(axis=0)
    mag = erp[1]  # first MEG sensor: mag, positive sign
    assert abs(int(np.argmax(mag)) - RESPONSE_LATENCY * 1000) <= 2
    assert mag.max() == pytest.approx(MEG_AMPLITUDE, rel=0.1)
    assert erp[2].min() < 0  # alternating signs
    # sensors beyond the first N_RESPONSE_CHANNELS carry no response (here all 6 do)
    assert N_RESPONSE_CHANNELS >= 6


def test_eeg_file(small_study, small_events):
    raw = _raw(small_study, small_events, "Eeg")
    assert raw.info["sfreq"] == 500.0 and raw.n_times == 6000
    assert raw.ch_names == ["RAMP", *EEG_NAMES[:8]]
    assert raw.get_channel_types() == ["misc"] + ["eeg"] * 8
    assert len(raw.info["bads"]) == 1 and raw.info["bads"][0] in EEG_NAMES[:8]
    pos = np.array([ch["loc"][:3] for ch in raw.info["chs"][1:]])
    assert np.isfinite(pos).all() and (np.abs(pos).sum(axis=1) > 0).all()  # montage set
    np.testing.assert_array_equal(
        raw.get_data(picks="RAMP")[0], (np.arange(6000) / 500.0).astype(np.float32)
    )
    onsets = small_events[(small_events["type"] == "Word") & (small_events["timeline"] == "sub-01")]
    samples = np.round(onsets["start"].to_numpy() * 500).astype(int)
    erp = np.stack([raw.get_data()[1, s : s + 150] for s in samples]).mean(axis=0)
    assert erp.max() == pytest.approx(EEG_AMPLITUDE, rel=0.15)
    # every EEG channel name exists in MNE's standard 10-20 montage
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        montage = mne.channels.make_standard_montage("standard_1020")
    assert set(EEG_NAMES) <= set(montage.ch_names)


def test_deterministic_and_incremental(tmp_path):
    a = SyntheticStudy(
        path=tmp_path / "a", n_subjects=1, duration=6.0, meg_channels=3, eeg_channels=4
    )
    b = SyntheticStudy(
        path=tmp_path / "b", n_subjects=1, duration=6.0, meg_channels=3, eeg_channels=4
    )
    ev_a, ev_b = a.events(), b.events()
    pd.testing.assert_frame_equal(ev_a.drop(columns="study_root"), ev_b.drop(columns="study_root"))
    for name in ("sub-01/sub-01_meg.fif", "sub-01/sub-01_eeg.fif"):
        ra = mne.io.read_raw_fif(a.path / name, preload=True, verbose="error")
        rb = mne.io.read_raw_fif(b.path / name, preload=True, verbose="error")
        np.testing.assert_array_equal(ra.get_data(), rb.get_data())
        assert ra.info["bads"] == rb.info["bads"]
    meg = a.path / "sub-01/sub-01_meg.fif"
    eeg = a.path / "sub-01/sub-01_eeg.fif"
    stamp = (meg.stat().st_mtime_ns, eeg.stat().st_mtime_ns)
    # another seed changes the signals
    c = SyntheticStudy(
        path=tmp_path / "c", n_subjects=1, duration=6.0, meg_channels=3, eeg_channels=4, seed=1
    )
    c.build()
    rc = mne.io.read_raw_fif(c.path / "sub-01/sub-01_meg.fif", preload=True, verbose="error")
    ra = mne.io.read_raw_fif(meg, preload=True, verbose="error")
    assert not np.array_equal(rc.get_data()[1:], ra.get_data()[1:])
    # adding a subject writes only its files; subject 1 is untouched and identical
    a2 = a.replace(n_subjects=2)
    ev2 = a2.events()
    assert (meg.stat().st_mtime_ns, eeg.stat().st_mtime_ns) == stamp
    pd.testing.assert_frame_equal(
        ev2[ev2["timeline"] == "sub-01"]
        .drop(columns="study_root")
        .reset_index(drop=True)
        .astype(object),
        ev_a.drop(columns="study_root").astype(object),
        check_categorical=False,
    )
    assert (a.path / "sub-02/sub-02_meg.fif").exists()
    # an interrupted build (a file missing, a stale temporary file left) is resumed
    eeg.unlink()
    (meg.parent / ".tmp-999-sub-01_eeg.fif").write_bytes(b"partial")
    a2.build()
    assert meg.stat().st_mtime_ns == stamp[0]
    np.testing.assert_array_equal(
        mne.io.read_raw_fif(eeg, preload=True, verbose="error").get_data(),
        mne.io.read_raw_fif(
            b.path / "sub-01/sub-01_eeg.fif", preload=True, verbose="error"
        ).get_data(),
    )
    # other generation parameters at the same path: a clear error, never mixed files
    with pytest.raises(
        ConfigError, match=r"SyntheticStudy.path: .* other parameters \(duration=6.0\)"
    ):
        a.replace(duration=8.0).build()


def test_128_channels_and_modalities(tmp_path):
    study = SyntheticStudy(
        path=tmp_path / "s", n_subjects=1, duration=5.0, meg_channels=128, modalities=("meg",)
    )
    ev = study.events()
    assert set(ev["type"].astype(str)) == {"Meg", "Word", "Sentence", "Stimulus"}
    raw = mne.io.read_raw_fif(
        study.path / ev[ev["type"] == "Meg"]["filepath"].iloc[0], verbose="error"
    )
    assert len(raw.ch_names) == 129
    assert (
        raw.get_channel_types().count("mag") == 43 and raw.get_channel_types().count("grad") == 85
    )
    assert not (study.path / "sub-01/sub-01_eeg.fif").exists()


def _custom_writer(study, subject, folder, rng, words):  # noqa: ANN001, ANN202
    target = folder / "custom.npy"
    if not target.exists():
        np.save(target, rng.standard_normal(3))
    w = words[words["type"] == "Word"]
    return pd.DataFrame(
        {
            "type": "Stimulus",
            "start": w["start"],
            "duration": 0.0,
            "timeline": w["timeline"],
            "code": 99,
            "description": "custom",
        }
    )


def test_pluggable_writer(tmp_path, monkeypatch):
    monkeypatch.setitem(SYNTHETIC_WRITERS, "custom", "tests.synthetic.test_study:_custom_writer")
    study = SyntheticStudy(path=tmp_path / "s", n_subjects=1, duration=5.0, modalities=("custom",))
    ev = study.events()
    assert (study.path / "sub-01/custom.npy").exists()
    assert (ev["code"] == 99).sum() == (ev["type"] == "Word").sum()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"n_subjects": 0}, r"SyntheticStudy.n_subjects: must be >= 1, got 0"),
        ({"duration": 1.0}, r"SyntheticStudy.duration: must be >= 5 seconds"),
        ({"meg_channels": 0}, r"SyntheticStudy.meg_channels: must be >= 1"),
        ({"eeg_channels": 500}, r"SyntheticStudy.eeg_channels: must be between 1 and 86"),
        ({"meg_sfreq": 999.5}, r"SyntheticStudy.meg_sfreq: must be a positive whole number of Hz"),
        ({"word_interval": 0.0}, r"SyntheticStudy.word_interval"),
        (
            {"modalities": ("meg", "megg")},
            r"unknown modality 'megg'; allowed modalities: .*eeg.*meg",
        ),
        ({"modalities": ()}, r"SyntheticStudy.modalities: give at least one"),
        ({"n_subjects": "2"}, r"SyntheticStudy.n_subjects: expected int, got '2'"),
    ],
)
def test_validation(tmp_path, changes, match):
    with pytest.raises(ConfigError, match=match):
        SyntheticStudy(path=tmp_path / "s", **changes)
    assert not (tmp_path / "s").exists()  # nothing written by a bad config


def test_yaml_kind_and_lazy_import(tmp_path):
    study = from_dict({"kind": "synthetic", "path": str(tmp_path / "s"), "n_subjects": 1})
    assert isinstance(study, SyntheticStudy) and study.n_subjects == 1
    code = "import sys, neuralset.synthetic.study; print('mne' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert out.stdout.strip() == "False"

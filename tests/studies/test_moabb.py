"""MoabbStudy on MOABB's own FakeDataset, offline, for several paradigms (issue 9, section 4).

Reference: MOABB's paradigms (``paradigm.get_data(..., return_epochs=True)``, filters off) on the
same dataset, and ``mne.Epochs`` on MOABB's raw: same trials, same labels, same windows.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moabb")

from neuralset.config import ConfigError, from_dict  # noqa: E402
from neuralset.extractors import EegExtractor  # noqa: E402
from neuralset.segments import segment_on_triggers  # noqa: E402
from neuralset.store import Store  # noqa: E402
from neuralset.studies.moabb import MoabbStudy  # noqa: E402

CASES = {
    "imagery": ("left_hand", "right_hand"),
    "p300": ("Target", "NonTarget"),
    "ssvep": ("13", "15", "17"),
}


def _params(paradigm: str, stim: bool = True) -> dict:
    return {
        "paradigm": paradigm,
        "event_list": CASES[paradigm],
        "n_sessions": 2 if paradigm == "imagery" else 1,
        "n_runs": 2 if paradigm == "imagery" else 1,
        "n_subjects": 3,
        "duration": 40,
        "sfreq": 128,
        "seed": 7,
        "stim": stim,
        "annotations": not stim,
    }


def _paradigm(name: str):  # noqa: ANN202
    from moabb.paradigms import P300, SSVEP, MotorImagery

    if name == "imagery":
        return MotorImagery(fmin=None, fmax=None, n_classes=2)
    if name == "p300":
        return P300(fmin=None, fmax=None)
    return SSVEP(fmin=None, fmax=None, n_classes=3)


@pytest.mark.parametrize(
    ("paradigm", "stim"), [("imagery", True), ("imagery", False), ("p300", True), ("ssvep", True)]
)
def test_windows_equal_moabb_epochs(paradigm: str, stim: bool, tmp_path: Path) -> None:
    from moabb.datasets.fake import FakeDataset

    params = _params(paradigm, stim)
    study = MoabbStudy(
        path=tmp_path / "moabb", dataset="FakeDataset", dataset_params=params, subjects=(1, 3)
    )
    events = study.events()
    tmin, tmax = study.interval()
    sfreq = 128.0
    segments = segment_on_triggers(
        events, "Stimulus", offset=tmin, duration=tmax - tmin + 1 / sfreq
    ).require("Eeg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        epochs, labels, meta = _paradigm(paradigm).get_data(
            FakeDataset(**params), [1, 3], return_epochs=True
        )
    # the same trials, in the same order, with the same labels
    stim_events = events.iloc[segments.trigger]
    assert stim_events["description"].tolist() == list(labels)
    assert stim_events["subject"].tolist() == [str(s) for s in meta["subject"]]
    assert stim_events["session"].tolist() == [str(s) for s in meta["session"]]
    # sample numbers of the first run (MOABB shifts those of later runs when it concatenates)
    first = (meta["subject"] == 1).to_numpy() & (meta["run"] == meta["run"].iloc[0]).to_numpy()
    first &= (meta["session"] == meta["session"].iloc[0]).to_numpy()
    np.testing.assert_array_equal(
        np.round(stim_events["start"].to_numpy()[first] * sfreq).astype(int),
        epochs.events[first, 0],
    )
    store = Store(tmp_path / "store")
    extractor = EegExtractor(frequency=sfreq)
    extractor.prepare(events, store, progress=False)
    got = extractor.read(segments, store).data
    np.testing.assert_allclose(got, epochs.get_data(), rtol=1e-6, atol=1e-12)


def test_files_written_once_and_read_back_without_moabb(tmp_path: Path) -> None:
    import mne

    params = _params("imagery")
    study = MoabbStudy(
        path=tmp_path / "m", dataset="FakeDataset", dataset_params=params, subjects=(2,)
    )
    events = study.events()
    recs = events[events["type"] == "Eeg"]
    assert recs["timeline"].tolist() == [
        "sub-2_ses-0_run-0", "sub-2_ses-0_run-1", "sub-2_ses-1_run-0", "sub-2_ses-1_run-1",
    ]  # fmt: skip
    assert recs["file_present"].all() and (recs["duration"] == 40.0).all()
    fif = tmp_path / "m" / recs["filepath"].iloc[0]
    raw = mne.io.read_raw(fif, verbose="error")
    assert raw.n_times == 40 * 128 and raw.info["sfreq"] == 128.0
    mtime = fif.stat().st_mtime_ns
    # a second study over the same folder reads the manifests: nothing rewritten
    again = MoabbStudy(
        path=tmp_path / "m", dataset="FakeDataset", dataset_params=params, subjects=(2,)
    )
    assert again.events()["start"].tolist() == events["start"].tolist()
    assert fif.stat().st_mtime_ns == mtime
    assert not list((tmp_path / "m").rglob(".tmp-*"))


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MoabbStudy.dataset: moabb.datasets has no 'BNCI2099'"):
        MoabbStudy(path=tmp_path, dataset="BNCI2099").events()
    with pytest.raises(ConfigError, match=r"MoabbStudy.subjects: \[9\] not in FakeDataset's"):
        MoabbStudy(
            path=tmp_path, dataset="FakeDataset", dataset_params={"n_subjects": 2}, subjects=(9,)
        ).events()
    with pytest.raises(ConfigError, match=r"MoabbStudy.dataset_params: FakeDataset: "):
        MoabbStudy(path=tmp_path, dataset="FakeDataset", dataset_params={"nope": 1}).events()
    study = from_dict({"kind": "moabb", "path": str(tmp_path), "dataset": "BNCI2014_001",
                       "subjects": [1, 2]})  # fmt: skip
    assert isinstance(study, MoabbStudy) and study.subjects == (1, 2)


def test_preview_writes_nothing(tmp_path: Path) -> None:
    """``neuralset inspect`` previews events: a MOABB study not written yet says so, writes nothing."""
    study = MoabbStudy(
        path=tmp_path / "m", dataset="FakeDataset", dataset_params=_params("p300"), subjects=(1,)
    )
    with pytest.raises(ConfigError) as err:
        study.preview_events()
    assert str(err.value) == (
        f"MoabbStudy: subjects [1] of FakeDataset are not written under {tmp_path / 'm'} yet; "
        "study.events() (or `neuralset prepare`) has MOABB download them and writes their files"
    )
    assert not (tmp_path / "m").exists()
    study.events()
    assert study.preview_events()["type"].value_counts().to_dict() == {"Stimulus": 60, "Eeg": 1}

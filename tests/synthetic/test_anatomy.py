"""The synthetic study's anatomy modality: transforms, atlas, digitisation, empty-room recording."""

from __future__ import annotations

import mne
import nibabel as nib
import numpy as np
import pytest

from neuralset.config import ConfigError
from neuralset.extractors.neural.mne.head_models import template_path
from neuralset.synthetic import SyntheticStudy
from neuralset.synthetic.anatomy import (
    EMPTY_ROOM_DURATION,
    HELMET_RADIUS,
    N_HEAD_POINTS,
    PARCELS,
    subject_trans,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> SyntheticStudy:
    study = SyntheticStudy(
        path=tmp_path_factory.mktemp("anat") / "study",
        n_subjects=2,
        duration=5.0,
        meg_channels=12,
        meg_sfreq=100.0,
        eeg_channels=4,
        eeg_sfreq=100.0,
        modalities=("meg", "eeg", "anatomy"),
    )
    study.build()
    return study


def test_entities_list_every_subjects_files(study):
    tables = study.entities()
    anatomy = tables["anatomy"]
    assert anatomy.keys() == [("01", ""), ("02", "")]
    assert anatomy.frame["trans"].tolist() == [
        "sub-01/anat/sub-01_trans.fif",
        "sub-02/anat/sub-02_trans.fif",
    ]
    assert anatomy.frame["atlas"].tolist()[0] == "sub-01/anat/sub-01_dseg.mgz"
    assert anatomy.frame["t1w"].tolist() == ["", ""]  # no T1w is written
    assert tables["empty_room"].frame["empty_room"].tolist() == [
        "sub-01/meg/sub-01_task-noise_meg.fif",
        "sub-02/meg/sub-02_task-noise_meg.fif",
    ]
    events = study.events()
    assert set(events["subject"]) == {"01", "02"}
    assert (events.loc[events["timeline"] == "sub-02", "subject"] == "02").all()


def test_transforms_are_the_template_moved_a_few_mm(study):
    template = mne.read_trans(template_path("trans"), verbose="error")["trans"]
    shifts = []
    for subject in (0, 1):
        path = study.path / f"sub-{subject + 1:02d}" / "anat" / f"sub-{subject + 1:02d}_trans.fif"
        written = mne.read_trans(path, verbose="error")
        assert (written["from"], written["to"]) == (4, 5)  # head -> MRI
        # FIF stores transforms in float32
        np.testing.assert_allclose(
            written["trans"], subject_trans(study, subject)["trans"], rtol=1e-6, atol=1e-8
        )
        np.testing.assert_allclose(written["trans"][:3, :3], template[:3, :3], atol=1e-7)
        shifts.append(written["trans"][:3, 3] - template[:3, 3])
    assert all(0 < np.linalg.norm(s) < 0.02 for s in shifts)
    assert not np.allclose(shifts[0], shifts[1])


def test_meg_files_carry_sensors_and_digitisation(study):
    raw = mne.io.read_raw_fif(study.path / "sub-01" / "sub-01_meg.fif", verbose="error")
    meg = mne.pick_types(raw.info, meg=True)
    coils = [raw.info["chs"][i]["coil_type"] for i in meg]
    assert coils == [3024, 3012, 3012] * 4  # Vectorview magnetometer, planar gradiometers
    positions = np.array([raw.info["chs"][i]["loc"][:3] for i in meg])
    radius = np.linalg.norm(positions - [0.0, 0.0, 0.04], axis=1)
    np.testing.assert_allclose(radius, HELMET_RADIUS)
    kinds = [int(d["kind"]) for d in raw.info["dig"]]
    assert kinds.count(1) == 3 and kinds.count(4) == N_HEAD_POINTS  # fiducials, head shape
    # every sensor lies outside the scalp: at least 1 cm from every head-shape point
    head = np.array([d["r"] for d in raw.info["dig"] if int(d["kind"]) == 4])
    gaps = np.linalg.norm(positions[:, None] - head[None], axis=2).min()
    assert gaps > 0.01
    # a sphere fits the head points; a forward model can be built on it
    sphere = mne.make_sphere_model("auto", "auto", raw.info, verbose="error")
    assert 0.07 < sphere.radius < 0.11


def test_empty_room_matches_the_recordings_sensors(study):
    empty = mne.io.read_raw_fif(
        study.path / "sub-02" / "meg" / "sub-02_task-noise_meg.fif", verbose="error"
    )
    raw = mne.io.read_raw_fif(study.path / "sub-02" / "sub-02_meg.fif", verbose="error")
    assert empty.ch_names == [n for n in raw.ch_names if n.startswith("MEG")]
    assert empty.n_times == int(EMPTY_ROOM_DURATION * study.meg_sfreq)
    for a, b in zip(empty.info["chs"], raw.info["chs"][1:]):
        np.testing.assert_array_equal(a["loc"], b["loc"])


def test_atlas_has_the_eight_parcels(study):
    anat = study.path / "sub-01" / "anat"
    image = nib.load(str(anat / "sub-01_dseg.mgz"))
    values = np.asarray(image.dataobj)
    assert sorted(np.unique(values).tolist()) == list(PARCELS)
    lines = (anat / "sub-01_dseg.tsv").read_text().splitlines()
    assert lines == ["index\tname", *(f"{k}\t{v}" for k, v in PARCELS.items())]


def test_the_same_folder_without_anatomy_is_refused(study):
    with pytest.raises(ConfigError) as err:
        SyntheticStudy(
            path=study.path, n_subjects=2, duration=5.0, meg_channels=12, meg_sfreq=100.0,
            eeg_channels=4, eeg_sfreq=100.0, modalities=("meg",),
        ).build()  # fmt: skip
    assert str(err.value) == (
        f"SyntheticStudy.path: {study.path} holds a synthetic study written with other "
        "parameters (anatomy=1); use another path or delete that folder"
    )

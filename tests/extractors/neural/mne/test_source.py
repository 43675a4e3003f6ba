"""Source-space MEG/EEG against MNE's own inverse, and the anatomy link in keys.

Reference values are computed here with MNE calls only (``make_bem_model``/``make_bem_solution``
on the template inner skull, ``setup_volume_source_space``, ``make_forward_solution``,
``make_inverse_operator``, ``apply_inverse_raw``, ``extract_label_time_course``) from the same
files. The only difference allowed is the float32 storage of the extractor:
``|ours - ref| <= 1e-5 |ref| + 1e-6 max|ref|``.
"""

from __future__ import annotations

import shutil

import mne
import numpy as np
import pytest

from neuralset.config import ConfigError
from neuralset.entities import EntityError
from neuralset.extractors.neural.mne import MegExtractor
from neuralset.extractors.neural.mne.head_models import template_path
from neuralset.extractors.neural.mne.source import (
    EegSourceExtractor,
    MegSourceExtractor,
    NoiseCovariance,
)
from neuralset.store import Store
from neuralset.studies.anatomy import read_atlas_labels
from neuralset.synthetic import SyntheticStudy

SPACING = 20.0
RTOL, ATOL_OF_MAX = 1e-5, 1e-6
EMPTY_ROOM = NoiseCovariance(source="empty_room")
BASELINE = NoiseCovariance(span=(0.0, 0.9))  # the first word is at 1.0 s


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> SyntheticStudy:
    study = SyntheticStudy(
        path=tmp_path_factory.mktemp("source") / "study",
        n_subjects=2,
        duration=6.0,
        meg_channels=30,
        meg_sfreq=200.0,
        eeg_channels=16,
        eeg_sfreq=100.0,
        seed=3,
        modalities=("meg", "eeg", "anatomy"),
    )
    study.build()
    return study


@pytest.fixture(scope="module")
def template_bem(tmp_path_factory):
    """The reference one-layer BEM: MNE's template inner skull at ico 3, solved by MNE."""
    surface = mne.read_bem_surfaces(template_path("inner_skull"), verbose="error")[0]
    subjects = tmp_path_factory.mktemp("subjects")
    (subjects / "fsaverage" / "bem").mkdir(parents=True)
    mne.write_surface(
        subjects / "fsaverage" / "bem" / "inner_skull.surf", surface["rr"] * 1e3, surface["tris"]
    )
    model = mne.make_bem_model(
        "fsaverage", ico=3, conductivity=(0.3,), subjects_dir=subjects, verbose="error"
    )
    return mne.make_bem_solution(model, verbose="error")


def _stored(extractor, events, store, subject: int = 0) -> tuple[np.ndarray, dict]:
    item = extractor.items(events)[subject]
    return np.asarray(store.get_arrays(item.key)["data"]), store.meta(item.key)


def _assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL_OF_MAX * np.abs(ref).max())


def _reference_meg(study, template_bem, method: str, *, atlas: bool = False):
    sub = study.path / "sub-01"
    raw = mne.io.read_raw_fif(sub / "sub-01_meg.fif", verbose="error").pick(["mag", "grad"])
    raw.load_data(verbose="error")
    empty = mne.io.read_raw_fif(sub / "meg" / "sub-01_task-noise_meg.fif", verbose="error")
    empty.pick(raw.ch_names).load_data(verbose="error")
    cov = mne.compute_raw_covariance(empty, verbose="error")
    trans = mne.read_trans(sub / "anat" / "sub-01_trans.fif", verbose="error")
    kwargs = {"mri": str(sub / "anat" / "sub-01_dseg.mgz"), "add_interpolator": False}
    src = mne.setup_volume_source_space(
        pos=SPACING, bem=template_bem, verbose="error", **(kwargs if atlas else {})
    )
    fwd = mne.make_forward_solution(raw.info, trans, src, template_bem, verbose="error")
    inv = mne.minimum_norm.make_inverse_operator(raw.info, fwd, cov, verbose="error")
    stc = mne.minimum_norm.apply_inverse_raw(raw, inv, 1 / 9.0, method, verbose="error")
    return stc, inv


@pytest.mark.parametrize("method", ["MNE", "dSPM", "sLORETA", "eLORETA"])
def test_meg_sources_equal_apply_inverse_raw(study, template_bem, method, tmp_path):
    events = study.events()
    store = Store(tmp_path / "store")
    extractor = MegSourceExtractor(
        noise_cov=EMPTY_ROOM, method=method, head_model="bem", spacing=SPACING
    )
    extractor.prepare(events, store, progress=False)
    ours, meta = _stored(extractor, events, store)
    stc, inv = _reference_meg(study, template_bem, method)
    _assert_close(ours, stc.data.T)
    assert meta["ch_names"] == [f"vox{v}" for v in stc.vertices[0]]
    np.testing.assert_array_equal(meta["positions"], inv["src"][0]["rr"][stc.vertices[0]])
    assert meta["method"] == method and meta["source_sfreq"] == 200.0


def test_meg_parcels_equal_extract_label_time_course(study, template_bem, tmp_path):
    events = study.events()
    store = Store(tmp_path / "store")
    extractor = MegSourceExtractor(
        noise_cov=EMPTY_ROOM, head_model="bem", spacing=SPACING, parcels=True
    )
    extractor.prepare(events, store, progress=False)
    ours, meta = _stored(extractor, events, store)
    stc, inv = _reference_meg(study, template_bem, "dSPM", atlas=True)
    anat = study.path / "sub-01" / "anat"
    labels = read_atlas_labels(anat / "sub-01_dseg.tsv")
    ref = mne.extract_label_time_course(
        stc, (str(anat / "sub-01_dseg.mgz"), labels), inv["src"], mode="mean",
        mri_resolution=False, verbose="error",
    )  # fmt: skip
    assert meta["ch_names"] == list(labels) and len(labels) == 8
    _assert_close(ours, ref.T)
    assert (ref.std(axis=1) > 0).all()  # every parcel holds sources


def test_eeg_sources_on_a_sphere_equal_apply_inverse_raw(study, tmp_path):
    events = study.events()
    store = Store(tmp_path / "store")
    extractor = EegSourceExtractor(noise_cov=BASELINE, method="sLORETA", spacing=SPACING)
    extractor.prepare(events, store, progress=False)
    ours, _ = _stored(extractor, events, store, subject=1)
    raw = mne.io.read_raw_fif(study.path / "sub-02" / "sub-02_eeg.fif", verbose="error")
    raw.pick("eeg").load_data(verbose="error")
    raw.set_eeg_reference("average", projection=True, verbose="error")
    cov = mne.compute_raw_covariance(raw, tmin=0.0, tmax=0.9, verbose="error")
    sphere = mne.make_sphere_model("auto", "auto", raw.info, verbose="error")
    src = mne.setup_volume_source_space(pos=SPACING, sphere=sphere, verbose="error")
    fwd = mne.make_forward_solution(raw.info, None, src, sphere, verbose="error")
    inv = mne.minimum_norm.make_inverse_operator(raw.info, fwd, cov, verbose="error")
    stc = mne.minimum_norm.apply_inverse_raw(raw, inv, 1 / 9.0, "sLORETA", verbose="error")
    _assert_close(ours, stc.data.T)


def test_a_changed_transform_recomputes_exactly_its_subject(study, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(study.path, root)
    moved = SyntheticStudy(
        path=root, n_subjects=2, duration=6.0, meg_channels=30, meg_sfreq=200.0,
        eeg_channels=16, eeg_sfreq=100.0, seed=3, modalities=("meg", "eeg", "anatomy"),
    )  # fmt: skip
    events = moved.events()
    store = Store(tmp_path / "store")
    source = MegSourceExtractor(noise_cov=BASELINE, head_model="bem", spacing=SPACING)
    sensors = MegExtractor()
    before = [i.key for i in source.items(events)]
    sensor_keys = [i.key for i in sensors.items(events)]
    report = source.prepare(events, store, progress=False)
    assert (report.computed, report.cached) == (2, 0)
    old = np.asarray(store.get_arrays(before[1])["data"]).copy()
    # subject 02 is coregistered again: its transform moves by 5 mm
    trans_path = root / "sub-02" / "anat" / "sub-02_trans.fif"
    trans = mne.read_trans(trans_path, verbose="error")
    trans["trans"][:3, 3] += [0.005, 0.0, 0.0]
    mne.write_trans(trans_path, trans, overwrite=True, verbose="error")
    after = [i.key for i in source.items(events)]
    assert after[0] == before[0] and after[1] != before[1]
    assert [i.key for i in sensors.items(events)] == sensor_keys  # sensors do not read it
    report = source.prepare(events, store, progress=False)
    assert (report.computed, report.cached) == (1, 1)
    new = np.asarray(store.get_arrays(after[1])["data"])
    assert not np.allclose(new, old)  # the new transform changed the sources


def test_sphere_model_reads_no_anatomy(study):
    events = study.events()
    extractor = MegSourceExtractor(noise_cov=BASELINE, spacing=SPACING)
    assert extractor.entity_columns() == {}
    assert extractor.linked_entities(events) == []
    meg = MegExtractor()
    # items are the sensor pipeline's keys chained with nothing: same payload paths
    assert [i.payload["path"] for i in extractor.items(events)] == [
        i.payload["path"] for i in meg.items(events)
    ]


def test_a_subject_without_transform_is_named_before_any_work(study, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(study.path, root)
    events = SyntheticStudy(
        path=root, n_subjects=2, duration=6.0, meg_channels=30, meg_sfreq=200.0,
        eeg_channels=16, eeg_sfreq=100.0, seed=3, modalities=("meg", "eeg", "anatomy"),
    ).events()  # fmt: skip
    (root / "sub-02" / "anat" / "sub-02_trans.fif").unlink()  # (a rebuild would write it again)
    extractor = MegSourceExtractor(noise_cov=EMPTY_ROOM, head_model="bem", spacing=SPACING)
    reports = extractor.linked_entities(events)
    assert [r.describe() for r in reports] == [
        "entity anatomy (by subject, session; uses trans): 1 linked, 1 lacking: "
        "subject='02' lacks trans",
        "entity empty_room (by subject, session; uses empty_room): 2 linked, none lacking",
    ]
    store = Store(tmp_path / "store")
    with pytest.raises(EntityError) as err:
        extractor.prepare(events, store, progress=False)
    assert str(err.value) == (
        "MegSourceExtractor: entity anatomy (by subject, session; uses trans): 1 linked, "
        "1 lacking: subject='02' lacks trans; add the files to the study (see "
        "neuralset.studies.anatomy for where they go), use head_model='sphere', or leave these "
        "subjects' events out"
    )
    assert list(store.keys()) == []


def test_eeg_bem_needs_the_subjects_own_bem(study):
    extractor = EegSourceExtractor(noise_cov=BASELINE, head_model="bem", spacing=SPACING)
    reports = extractor.linked_entities(study.events())
    assert reports[0].lacking == {("01", ""): ("bem",), ("02", ""): ("bem",)}


def test_configuration_errors():
    with pytest.raises(ConfigError) as err:
        NoiseCovariance()
    assert str(err.value) == (
        "NoiseCovariance.span: declare the baseline span (start, stop) in seconds from the "
        "recording start, e.g. (0.0, 0.9) before the first stimulus; or use source='empty_room'"
    )
    with pytest.raises(ConfigError) as err:
        MegSourceExtractor(noise_cov=BASELINE, parcels=True)
    assert str(err.value) == (
        "MegSourceExtractor.parcels: parcels come from the subject's atlas in MRI space; use "
        "head_model='bem' (or parcels=False for one time course per source)"
    )
    with pytest.raises(ConfigError) as err:
        EegSourceExtractor(noise_cov=EMPTY_ROOM)
    assert str(err.value) == (
        "EegSourceExtractor.noise_cov: empty-room recordings are MEG only; use "
        "NoiseCovariance(source='baseline', span=(start, stop))"
    )
    with pytest.raises(ConfigError) as err:
        MegSourceExtractor(noise_cov={"span": (0.5, 0.2)})
    assert str(err.value) == (
        "MegSourceExtractor.noise_cov: NoiseCovariance.span: expected 0 <= start < stop "
        "seconds, got (0.5, 0.2)"
    )


def test_noise_spans_past_the_end_are_named_before_any_work(study, tmp_path):
    events = study.events()
    store = Store(tmp_path / "store")
    # EEG of sub-01: 600 samples at 100 Hz, resampled to 50 Hz: its last sample at 5.98 s
    late = EegSourceExtractor(
        noise_cov=NoiseCovariance(span=(0.0, 5.99)), spacing=SPACING, frequency=50.0
    )
    with pytest.raises(ConfigError) as err:
        late.prepare(events, store, progress=False)
    assert str(err.value) == (
        "EegSourceExtractor.noise_cov.span: (0.0, 5.99) runs past the end of Eeg event 1 "
        "(timeline sub-01, file sub-01/sub-01_eeg.fif) (5.980 s); declare a span inside the "
        "recording"
    )
    EegSourceExtractor(
        noise_cov=NoiseCovariance(span=(0.0, 5.98)), spacing=SPACING, frequency=50.0
    ).preflight(events, store)
    # the empty-room recording (10 s at 200 Hz): MNE would silently cover only what exists
    empty = MegSourceExtractor(noise_cov=NoiseCovariance(source="empty_room", span=(0.0, 60.0)))
    with pytest.raises(ConfigError) as err:
        empty.prepare(events, store, progress=False)
    assert str(err.value) == (
        "MegSourceExtractor.noise_cov.span: (0.0, 60.0) runs past the end of the empty-room "
        f"recording {study.path}/sub-01/meg/sub-01_task-noise_meg.fif of Meg event 0 (timeline "
        "sub-01, file sub-01/sub-01_meg.fif) (9.995 s); declare a span inside the recording, or "
        "span=None for all of it"
    )
    assert list(store.keys()) == []

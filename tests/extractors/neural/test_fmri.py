"""FmriExtractor against nilearn's own maskers, vol_to_surf and signal.clean on the same images."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.extractors.neural.fmri import FmriExtractor, resample_linear
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

TR = 2.0
N_VOL = 40
# float32 storage against nilearn's float64 results
RTOL, ATOL = 1e-4, 1e-4


@pytest.fixture(scope="module")
def template():
    from nilearn import datasets

    return datasets.load_mni152_template(resolution=8)  # (26, 30, 25), bundled


@pytest.fixture(scope="module")
def folder(tmp_path_factory, template) -> Path:
    """A BIDS-derivative-like folder: a noisy run, its confounds TSV, a ramp run, an atlas."""
    root = tmp_path_factory.mktemp("fmri")
    rng = np.random.default_rng(0)
    shape = template.shape
    brain = template.get_fdata() > 0
    base = np.where(brain, 500.0, 10.0)[..., None]
    t = np.arange(N_VOL) * TR
    drift = 0.5 * t[None, None, None, :]
    noise = rng.normal(0, 5, size=shape + (N_VOL,))
    data = (base + drift + noise).astype(np.float32)
    img = nib.Nifti1Image(data, template.affine)
    img.header.set_zooms((8.0, 8.0, 8.0, TR))
    nib.save(img, root / "sub-01_task-x_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii")
    conf = pd.DataFrame(
        {
            "trans_x": rng.normal(size=N_VOL),
            "rot_z": rng.normal(size=N_VOL),
            "framewise_displacement": np.r_[np.nan, rng.random(N_VOL - 1)],
        }
    )
    conf.to_csv(root / "sub-01_task-x_run-1_desc-confounds_timeseries.tsv", sep="\t", index=False)
    # ramp: every voxel equals the time of its volume (s)
    ramp = np.broadcast_to(t.astype(np.float32), shape + (N_VOL,)).copy()
    ramp_img = nib.Nifti1Image(ramp, template.affine)
    ramp_img.header.set_zooms((8.0, 8.0, 8.0, TR))
    nib.save(ramp_img, root / "ramp.nii")
    # atlas: 4 regions = quadrants of the brain in x and y
    ii, jj, _ = np.indices(shape)
    labels = (1 + (ii >= shape[0] // 2) + 2 * (jj >= shape[1] // 2)) * brain
    nib.save(nib.Nifti1Image(labels.astype(np.int16), template.affine), root / "atlas.nii")
    return root


def _events(folder: Path, name: str, *, start: float = 0.0, offset: float = 0.0) -> pd.DataFrame:
    rows = [
        dict(
            type="Fmri",
            start=start,
            duration=N_VOL * TR - offset,  # the rest of the run after the offset
            timeline="a",
            filepath=name,
            frequency=1 / TR,
            offset=offset,
        ),
        dict(type="Word", start=start + 20.0, duration=0.3, timeline="a", text="w"),
        dict(type="Word", start=start + 31.0, duration=0.3, timeline="a", text="v"),
    ]
    table = pd.DataFrame(rows)
    table["study_root"] = str(folder)
    return validate_events(table)


RUN = "sub-01_task-x_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii"
CONFOUNDS = ("trans_x", "rot_z", "framewise_displacement")


def _stored(extractor: FmriExtractor, events: pd.DataFrame, store: Store) -> np.ndarray:
    extractor.prepare(events, store, progress=False)
    (item,) = extractor.items(events)
    return np.asarray(store.get_arrays(item.key)["data"])


def test_mask_equals_nifti_masker(folder, tmp_path):
    from nilearn.maskers import NiftiMasker

    ex = FmriExtractor(
        fwhm=6.0, detrend=True, standardize="zscore_sample", high_pass=0.01, confounds=CONFOUNDS
    )
    ours = _stored(ex, _events(folder, RUN), Store(tmp_path))
    conf = pd.read_csv(folder / "sub-01_task-x_run-1_desc-confounds_timeseries.tsv", sep="\t")
    conf = conf[list(CONFOUNDS)].fillna(0).to_numpy()
    masker = NiftiMasker(
        mask_strategy="whole-brain-template",
        smoothing_fwhm=6.0,
        detrend=True,
        standardize="zscore_sample",
        high_pass=0.01,
        t_r=TR,
        clean_args={"filter": "cosine"},
    )
    ref = masker.fit_transform(str(folder / RUN), confounds=conf)
    assert ours.shape == ref.shape == (N_VOL, int(masker.mask_img_.get_fdata().sum()))
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)
    # the confounds were really regressed out: without them the result differs
    plain = _stored(ex.replace(confounds=()), _events(folder, RUN), Store(tmp_path))
    assert np.abs(plain - ours).max() > 0.01


def test_butterworth_and_given_mask(folder, tmp_path, template):
    from nilearn.maskers import NiftiMasker

    mask_path = tmp_path / "mask.nii"
    mask = (template.get_fdata() > 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(mask, template.affine), mask_path)
    ex = FmriExtractor(
        mask=mask_path, drift="butterworth", high_pass=0.02, low_pass=0.2, standardize="psc"
    )
    ours = _stored(ex, _events(folder, RUN), Store(tmp_path / "s"))
    masker = NiftiMasker(
        mask_img=str(mask_path), high_pass=0.02, low_pass=0.2, standardize="psc", t_r=TR
    )
    ref = masker.fit_transform(str(folder / RUN))
    assert ours.shape == (N_VOL, int(mask.sum()))
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)


def test_given_mask_read_directly_equals_the_masker(folder, tmp_path, template):
    # a binary mask on the run's grid, no smoothing or confounds: applied without the masker
    from nilearn.maskers import NiftiMasker

    from neuralset.extractors.neural import fmri_project

    mask_path = tmp_path / "mask.nii"
    mask = (template.get_fdata() > 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(mask, template.affine), mask_path)
    ex = FmriExtractor(mask=mask_path, detrend=True, standardize="zscore_sample")
    img = nib.load(str(folder / RUN))
    assert fmri_project._given_mask(ex, img, TR, mask_path) is not None  # the direct path
    ours = _stored(ex, _events(folder, RUN), Store(tmp_path / "s"))
    masker = NiftiMasker(mask_img=str(mask_path), detrend=True, standardize="zscore_sample", t_r=TR)
    ref = masker.fit_transform(str(folder / RUN))
    assert ours.shape == ref.shape == (N_VOL, int(mask.sum()))
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)
    # read time-major (3-TR windows 5 s after each word): the masker's rows, time first in memory
    events, store = _events(folder, RUN), Store(tmp_path / "s")
    segments = segment_on_triggers(events, "Word", duration=3 * TR)
    fast = ex.replace(hemodynamic_delay=5.0, time_major=True)
    got = fast.read(segments, store).data
    assert got.shape == (2, int(mask.sum()), 3) and not got.flags.c_contiguous
    assert np.moveaxis(got, -1, 1).flags.c_contiguous
    # words at 20 and 31 s: 12.5 TRs takes the later volume, 13
    first = [int((20.0 + 5.0) / TR + 0.5), int((31.0 + 5.0) / TR + 0.5)]
    want = np.stack([ref[f : f + 3].T for f in first])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(got, fast.replace(time_major=False).read(segments, store).data)
    # a mask that is not binary is left to the masker
    nib.save(nib.Nifti1Image(mask * 2, template.affine), tmp_path / "mask2.nii")
    assert fmri_project._given_mask(ex, img, TR, tmp_path / "mask2.nii") is None


@pytest.mark.parametrize("order", ["F", "C"])
def test_masked_series_equals_boolean_indexing(order):
    # NIfTI arrays come in Fortran order; the rows-of-volumes gather must keep the C order
    # of the mask's voxels that data[mask] gives (and nilearn's masker)
    from neuralset.extractors.neural.fmri_project import masked_series

    rng = np.random.default_rng(3)
    data = np.asarray(rng.standard_normal((5, 6, 7, 11)), dtype=np.float32, order=order)
    mask = rng.random((5, 6, 7)) > 0.4
    got = masked_series(data, mask)
    assert got.shape == (11, int(mask.sum()))
    np.testing.assert_array_equal(got, data[mask].T)
    # each sample equals its own voxel's flat C index plus its time: order errors show
    data = np.asarray(
        np.arange(5 * 6 * 7).reshape(5, 6, 7)[..., None] * 100.0 + np.arange(11),
        dtype=np.float32,
        order=order,
    )
    got = masked_series(data, mask)
    want = np.flatnonzero(mask.ravel())[None, :] * 100.0 + np.arange(11)[:, None]
    np.testing.assert_array_equal(got, want)


def test_atlas_equals_labels_masker(folder, tmp_path):
    from nilearn.maskers import NiftiLabelsMasker

    ex = FmriExtractor(
        projection="atlas",
        atlas=folder / "atlas.nii",
        fwhm=4.0,
        detrend=True,
        standardize="zscore_sample",
    )
    store = Store(tmp_path)
    ours = _stored(ex, _events(folder, RUN), store)
    assert store.meta(ex.items(_events(folder, RUN))[0].key)["regions"] == [1, 2, 3, 4]
    masker = NiftiLabelsMasker(
        labels_img=str(folder / "atlas.nii"),
        smoothing_fwhm=4.0,
        detrend=True,
        standardize="zscore_sample",
        t_r=TR,
    )
    ref = masker.fit_transform(str(folder / RUN))
    assert ours.shape == ref.shape == (N_VOL, 4)
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)


def test_surface_equals_vol_to_surf_and_clean(folder, tmp_path):
    from nilearn import datasets, image, signal, surface

    ex = FmriExtractor(
        projection="surface", fwhm=5.0, detrend=True, standardize="zscore_sample", high_pass=0.01
    )
    ours = _stored(ex, _events(folder, RUN), Store(tmp_path))
    fsavg = datasets.load_fsaverage("fsaverage5")
    smoothed = image.smooth_img(str(folder / RUN), 5.0)
    tex = [
        surface.vol_to_surf(
            smoothed, fsavg["pial"].parts[h], inner_mesh=fsavg["white_matter"].parts[h]
        )
        for h in ("left", "right")
    ]
    raw = np.concatenate(tex, axis=0).T
    ref = signal.clean(
        raw, detrend=True, standardize="zscore_sample", filter="cosine", high_pass=0.01, t_r=TR
    )
    assert ours.shape == (N_VOL, 2 * 10242)
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)


def test_ramp_alignment_resampling_and_delay(folder, tmp_path):
    store = Store(tmp_path)
    events = _events(folder, "ramp.nii", start=100.0)
    ex = FmriExtractor(frequency=2.0)  # upsample 0.5 Hz -> 2 Hz, no cleaning
    ex.prepare(events, store, progress=False)
    (item,) = ex.items(events)
    stored = np.asarray(store.get_arrays(item.key)["data"])
    assert stored.shape[0] == N_VOL * TR * 2.0  # exact sample count: 80 s at 2 Hz
    np.testing.assert_array_equal(
        stored[: (N_VOL - 1) * 4 + 1, 0], np.arange((N_VOL - 1) * 4 + 1) / 2.0
    )
    segments = segment_on_triggers(events, "Word", duration=3.0)  # words at 120 s and 131 s
    out = ex.read(segments, store)
    assert out.data.shape[0] == 2 and out.data.shape[2] == 6
    # each voxel reads the time of the sample relative to the run start (100 s)
    np.testing.assert_array_equal(
        out.data[:, 5, :], [[20 + j / 2 for j in range(6)], [31 + j / 2 for j in range(6)]]
    )
    delayed = ex.replace(hemodynamic_delay=5.0)
    assert delayed.items(events)[0].key == item.key  # read-time setting: no new prepare
    np.testing.assert_array_equal(
        delayed.read(segments, store).data[:, 0, :], out.data[:, 0, :] + 5.0
    )
    trig = ex.replace(hemodynamic_delay=5.0, output="static", aggregation="trigger")
    np.testing.assert_array_equal(trig.read(segments, store).data[:, 0], [25.0, 36.0])
    # an event offset: sample 0 is at `offset` seconds into the file
    shifted = _events(folder, "ramp.nii", offset=3.0)
    ex.prepare(shifted, store, progress=False)
    data = np.asarray(store.get_arrays(ex.items(shifted)[0].key)["data"])
    np.testing.assert_array_equal(data[:10, 0], 3.0 + np.arange(10) / 2.0)


def test_resample_linear_vectorised():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 7)).astype(np.float32)
    out = resample_linear(x, 0.5, 1.3, offset=0.7)
    t_in = np.arange(30) / 0.5
    t_out = 0.7 + np.arange(out.shape[0]) / 1.3
    ref = np.stack([np.interp(t_out, t_in, x[:, k]) for k in range(7)], axis=1)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert out.shape[0] == int(np.floor((60 - 0.7) * 1.3))


def test_gifti_hemispheres(tmp_path):
    rng = np.random.default_rng(2)
    data = {h: rng.normal(size=(N_VOL, 10242)).astype(np.float32) for h in "LR"}  # fsaverage5
    for h, arr in data.items():
        gii = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(v) for v in arr])
        nib.save(gii, tmp_path / f"sub-01_hemi-{h}_space-fsaverage5_bold.func.gii")
    events = _events(tmp_path, "sub-01_hemi-L_space-fsaverage5_bold.func.gii")
    ex = FmriExtractor(projection="surface", detrend=True)
    ours = _stored(ex, events, Store(tmp_path / "s"))
    from nilearn import signal

    ref = signal.clean(
        np.concatenate([data["L"], data["R"]], axis=1),
        detrend=True,
        standardize=None,
        filter=False,
        t_r=TR,
    )
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)


def test_config_errors(folder):
    with pytest.raises(ConfigError, match=r"FmriExtractor.fwhm: smoothing width must be >= 0"):
        FmriExtractor(fwhm=-1.0)
    with pytest.raises(
        ConfigError, match=r"FmriExtractor.projection: expected one of 'mask', 'atlas', 'surface'"
    ):
        FmriExtractor(projection="voxels")
    with pytest.raises(
        ConfigError, match=r"FmriExtractor.atlas: file .*missing.nii does not exist"
    ):
        FmriExtractor(projection="atlas", atlas=folder / "missing.nii")
    with pytest.raises(ConfigError, match=r"FmriExtractor.atlas: projection='atlas' needs"):
        FmriExtractor(projection="atlas")
    with pytest.raises(
        ConfigError, match=r"FmriExtractor.low_pass: nilearn implements low-pass only"
    ):
        FmriExtractor(low_pass=0.1)
    with pytest.raises(ConfigError, match=r"FmriExtractor.high_pass: must be > 0 Hz"):
        FmriExtractor(high_pass=-0.01)


def test_missing_confounds_file(tmp_path, folder):
    import shutil

    shutil.copy(folder / "ramp.nii", tmp_path / "sub-02_task-x_bold.nii")
    ex = FmriExtractor(confounds=("trans_x",))
    with pytest.raises(FileNotFoundError, match=r"sub-02_task-x_desc-confounds_timeseries.tsv"):
        ex.items(_events(tmp_path, "sub-02_task-x_bold.nii"))


def test_import_is_lazy():
    import subprocess
    import sys

    code = "import sys, neuralset.extractors.neural.fmri; print(any(m.startswith('nilearn') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_yaml_round_trip(folder):
    from neuralset.config import from_dict

    ex = FmriExtractor(
        projection="atlas", atlas=folder / "atlas.nii", fwhm=4.0, confounds=("trans_x",)
    )
    data = ex.to_dict()
    assert data["kind"] == "fmri"
    again = from_dict(data)
    assert again == ex and again.key == ex.key


def test_confounds_rows_must_match(folder, tmp_path):
    import shutil

    shutil.copy(folder / "ramp.nii", tmp_path / "sub-09_task-x_bold.nii")
    pd.DataFrame({"trans_x": np.zeros(N_VOL - 1)}).to_csv(
        tmp_path / "sub-09_task-x_desc-confounds_timeseries.tsv", sep="\t", index=False
    )
    ex = FmriExtractor(confounds=("trans_x",))
    (item,) = ex.items(_events(tmp_path, "sub-09_task-x_bold.nii"))
    with pytest.raises(
        ValueError,
        match=rf"confounds of .*sub-09_task-x_bold.nii: {N_VOL - 1} rows but the run has {N_VOL} volumes",
    ):
        ex.compute_recording(item.payload)
    with pytest.raises(ValueError, match=r"no confounds column\(s\) \['rot_z'\]"):
        ex.replace(confounds=("rot_z",)).compute_recording(item.payload)


# -- issue 8, case 5: a header that contradicts its event fails before any work -----------------
def _example4d_event(path: Path, frequency: float, duration: float) -> pd.DataFrame:
    return validate_events(
        pd.DataFrame([dict(type="Fmri", start=0.0, duration=duration, timeline="a",
                           filepath=str(path), frequency=frequency)])
    )  # fmt: skip


def test_header_tr_in_the_wrong_unit_fails_before_any_work(tmp_path):
    from tests.real_data import nibabel_example

    path = nibabel_example()  # 2 volumes whose header says TR = 2000 with the unit "sec"
    ex, store = FmriExtractor(frequency=0.5), Store(tmp_path / "store")
    with pytest.raises(ValueError) as info:  # event frequency 0: the header TR is implausible
        ex.prepare(_example4d_event(path, 0.0, 4.0), store, progress=False)
    assert str(info.value) == (
        f"Fmri event 0 (timeline a, file {path}) has no frequency and the header of {path} says "
        "TR 2000 s (unit 'sec': probably milliseconds written as seconds), not a repetition time "
        "(0 < TR <= 30 s); set the event's frequency (1 / TR in Hz), or fix the header's TR and unit"
    )
    with pytest.raises(ValueError) as info:  # the event's 0.5 Hz contradicts the header
        ex.prepare(_example4d_event(path, 0.5, 4.0), store, progress=False)
    assert str(info.value) == (
        f"Fmri event 0 (timeline a, file {path}) says frequency 0.5 Hz (TR 2 s) but the header "
        f"of {path} says TR 2000 s (unit 'sec'); fix the event's frequency, or the header "
        "(nibabel: img.header.set_zooms / set_xyzt_units)"
    )
    assert not (tmp_path / "store").exists()  # nothing computed, nothing stored


def test_run_shorter_than_its_event_fails_then_the_fixed_run_prepares(tmp_path):
    from tests.real_data import nibabel_example

    img = nib.load(str(nibabel_example()))
    fixed = nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header)
    fixed.header.set_xyzt_units("mm", "msec")  # the same 2000: now 2 s
    path = tmp_path / "example4d_ms.nii.gz"
    nib.save(fixed, path)
    ex, store = FmriExtractor(frequency=0.5), Store(tmp_path / "store")
    with pytest.raises(ValueError) as info:
        ex.prepare(_example4d_event(path, 0.5, 10.0), store, progress=False)
    assert str(info.value) == (
        f"Fmri event 0 (timeline a, file {path}) spans 0..10 s of the run, but {path} holds 2 "
        "volumes x TR 2 s = 4 s; fix the event's duration (or offset, or frequency)"
    )
    assert not (tmp_path / "store").exists()
    for frequency in (0.5, 0.0):  # the event's TR, or the header's (now in ms)
        events = _example4d_event(path, frequency, 4.0)
        data = _stored(ex, events, store)
        assert data.shape[0] == 2 and data.dtype == np.float32  # 2 volumes at 0.5 Hz


def test_onsets_half_a_tr_past_a_volume_take_the_next_volume(folder, tmp_path):
    # the ramp run's voxels hold the time of their volume (s); onsets at odd seconds plus a 4 s
    # delay fall exactly between two volumes: each takes the later one (numpy's round-half-to-
    # even read volumes 2, 4, 4, 6, 6: two events 2 s apart on one volume)
    events = _events(folder, "ramp.nii")
    words = pd.DataFrame(
        [
            dict(type="Word", start=float(t), duration=0.3, timeline="a", text="w")
            for t in (1, 3, 5, 7, 9)
        ]
    )
    events = validate_events(
        pd.concat([events[events["type"] == "Fmri"], words], ignore_index=True)
    )
    store = Store(tmp_path)
    segments = segment_on_triggers(events, "Word", duration=2 * TR)
    trigger = FmriExtractor(output="static", aggregation="trigger", hemodynamic_delay=4.0)
    trigger.prepare(events, store, progress=False)
    np.testing.assert_array_equal(trigger.read(segments, store).data[:, 0], [6, 8, 10, 12, 14])
    windows = FmriExtractor(hemodynamic_delay=4.0).read(segments, store).data[:, 0, :]
    np.testing.assert_array_equal(windows, [[6, 8], [8, 10], [10, 12], [12, 14], [14, 16]])


def test_confounds_and_mask_checked_before_any_work(folder, tmp_path, template):
    import shutil

    shutil.copy(folder / "ramp.nii", tmp_path / "sub-09_task-x_bold.nii")
    conf = tmp_path / "sub-09_task-x_desc-confounds_timeseries.tsv"
    pd.DataFrame({"trans_x": np.zeros(N_VOL - 1), "kind": "a"}).to_csv(conf, sep="\t", index=False)
    events, store = _events(tmp_path, "sub-09_task-x_bold.nii"), Store(tmp_path / "store")
    with pytest.raises(ValueError) as info:
        FmriExtractor(confounds=("trans_x",)).prepare(events, store, progress=False)
    assert str(info.value) == (
        f"confounds file {conf}: {N_VOL - 1} rows but the run {tmp_path / 'sub-09_task-x_bold.nii'} "
        f"has {N_VOL} volumes; give the confounds of this run (one row per volume), or set "
        "confounds=()"
    )
    with pytest.raises(ValueError) as info:
        FmriExtractor(confounds=("kind",)).prepare(events, store, progress=False)
    assert str(info.value) == (
        f"{conf}: confounds column(s) ['kind'] are not numeric (e.g. 'a'); choose numeric "
        "columns in FmriExtractor.confounds"
    )
    empty = tmp_path / "empty_mask.nii"
    nib.save(nib.Nifti1Image(np.zeros(template.shape, np.uint8), template.affine), empty)
    with pytest.raises(ValueError) as info:  # read directly, it gave 0 features silently
        FmriExtractor(mask=empty).prepare(events, store, progress=False)
    assert str(info.value) == (
        f"FmriExtractor.mask: {empty} selects no voxel (all zeros); give a mask whose brain "
        "voxels are non-zero"
    )
    assert not (tmp_path / "store").exists()  # nothing computed, nothing stored


@pytest.mark.parametrize(
    ("options", "field", "value"),
    [
        (dict(high_pass=0.3), "high_pass", "0.3"),
        (dict(low_pass=0.25, drift="butterworth"), "low_pass", "0.25"),
        (dict(high_pass=0.01, low_pass=0.4, drift="butterworth"), "low_pass", "0.4"),
    ],
)
def test_a_cut_off_above_the_runs_nyquist_fails_before_any_work(
    folder, tmp_path, options, field, value
):
    """At TR 2 s the Nyquist frequency is 0.25 Hz: nilearn would only warn and leave the signal
    unfiltered."""
    events, store = _events(folder, "ramp.nii"), Store(tmp_path / "store")
    with pytest.raises(ConfigError) as info:
        FmriExtractor(**options).prepare(events, store, progress=False)
    assert str(info.value) == (
        f"FmriExtractor.{field}: {value} Hz is at or above the Nyquist frequency (0.25 Hz) of "
        f"{folder / 'ramp.nii'}, TR 2 s; set it below 0.25 Hz, or None"
    )
    assert not (tmp_path / "store").exists()

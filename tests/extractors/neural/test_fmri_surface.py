"""fMRI on surfaces and in CIFTI/GIfTI files, against nilearn's and nibabel's own results:
template masks with ``vol_to_surf``, NaN voxels against ``NiftiMasker``, GIfTI vertex counts
checked against the mesh before any work, CIFTI lengths read from the series axis."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neuralset.events import validate_events
from neuralset.execution.prepare import PrepareError
from neuralset.extractors.neural.fmri import FmriExtractor
from neuralset.store import Store
from neuralset.studies.headers import fill_durations

TR = 2.0
N_VOL = 12
N_FS5 = 10242  # vertices per hemisphere of fsaverage5
TOL = dict(rtol=1e-4, atol=1e-4)  # float32 storage of nilearn's float64 results


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """An MNI run at 8 mm, a run with a NaN voxel, a run covering a small field of view, a mask."""
    from nilearn import datasets

    root = tmp_path_factory.mktemp("fmri_surface")
    template = datasets.load_mni152_template(resolution=8)
    rng = np.random.default_rng(5)
    brain = template.get_fdata() > 0
    data = np.where(brain, 400.0, 5.0)[..., None] + rng.normal(0, 10, template.shape + (N_VOL,))
    _save(data, template.affine, root / "mni_bold.nii.gz")
    data[13, 15, 12, 3] = np.nan
    _save(data, template.affine, root / "nan_bold.nii.gz")
    nib.save(nib.Nifti1Image(brain.astype(np.uint8), template.affine), root / "brain.nii.gz")
    shifted = template.affine @ np.diag([1.0, 1.0, 1.0, 1.0])
    shifted[:3, 3] += template.affine[:3, :3] @ [8, 8, 8]
    _save(data[8:18, 8:22, 8:18], shifted, root / "small_bold.nii.gz")  # a partial view
    return root


def _save(data: np.ndarray, affine: np.ndarray, path: Path) -> None:
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    img.header.set_zooms((8.0, 8.0, 8.0, TR))
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, path)


def _events(folder: Path, name: str, duration: float = N_VOL * TR) -> pd.DataFrame:
    row = dict(type="Fmri", start=0.0, duration=duration, timeline="a", filepath=name)
    table = pd.DataFrame([dict(row, frequency=1 / TR)])
    table["study_root"] = str(folder)
    return validate_events(table)


def _stored(ex: FmriExtractor, events: pd.DataFrame, store: Store) -> np.ndarray:
    ex.prepare(events, store, progress=False)
    return np.asarray(store.get_arrays(ex.items(events)[0].key)["data"])


def test_surface_with_a_template_mask_equals_vol_to_surf(folder, tmp_path):
    """The template mask resampled to the run was passed to nilearn as ``str(image)``."""
    from nilearn import datasets, image, surface

    ex = FmriExtractor(projection="surface", template_mask="brain")
    ours = _stored(ex, _events(folder, "mni_bold.nii.gz"), Store(tmp_path))
    run = nib.load(folder / "mni_bold.nii.gz")
    mask = image.resample_to_img(
        datasets.load_mni152_brain_mask(),
        image.index_img(run, 0),
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    fsavg = datasets.load_fsaverage("fsaverage5")
    tex = [
        surface.vol_to_surf(
            run, fsavg["pial"].parts[h], mask_img=mask, inner_mesh=fsavg["white_matter"].parts[h]
        )
        for h in ("left", "right")
    ]
    np.testing.assert_allclose(ours, np.concatenate(tex, axis=0).T, **TOL)


@pytest.mark.parametrize("detrend", [False, True])
def test_nan_voxels_of_a_given_mask_as_nifti_masker(folder, tmp_path, detrend):
    """The direct read of a given mask kept NaN voxels (spread over the series by detrend)."""
    from nilearn.maskers import NiftiMasker

    ex = FmriExtractor(mask=folder / "brain.nii.gz", detrend=detrend)
    ours = _stored(ex, _events(folder, "nan_bold.nii.gz"), Store(tmp_path))
    masker = NiftiMasker(mask_img=str(folder / "brain.nii.gz"), detrend=detrend, standardize=None)
    ref = masker.fit_transform(str(folder / "nan_bold.nii.gz"))
    assert not np.isnan(ref).any()
    np.testing.assert_allclose(ours, ref, **TOL)


def test_vertices_outside_the_run_are_an_error_naming_the_file(folder, tmp_path):
    ex = FmriExtractor(projection="surface")
    with pytest.raises(PrepareError) as err:
        ex.prepare(_events(folder, "small_bold.nii.gz"), Store(tmp_path), progress=False)
    from nilearn import datasets, surface

    fsavg = datasets.load_fsaverage("fsaverage5")
    nan = sum(
        int(np.isnan(tex).any(axis=1).sum())
        for tex in (
            surface.vol_to_surf(
                str(folder / "small_bold.nii.gz"),
                fsavg["pial"].parts[h],
                inner_mesh=fsavg["white_matter"].parts[h],
            )
            for h in ("left", "right")
        )
    )
    assert 0 < nan < 2 * N_FS5
    assert (
        f"{folder / 'small_bold.nii.gz'}: {nan} of {2 * N_FS5} vertices of the mesh fsaverage5 "
        "got NaN from nilearn.surface.vol_to_surf (outside the run's field of view, or on NaN "
        "voxels); project runs that are in the mesh's space (fsaverage: MNI152) and cover the "
        "whole cortex, or use projection='mask'"
    ) in str(err.value)


def _gifti(path: Path, data: np.ndarray, *, one_array: bool = False) -> None:
    """``data`` (time, vertices) as one array per volume, or one (vertices, time) array."""
    arrays = [data.T] if one_array else list(data)
    darrays = [nib.gifti.GiftiDataArray(a, datatype="NIFTI_TYPE_FLOAT32") for a in arrays]
    nib.save(nib.gifti.GiftiImage(darrays=darrays), path)


def test_gifti_of_one_2d_array_is_read_with_its_volumes(tmp_path):
    """A single (vertices, time) array was counted as one volume: refused at preflight."""
    rng = np.random.default_rng(1)
    data = {h: rng.normal(size=(N_VOL, N_FS5)).astype(np.float32) for h in "LR"}
    for h, arr in data.items():
        _gifti(tmp_path / f"sub-01_hemi-{h}_bold.func.gii", arr, one_array=True)
    events = _events(tmp_path, "sub-01_hemi-L_bold.func.gii")
    ours = _stored(FmriExtractor(projection="surface"), events, Store(tmp_path / "s"))
    np.testing.assert_array_equal(ours, np.concatenate([data["L"], data["R"]], axis=1))
    filled = fill_durations(events.assign(duration=0.0))
    assert filled["duration"].tolist() == [N_VOL * TR]


def test_gifti_vertices_checked_against_the_mesh_before_any_work(tmp_path):
    rng = np.random.default_rng(2)
    for h in "LR":
        _gifti(tmp_path / f"a_hemi-{h}_bold.func.gii", rng.normal(size=(N_VOL, 642)))
    _gifti(tmp_path / "b_hemi-L_bold.func.gii", rng.normal(size=(N_VOL, N_FS5)))
    store = Store(tmp_path / "s")
    ex = FmriExtractor(projection="surface")
    with pytest.raises(ValueError) as err:
        ex.prepare(_events(tmp_path, "a_hemi-L_bold.func.gii"), store, progress=False)
    assert str(err.value) == (
        f"{tmp_path / 'a_hemi-L_bold.func.gii'}: the GIfTI run has 642 + 642 vertices "
        "(a_hemi-L_bold.func.gii, a_hemi-R_bold.func.gii) but the mesh fsaverage5 has "
        "10242 + 10242 (left + right); give both hemispheres (hemi-L and hemi-R files side by "
        "side) and the mesh the run was sampled on (mesh or mesh_pial)"
    )
    with pytest.raises(ValueError, match=r"has 10242 vertices \(b_hemi-L_bold.func.gii\) but"):
        ex.prepare(_events(tmp_path, "b_hemi-L_bold.func.gii"), store, progress=False)
    with pytest.raises(ValueError) as err:
        ex.prepare(_events(tmp_path, "a_hemi-R_bold.func.gii"), store, progress=False)
    assert str(err.value) == (
        f"{tmp_path / 'a_hemi-R_bold.func.gii'}: a right-hemisphere GIfTI file; point the Fmri "
        "event at its hemi-L file (the hemi-R file next to it is read with it, left then right)"
    )
    assert not list(store.keys())


def test_cifti_duration_filled_from_the_series_axis(tmp_path):
    """``fill_durations`` raised AttributeError ('Cifti2Header' has no get_zooms)."""
    models = nib.cifti2.BrainModelAxis.from_surface(np.arange(30), nvertex=40, name="CortexLeft")
    series = nib.cifti2.SeriesAxis(start=0.0, step=1.5, size=N_VOL)
    data = np.zeros((N_VOL, len(models)), dtype=np.float32)
    nib.save(nib.Cifti2Image(data, header=(series, models)), tmp_path / "r_bold.dtseries.nii")
    table = pd.DataFrame(
        [dict(type="Fmri", start=0.0, duration=0.0, timeline="a", filepath="r_bold.dtseries.nii")]
    )
    table["study_root"] = str(tmp_path)
    assert fill_durations(table)["duration"].tolist() == [N_VOL * 1.5]


def test_gifti_settings_checked_from_headers_before_any_work(folder, tmp_path):
    """A mask was silently ignored; the other settings failed inside prepare."""
    rng = np.random.default_rng(3)
    for h, n in (("L", N_VOL), ("R", N_VOL)):
        _gifti(tmp_path / f"a_hemi-{h}_bold.func.gii", rng.normal(size=(n, N_FS5)))
    for h, n in (("L", N_VOL), ("R", N_VOL - 1)):
        _gifti(tmp_path / f"b_hemi-{h}_bold.func.gii", rng.normal(size=(n, N_FS5)))
    run = tmp_path / "a_hemi-L_bold.func.gii"
    mask = folder / "brain.nii.gz"
    cases = [
        (
            "a_hemi-L_bold.func.gii",
            dict(projection="surface", mask=mask),
            f"{run}: a GIfTI surface run has no voxel grid for FmriExtractor.mask (got {mask}); "
            "set mask=None",
        ),
        (
            "a_hemi-L_bold.func.gii",
            dict(projection="surface", fwhm=4.0),
            f"{run}: fwhm smoothing is not available for GIfTI surface data; set fwhm=None",
        ),
        (
            "a_hemi-L_bold.func.gii",
            dict(),
            f"{run}: GIfTI data is already on a surface; use projection='surface' (got 'mask')",
        ),
        (
            "b_hemi-L_bold.func.gii",
            dict(projection="surface"),
            f"{tmp_path / 'b_hemi-L_bold.func.gii'}: its hemispheres have {N_VOL} and "
            f"{N_VOL - 1} volumes (b_hemi-R_bold.func.gii); give the two hemispheres of one run",
        ),
    ]
    store = Store(tmp_path / "s")
    for name, fields, message in cases:
        with pytest.raises(ValueError) as err:
            FmriExtractor(**fields).prepare(_events(tmp_path, name), store, progress=False)
        assert str(err.value) == message
    assert not list(store.keys())


def test_a_mask_outside_the_runs_field_of_view_fails_before_any_work(folder, tmp_path):
    """NiftiMasker resamples the run onto the mask's grid: mask voxels outside the run read 0
    (stored silently), and a mask wholly outside failed in prepare with nilearn's
    BoundingBoxError, naming no file."""
    from nilearn.maskers import NiftiMasker

    run = folder / "mni_bold.nii.gz"
    brain = nib.load(folder / "brain.nii.gz")
    shifted = brain.affine.copy()
    shifted[0, 3] += 80.0  # 10 voxels to the right
    mask = tmp_path / "shifted_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(brain.dataobj), shifted), mask)
    ref = NiftiMasker(mask_img=str(mask), standardize=None).fit_transform(str(run))
    n_zero = int((ref == 0).all(axis=0).sum())  # nilearn's own result: voxels read as 0
    n_voxels = int(np.count_nonzero(np.asarray(brain.dataobj)))
    assert 0 < n_zero < n_voxels == ref.shape[1]
    store = Store(tmp_path / "s")
    with pytest.raises(ValueError) as err:
        FmriExtractor(mask=mask).prepare(_events(folder, run.name), store, progress=False)
    assert str(err.value) == (
        f"FmriExtractor.mask: {n_zero} of {n_voxels} voxels of {mask} lie outside the field of "
        f"view of {run} (nilearn's masker would read them as 0); give a mask in the run's "
        "space, e.g. nilearn.image.resample_to_img(mask, run, interpolation='nearest'), or "
        "template_mask='brain'"
    )
    assert not list(store.keys())


def test_cleaning_a_run_of_one_volume_fails_before_any_work(folder, tmp_path):
    """nilearn skips detrending and standardising one volume (a warning, the values stay
    raw): the run was stored unstandardised."""
    from nilearn import signal

    img = nib.load(folder / "mni_bold.nii.gz")
    one = nib.Nifti1Image(np.asarray(img.dataobj)[..., :1], img.affine, img.header)
    nib.save(one, tmp_path / "one_bold.nii.gz")
    raw = np.asarray(one.dataobj, dtype=np.float64).reshape(-1, 1).T[:, :50]
    with pytest.warns(UserWarning, match="Standardization of 3D signal"):
        kept = signal.clean(raw, detrend=True, standardize="zscore_sample")
    np.testing.assert_array_equal(kept, raw)  # nilearn's own result: unchanged
    store = Store(tmp_path / "s")
    ex = FmriExtractor(template_mask="brain", detrend=True, standardize="zscore_sample")
    with pytest.raises(ValueError) as err:
        ex.prepare(_events(tmp_path, "one_bold.nii.gz", TR), store, progress=False)
    assert str(err.value) == (
        f"{tmp_path / 'one_bold.nii.gz'} holds 1 volume; cleaning it (detrend, standardize) "
        "needs at least 2 volumes (nilearn leaves a single volume as it is); turn these "
        "FmriExtractor settings off, or give the whole run"
    )
    assert not list(store.keys())
    out = _stored(
        FmriExtractor(template_mask="brain"), _events(tmp_path, "one_bold.nii.gz", TR), store
    )
    assert out.shape[0] == 1


def _mesh_file(mesh, path: Path) -> Path:
    coords = nib.gifti.GiftiDataArray(
        np.asarray(mesh.coordinates, np.float32), intent="NIFTI_INTENT_POINTSET"
    )
    faces = nib.gifti.GiftiDataArray(
        np.asarray(mesh.faces, np.int32), intent="NIFTI_INTENT_TRIANGLE"
    )
    nib.save(nib.gifti.GiftiImage(darrays=[coords, faces]), path)
    return path


def test_mesh_files_swapped_or_unpaired_fail_before_any_work(folder, tmp_path):
    """Hemispheres given right then left projected each hemisphere's voxels under the other's
    name; a white mesh of another surface failed inside vol_to_surf."""
    from nilearn import datasets

    fsavg = datasets.load_fsaverage("fsaverage5")
    pial = {
        h: _mesh_file(fsavg["pial"].parts[h], tmp_path / f"pial_{h}.gii") for h in ("left", "right")
    }
    white = {
        h: _mesh_file(fsavg["white_matter"].parts[h], tmp_path / f"white_{h}.gii")
        for h in ("left", "right")
    }
    from nilearn.surface import InMemoryMesh

    coords = np.asarray(fsavg["white_matter"].parts["left"].coordinates)[:100]
    small = _mesh_file(InMemoryMesh(coords, np.array([[0, 1, 2], [1, 2, 3]])), tmp_path / "s.gii")
    events, store = _events(folder, "mni_bold.nii.gz"), Store(tmp_path / "s")
    swapped = FmriExtractor(projection="surface", mesh_pial=(pial["right"], pial["left"]))
    x = [float(fsavg["pial"].parts[h].coordinates[:, 0].mean()) for h in ("right", "left")]
    with pytest.raises(ValueError) as err:
        swapped.prepare(events, store, progress=False)
    assert str(err.value) == (
        f"FmriExtractor.mesh_pial: the left mesh {pial['right']} lies right of the right mesh "
        f"{pial['left']} (mean x {x[0]:.1f} against {x[1]:.1f} mm); give the left hemisphere "
        "first, then the right"
    )
    unpaired = FmriExtractor(
        projection="surface",
        mesh_pial=(pial["left"], pial["right"]),
        mesh_white=(small, white["right"]),
    )
    with pytest.raises(ValueError) as err:
        unpaired.prepare(events, store, progress=False)
    assert str(err.value) == (
        f"FmriExtractor.mesh_white: {small} has 100 vertices but its pial mesh {pial['left']} "
        "has 10242; give the white mesh of the same surface"
    )
    assert not list(store.keys())

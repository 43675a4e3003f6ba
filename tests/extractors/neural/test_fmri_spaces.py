"""fMRI spaces against nilearn's own calls: template masks, probabilistic and named atlases,
mesh files, and the way back (inverse_transform) with each masker's inverse_transform."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, from_dict
from neuralset.events import validate_events
from neuralset.extractors.neural.fmri import FmriExtractor
from neuralset.extractors.neural.fmri_spaces import AtlasNotAvailableError
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

TR = 2.0
N_VOL = 24
TOL = dict(rtol=1e-4, atol=1e-4)  # float32 storage of nilearn's float64 results


@pytest.fixture(scope="module")
def template():
    from nilearn import datasets

    return datasets.load_mni152_template(resolution=8)  # (26, 30, 25), bundled


@pytest.fixture(scope="module")
def folder(tmp_path_factory, template) -> Path:
    """A run, a probabilistic atlas (3 Gaussian blobs), a labels atlas and its lookup table."""
    root = tmp_path_factory.mktemp("fmri_spaces")
    rng = np.random.default_rng(3)
    brain = template.get_fdata() > 0
    data = np.where(brain, 400.0, 5.0)[..., None] + rng.normal(0, 10, template.shape + (N_VOL,))
    img = nib.Nifti1Image(data.astype(np.float32), template.affine)
    img.header.set_zooms((8.0, 8.0, 8.0, TR))
    nib.save(img, root / "run.nii")
    ijk = np.indices(template.shape).astype(float)
    blobs = []
    for centre in ((8, 10, 12), (18, 12, 12), (13, 22, 10)):
        d2 = sum((ijk[a] - c) ** 2 for a, c in enumerate(centre))
        blobs.append(np.exp(-d2 / 8.0) * brain)
    nib.save(
        nib.Nifti1Image(np.stack(blobs, -1).astype(np.float32), template.affine), root / "maps.nii"
    )
    ii, jj, _ = np.indices(template.shape)
    labels = (1 + (ii >= template.shape[0] // 2) + 2 * (jj >= template.shape[1] // 2)) * brain
    nib.save(nib.Nifti1Image(labels.astype(np.int16), template.affine), root / "atlas.nii")
    pd.DataFrame({"index": [1, 2, 3, 4], "name": ["LP", "RP", "LA", "RA"]}).to_csv(
        root / "atlas.tsv", sep="\t", index=False
    )
    return root


def _events(folder: Path, *names: str) -> pd.DataFrame:
    rows = [
        dict(
            type="Fmri",
            start=100.0 * i,
            duration=N_VOL * TR,
            timeline=f"r{i}",
            filepath=n,
            frequency=1 / TR,
        )
        for i, n in enumerate(names)
    ]
    table = pd.DataFrame(rows)
    table["study_root"] = str(folder)
    return validate_events(table)


def _stored(ex: FmriExtractor, events: pd.DataFrame, store: Store, row: int = 0) -> np.ndarray:
    ex.prepare(events, store, progress=False)
    item = ex.items(events.iloc[[row]])[0]
    return np.asarray(store.get_arrays(item.key)["data"])


@pytest.mark.parametrize("kind", ["brain", "gm", "wm"])
def test_template_masks_and_inverse(folder, tmp_path, kind):
    from nilearn import datasets, image
    from nilearn.maskers import NiftiMasker

    store = Store(tmp_path)
    ex = FmriExtractor(template_mask=kind)
    events = _events(folder, "run.nii")
    ours = _stored(ex, events, store)
    run = nib.load(folder / "run.nii")
    loader = {
        "brain": datasets.load_mni152_brain_mask,
        "gm": datasets.load_mni152_gm_mask,
        "wm": datasets.load_mni152_wm_mask,
    }[kind]
    mask = image.resample_to_img(loader(), image.index_img(run, 0), interpolation="nearest")
    masker = NiftiMasker(mask_img=mask)
    ref = masker.fit_transform(run)
    assert ours.shape == ref.shape and ref.shape[1] == int(mask.get_fdata().sum()) > 0
    np.testing.assert_allclose(ours, ref, **TOL)
    # the way back: the stored mask, nilearn's inverse_transform
    space = ex.space(events, store)
    assert space.kind == "mask" and space.n_features == ref.shape[1]
    np.testing.assert_array_equal(space.mask, mask.get_fdata() > 0)
    back = ex.inverse_transform(ours[0], events, store)
    np.testing.assert_allclose(
        back.get_fdata(), masker.inverse_transform(ref[0]).get_fdata(), **TOL
    )
    np.testing.assert_array_equal(back.affine, run.affine)


def test_probabilistic_maps_and_region_names(folder, tmp_path):
    from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker

    store = Store(tmp_path)
    events = _events(folder, "run.nii")
    maps = FmriExtractor(projection="maps", atlas=folder / "maps.nii", detrend=True)
    ours = _stored(maps, events, store)
    masker = NiftiMapsMasker(maps_img=str(folder / "maps.nii"), detrend=True, t_r=TR)
    ref = masker.fit_transform(str(folder / "run.nii"))
    assert ours.shape == ref.shape == (N_VOL, 3)
    np.testing.assert_allclose(ours, ref, **TOL)
    back = maps.inverse_transform(np.array([1.0, 2.0, 3.0]), events, store)
    np.testing.assert_allclose(
        back.get_fdata(), masker.inverse_transform(np.array([1.0, 2.0, 3.0])).get_fdata(), rtol=1e-6
    )
    labels = FmriExtractor(
        projection="atlas", atlas=folder / "atlas.nii", region_names=folder / "atlas.tsv"
    )
    got = _stored(labels, events, store)
    space = labels.space(events, store)
    assert space.region_names == ("LP", "RP", "LA", "RA") and space.regions == (1, 2, 3, 4)
    values = np.array([10.0, 20.0, 30.0, 40.0])
    lm = NiftiLabelsMasker(labels_img=str(folder / "atlas.nii")).fit()
    np.testing.assert_array_equal(
        labels.inverse_transform(values, events, store).get_fdata(),
        lm.inverse_transform(values).get_fdata(),
    )
    assert got.shape == (N_VOL, 4)


def _schaefer_folder(root: Path, template) -> Path:
    """nilearn's data folder holding a (home-made) Schaefer 100-parcel atlas at 2 mm."""
    folder = root / "nilearn_data" / "schaefer_2018"
    folder.mkdir(parents=True)
    ii, jj, kk = np.indices(template.shape)
    brain = template.get_fdata() > 0
    parcels = (1 + (ii * 4 // template.shape[0]) + 4 * (jj * 5 // template.shape[1])) * brain
    img = nib.Nifti1Image(parcels.astype(np.int16), template.affine)
    nib.save(img, folder / "Schaefer2018_100Parcels_7Networks_order_FSLMNI152_2mm.nii.gz")
    lut = [f"{i}\t7Networks_LH_Parcel_{i}\t120\t18\t134\t0" for i in range(1, 101)]
    (folder / "Schaefer2018_100Parcels_7Networks_order.txt").write_text("\n".join(lut) + "\n")
    return root / "nilearn_data"


def test_named_atlas_from_nilearn_data_folder_and_offline_error(folder, tmp_path, template):
    from nilearn.maskers import NiftiLabelsMasker

    data_dir = _schaefer_folder(tmp_path, template)
    events = _events(folder, "run.nii")
    store = Store(tmp_path / "store")
    ex = FmriExtractor(
        projection="atlas",
        atlas_name="schaefer_2018",
        atlas_params={"n_rois": 100, "resolution_mm": 2},
        nilearn_data=data_dir,
    )
    ours = _stored(ex, events, store)
    atlas_file = (
        data_dir / "schaefer_2018" / "Schaefer2018_100Parcels_7Networks_order_FSLMNI152_2mm.nii.gz"
    )
    ref = NiftiLabelsMasker(labels_img=str(atlas_file)).fit_transform(str(folder / "run.nii"))
    np.testing.assert_allclose(ours, ref, **TOL)
    space = ex.space(events, store)
    assert space.region_names[:2] == ("7Networks_LH_Parcel_1", "7Networks_LH_Parcel_2")
    assert len(space.region_names) == ours.shape[1] == 20
    assert ex.to_dict()["atlas_params"] == {"n_rois": 100, "resolution_mm": 2}
    assert from_dict(ex.to_dict()).prepare_key == ex.prepare_key
    # offline, nothing there: a clear error naming the files, before any run is computed
    empty = Store(tmp_path / "empty")
    missing = ex.replace(
        nilearn_data=tmp_path / "nothing", atlas_params={"n_rois": 200, "resolution_mm": 2}
    )
    with pytest.raises(
        AtlasNotAvailableError,
        match=r"(?s)atlas 'schaefer_2018' .* Provide these files:\n  .*nothing/schaefer_2018/Schaefer2018_200Parcels_7Networks_order_FSLMNI152_2mm.nii.gz\n  .*Schaefer2018_200Parcels_7Networks_order.txt",
    ):
        missing.prepare(events, empty, progress=False)
    assert not list(empty.keys())


def test_named_probabilistic_atlas_difumo(folder, tmp_path, template):
    """DiFuMo (probabilistic maps) from nilearn's data folder: NiftiMapsMasker and its names."""
    from nilearn.maskers import NiftiMapsMasker

    root = tmp_path / "nilearn_data" / "difumo_atlases" / "64"
    (root / "2mm").mkdir(parents=True)
    maps = nib.load(folder / "maps.nii")  # 3 home-made components stand for DiFuMo's 64
    nib.save(maps, root / "2mm" / "maps.nii.gz")
    pd.DataFrame({"Component": [1, 2, 3], "Difumo_names": ["Blob A", "Blob B", "Blob C"]}).to_csv(
        root / "labels_64_dictionary.csv", index=False
    )
    (root.parent / "README.md").write_text("DiFuMo")
    ex = FmriExtractor(
        projection="maps", atlas_name="difumo", nilearn_data=tmp_path / "nilearn_data"
    )
    events = _events(folder, "run.nii")
    store = Store(tmp_path / "store")
    ours = _stored(ex, events, store)
    ref = NiftiMapsMasker(maps_img=str(root / "2mm" / "maps.nii.gz")).fit_transform(
        str(folder / "run.nii")
    )
    np.testing.assert_allclose(ours, ref, **TOL)
    space = ex.space(events, store)
    assert space.region_names == ("Blob A", "Blob B", "Blob C")
    back = ex.inverse_transform(np.array([1.0, 0.0, 0.0]), events, store)
    assert back.shape == template.shape


def test_named_atlas_config_errors(folder):
    with pytest.raises(
        ConfigError,
        match=r"^FmriExtractor.atlas_name: unknown atlas 'aal'; known: schaefer_2018, harvard_oxford, difumo",
    ):
        FmriExtractor(projection="atlas", atlas_name="aal")
    with pytest.raises(
        ConfigError,
        match=r"^FmriExtractor.projection: atlas 'difumo' is probabilistic; use projection='maps'",
    ):
        FmriExtractor(projection="atlas", atlas_name="difumo")
    with pytest.raises(ConfigError, match=r"^FmriExtractor.atlas: projection='maps' needs"):
        FmriExtractor(projection="maps")
    with pytest.raises(ConfigError, match=r"^FmriExtractor.atlas: projection='atlas' needs"):
        FmriExtractor(projection="atlas", atlas=folder / "atlas.nii", atlas_name="schaefer_2018")
    with pytest.raises(ConfigError, match=r"^FmriExtractor.template_mask: give either a mask file"):
        FmriExtractor(template_mask="gm", mask=folder / "atlas.nii")
    with pytest.raises(
        ConfigError, match=r"^FmriExtractor.mesh: meshes are used with projection='surface'"
    ):
        FmriExtractor(mesh="fsaverage6")
    with pytest.raises(
        ConfigError, match=r"^FmriExtractor.region_names: names the regions of an atlas file"
    ):
        FmriExtractor(
            projection="atlas", atlas_name="schaefer_2018", region_names=folder / "atlas.tsv"
        )
    # new fields leave the keys of configs that do not use them unchanged
    plain = FmriExtractor()
    assert "template_mask" not in str(plain.to_dict()) or plain.key == FmriExtractor().key


def _write_gifti_mesh(mesh, path: Path) -> None:
    coords = nib.gifti.GiftiDataArray(
        np.asarray(mesh.coordinates, np.float32), intent="NIFTI_INTENT_POINTSET"
    )
    faces = nib.gifti.GiftiDataArray(
        np.asarray(mesh.faces, np.int32), intent="NIFTI_INTENT_TRIANGLE"
    )
    nib.save(nib.gifti.GiftiImage(darrays=[coords, faces]), path)


def test_mesh_files_and_other_fsaverages(folder, tmp_path):
    from nilearn import datasets, surface

    fsavg = datasets.load_fsaverage("fsaverage5")
    files = {}
    for part, name in (("pial", "pial"), ("white", "white_matter")):
        for hemi in ("left", "right"):
            mesh = fsavg[name].parts[hemi]
            shifted = surface.InMemoryMesh(
                np.asarray(mesh.coordinates) + [0.0, 4.0, 0.0], np.asarray(mesh.faces)
            )
            files[f"{part}_{hemi}"] = tmp_path / f"{part}_{hemi}.gii"
            _write_gifti_mesh(shifted, files[f"{part}_{hemi}"])
    ex = FmriExtractor(
        projection="surface",
        mesh_pial=(files["pial_left"], files["pial_right"]),
        mesh_white=(files["white_left"], files["white_right"]),
    )
    events = _events(folder, "run.nii")
    store = Store(tmp_path / "store")
    ours = _stored(ex, events, store)
    run = str(folder / "run.nii")
    ref = np.concatenate(
        [
            surface.vol_to_surf(run, str(files[f"pial_{h}"]), inner_mesh=str(files[f"white_{h}"])).T
            for h in ("left", "right")
        ],
        axis=1,
    )
    np.testing.assert_allclose(ours, ref, **TOL)
    back = ex.inverse_transform(ours[3], events, store)
    np.testing.assert_allclose(back.data.parts["left"], ref[3, :10242], **TOL)
    np.testing.assert_allclose(back.data.parts["right"], ref[3, 10242:], **TOL)
    assert back.mesh.parts["left"].n_vertices == 10242
    back.data.to_filename(tmp_path / "map.gii")  # GIfTI, one file per hemisphere
    left = nib.load(tmp_path / "map_hemi-L.gii")
    np.testing.assert_allclose(left.darrays[0].data, ref[3, :10242], **TOL)
    # fsaverage4 from nilearn's data folder (files as fetch_surf_fsaverage writes them)
    data_dir = tmp_path / "nilearn_data"
    (data_dir / "fsaverage4").mkdir(parents=True)
    for name, path in files.items():
        with (
            open(path, "rb") as src,
            gzip.open(data_dir / "fsaverage4" / f"{name}.gii.gz", "wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
    named = FmriExtractor(projection="surface", mesh="fsaverage4", nilearn_data=data_dir)
    np.testing.assert_allclose(_stored(named, events, Store(tmp_path / "s2")), ref, **TOL)
    missing = named.replace(mesh="fsaverage6", nilearn_data=tmp_path / "none")
    with pytest.raises(
        AtlasNotAvailableError,
        match=r"(?s)mesh 'fsaverage6' is not in nilearn's data folder.*none/fsaverage6/pial_left.gii.gz",
    ):
        missing.prepare(events, Store(tmp_path / "s3"), progress=False)


def test_feature_mismatch_error_and_pad(folder, tmp_path, template):
    from nilearn import image

    run = nib.load(folder / "run.nii")
    # another subject in native space: the same data on a coarser, shifted grid
    affine = np.diag([10.0, 10.0, 10.0, 1.0])
    affine[:3, 3] = [-70.0, -100.0, -60.0]
    other = image.resample_img(
        run, target_affine=affine, target_shape=(15, 18, 16), interpolation="nearest"
    )
    nib.save(other, folder / "other.nii")
    events = _events(folder, "run.nii", "other.nii")
    store = Store(tmp_path)
    ex = FmriExtractor(frequency=1 / TR)
    with pytest.raises(
        ValueError,
        match=r"^FmriExtractor: the runs have different numbers of features \(run.nii: \d+, other.nii: \d+\); use one space",
    ):
        ex.prepare(events, store, progress=False)
    padded = ex.replace(feature_mismatch="pad")
    assert padded.prepare_key == ex.prepare_key  # a read-time choice: nothing prepared again
    padded.prepare(events, store, progress=False)
    segs = segment_on_triggers(events, "Fmri", duration=10.0)
    out = padded.read(segs, store).data
    widths = [padded.space(events, store, row).n_features for row in (0, 1)]
    assert out.shape == (2, max(widths), 5)
    fmask = padded.feature_mask(segs, store)
    np.testing.assert_array_equal(fmask.sum(axis=1), widths)
    for i in range(len(segs)):
        alone = padded.read(segs.select([i]), store).data[0]
        np.testing.assert_array_equal(out[i, : widths[i]], alone[: widths[i]])
        assert not out[i, widths[i] :].any()
    with pytest.raises(ValueError, match="different numbers of features"):
        ex.read(segs, store)
    back = padded.inverse_transform(out[1, :, 0], events, store, row=int(segs.trigger[1]))
    assert back.shape[:3] == (15, 18, 16)

"""CIFTI-2 dense time series read through FmriExtractor against nibabel's own arrays."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neuralset.events import validate_events
from neuralset.extractors.neural.fmri import FmriExtractor
from neuralset.store import Store

TR = 1.5
N_VOL = 20
N_CORTEX = 50


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A dense time series (50 left-cortex vertices + 8 left-thalamus voxels) and parcels."""
    root = tmp_path_factory.mktemp("cifti")
    cortex = nib.cifti2.BrainModelAxis.from_surface(
        np.arange(N_CORTEX), nvertex=60, name="CortexLeft"
    )
    mask = np.zeros((4, 4, 4), dtype=bool)
    mask[1:3, 1:3, 1:3] = True
    thalamus = nib.cifti2.BrainModelAxis.from_mask(mask, name="ThalamusLeft", affine=np.eye(4))
    models = cortex + thalamus
    series = nib.cifti2.SeriesAxis(start=0.0, step=TR, size=N_VOL)
    data = np.random.default_rng(0).normal(size=(N_VOL, len(models))).astype(np.float32)
    nib.save(nib.Cifti2Image(data, header=(series, models)), root / "sub-01_bold.dtseries.nii")
    table = {
        0: ("???", (0.0, 0.0, 0.0, 0.0)),
        1: ("V1", (1.0, 0, 0, 1)),
        2: ("MT", (0, 1.0, 0, 1)),
        3: ("THAL", (0, 0, 1.0, 1)),
    }
    labels = np.r_[np.repeat([1, 2, 0], [20, 25, 5]), np.full(8, 3)][None].astype(np.int32)
    label_axis = nib.cifti2.LabelAxis(["parcels"], [table])
    nib.save(nib.Cifti2Image(labels, header=(label_axis, models)), root / "parcels.dlabel.nii")
    np.save(root / "data.npy", data)
    return root


def _events(folder: Path, frequency: float = 1 / TR) -> pd.DataFrame:
    table = pd.DataFrame(
        [
            dict(
                type="Fmri",
                start=0.0,
                duration=N_VOL * TR,
                timeline="a",
                filepath="sub-01_bold.dtseries.nii",
                frequency=frequency,
            )
        ]
    )
    table["study_root"] = str(folder)
    return validate_events(table)


def _stored(ex: FmriExtractor, events: pd.DataFrame, store: Store) -> np.ndarray:
    ex.prepare(events, store, progress=False)
    return np.asarray(store.get_arrays(ex.items(events)[0].key)["data"])


def test_grayordinates_by_structure(folder, tmp_path):
    data = np.load(folder / "data.npy")
    store = Store(tmp_path)
    events = _events(folder, frequency=0.0)  # TR from the file's series axis
    everything = FmriExtractor()
    np.testing.assert_array_equal(_stored(everything, events, store), data)
    cortex = FmriExtractor(cifti_structures=("CORTEX_LEFT",))
    ours = _stored(cortex, events, store)
    np.testing.assert_array_equal(ours, data[:, :N_CORTEX])
    assert store.meta(cortex.items(events)[0].key)["tr"] == TR
    thalamus = FmriExtractor(cifti_structures=("CIFTI_STRUCTURE_THALAMUS_LEFT",))
    np.testing.assert_array_equal(_stored(thalamus, events, store), data[:, N_CORTEX:])
    # the way back: a dense scalar image on the kept grayordinates
    back = cortex.inverse_transform(ours[:2], events, store)
    assert isinstance(back.header.get_axis(0), nib.cifti2.ScalarAxis)
    models = back.header.get_axis(1)
    assert len(models) == N_CORTEX and set(models.name) == {"CIFTI_STRUCTURE_CORTEX_LEFT"}
    np.testing.assert_array_equal(np.asarray(back.dataobj), ours[:2])
    with pytest.raises(
        Exception,
        match=r"no grayordinates of \['CIFTI_STRUCTURE_CEREBELLUM'\]; structures in the file: CORTEX_LEFT, THALAMUS_LEFT",
    ):
        FmriExtractor(cifti_structures=("cerebellum",)).prepare(
            events, Store(tmp_path / "e"), progress=False
        )


def test_parcels_of_a_dlabel(folder, tmp_path):
    data = np.load(folder / "data.npy")
    store = Store(tmp_path)
    events = _events(folder)
    ex = FmriExtractor(projection="atlas", atlas=folder / "parcels.dlabel.nii", detrend=True)
    ours = _stored(ex, events, store)
    from nilearn import signal

    means = np.stack([data[:, :20].mean(1), data[:, 20:45].mean(1), data[:, 50:].mean(1)], axis=1)
    ref = signal.clean(means, detrend=True, standardize=None, t_r=TR, filter=False)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    space = ex.space(events, store)
    assert space.region_names == ("V1", "MT", "THAL") and space.regions == (1, 2, 3)
    back = ex.inverse_transform(np.array([1.0, 2.0, 3.0]), events, store)
    expected = np.r_[np.repeat([1.0, 2.0, 0.0], [20, 25, 5]), np.full(8, 3.0)]
    np.testing.assert_array_equal(np.asarray(back.dataobj)[0], expected)
    with pytest.raises(
        Exception, match=r"read as grayordinates \(projection='mask'\) or parcel means"
    ):
        FmriExtractor(projection="surface").prepare(events, Store(tmp_path / "x"), progress=False)


def test_header_preflight_checks_the_series_step(folder, tmp_path):
    store = Store(tmp_path)
    wrong = _events(folder, frequency=1.0)  # the series axis says TR 1.5 s
    with pytest.raises(
        ValueError,
        match=r"says frequency 1 Hz \(TR 1 s\) but the series axis of .*says a step of 1.5 s",
    ):
        FmriExtractor().prepare(wrong, store, progress=False)
    assert not list(store.keys())


def _cortex_only_parcels(folder: Path, path: Path) -> None:
    """The fixture's parcels with the thalamus unlabelled (0)."""
    img = nib.load(folder / "parcels.dlabel.nii")
    labels = np.asarray(img.dataobj).copy()
    labels[0, N_CORTEX:] = 0
    nib.save(nib.Cifti2Image(labels, header=img.header), path)


def _other_grayordinates(path: Path) -> None:
    models = nib.cifti2.BrainModelAxis.from_surface(np.arange(40), nvertex=60, name="CortexLeft")
    table = {0: ("???", (0.0, 0.0, 0.0, 0.0)), 1: ("V1", (1.0, 0, 0, 1))}
    label_axis = nib.cifti2.LabelAxis(["parcels"], [table])
    nib.save(nib.Cifti2Image(np.ones((1, 40), np.int32), header=(label_axis, models)), path)


def test_cifti_settings_checked_from_headers_before_any_work(folder, tmp_path):
    """A mask or template mask was silently ignored; a parcellation without a parcel on the
    kept structures failed in prepare with numpy's "need at least one array to stack"; the
    other settings failed inside prepare."""
    run = folder / "sub-01_bold.dtseries.nii"
    _cortex_only_parcels(folder, tmp_path / "cortex.dlabel.nii")
    _other_grayordinates(tmp_path / "other.dlabel.nii")
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.eye(4)), mask)
    cases = [
        (
            dict(mask=mask),
            f"{run}: a CIFTI run has no voxel grid for FmriExtractor.mask (got {mask}); set "
            "mask=None; choose grayordinates with cifti_structures",
        ),
        (
            dict(template_mask="brain"),
            f"{run}: a CIFTI run has no voxel grid for FmriExtractor.template_mask (got brain); "
            "set template_mask=None; choose grayordinates with cifti_structures",
        ),
        (
            dict(
                projection="atlas",
                atlas=tmp_path / "cortex.dlabel.nii",
                cifti_structures=("THALAMUS_LEFT",),
            ),
            f"{tmp_path / 'cortex.dlabel.nii'}: no parcel (label other than 0) on the "
            "grayordinates kept (8); keep structures that the parcellation labels "
            "(cifti_structures), or use projection='mask'",
        ),
        (
            dict(projection="atlas", atlas=tmp_path / "other.dlabel.nii"),
            f"{tmp_path / 'other.dlabel.nii'}: its grayordinates differ from the time series' "
            "(another mesh or volume space); use a parcellation defined on the same grayordinates",
        ),
        (
            dict(projection="atlas", atlas=mask),
            f"{run}: parcels of a CIFTI run come from a CIFTI dense label file; set "
            f"FmriExtractor.atlas to a .dlabel.nii (got {mask})",
        ),
        (
            dict(cifti_structures=("CORTEX_RIGHT",)),
            f"{run}: no grayordinates of ['CIFTI_STRUCTURE_CORTEX_RIGHT']; structures in the "
            "file: CORTEX_LEFT, THALAMUS_LEFT",
        ),
        (dict(fwhm=4.0), f"{run}: fwhm smoothing is not available for CIFTI data; set fwhm=None"),
    ]
    store = Store(tmp_path / "s")
    for fields, message in cases:
        with pytest.raises(ValueError) as err:
            FmriExtractor(**fields).prepare(_events(folder), store, progress=False)
        assert str(err.value) == message
    assert not list(store.keys())

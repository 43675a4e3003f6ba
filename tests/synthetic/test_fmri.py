"""Synthetic fMRI writer: real NIfTI runs on the MNI152 grid with a known response."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from neuralset.synthetic import SyntheticStudy
from neuralset.synthetic.fmri import (
    BASELINE,
    RESPONSE_REGIONS,
    SPACE,
    TR,
    bold_response,
    canonical_hrf,
    region_masks,
    template_grid,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return SyntheticStudy(
        path=tmp_path_factory.mktemp("synth") / "s",
        n_subjects=2,
        duration=60.0,
        modalities=("fmri",),
    )


def test_events_and_files(study, events):
    fmri = events[events["type"] == "Fmri"]
    assert len(fmri) == 2
    assert set(fmri["space"]) == {SPACE}
    np.testing.assert_array_equal(fmri["frequency"].to_numpy(), 1 / TR)
    np.testing.assert_array_equal(fmri["duration"].to_numpy(), 30 * TR)
    path = study.path / fmri["filepath"].iloc[0]
    assert path.suffix == ".nii"
    img = nib.load(path)
    brain, affine = template_grid()
    assert img.shape == brain.shape + (30,)
    np.testing.assert_allclose(img.affine, affine)
    assert img.header.get_zooms()[3] == TR
    mtime = path.stat().st_mtime_ns
    study.build()  # existing files are kept
    assert path.stat().st_mtime_ns == mtime


def test_known_response(study, events):
    fmri = events[events["type"] == "Fmri"]
    timeline = fmri["timeline"].iloc[0]
    data = np.asarray(nib.load(study.path / fmri["filepath"].iloc[0]).get_fdata())
    brain, affine = template_grid()
    words = events[(events["timeline"] == timeline) & (events["type"] == "Word")]
    response = bold_response(words, data.shape[-1])
    assert response.max() > 0.5  # the words do drive a response
    masks = region_masks(brain, affine)
    for name, (*_, amplitude) in RESPONSE_REGIONS.items():
        assert masks[name].sum() >= 7
        residual = data[masks[name]] - BASELINE - amplitude * response[None, :]
        assert (
            abs(residual.mean()) < 0.1 and 0.9 < residual.std() < 1.1
        )  # only the unit noise is left
    outside = brain & ~np.any(list(masks.values()), axis=0)
    assert abs(np.corrcoef(data[outside].mean(axis=0), response)[0, 1]) < 0.5


def test_hrf_peak():
    h = canonical_hrf(dt=0.05)
    assert 4.5 < np.argmax(h) * 0.05 < 5.5


def test_extractor_reads_the_response(study, events, tmp_path):
    """Study -> FmriExtractor (atlas of the response regions) -> delayed read, end to end."""
    from neuralset.extractors.neural.fmri import FmriExtractor
    from neuralset.segments import segment_on_triggers
    from neuralset.store import Store
    from neuralset.synthetic.fmri import NOISE_STD

    brain, affine = template_grid()
    masks = region_masks(brain, affine)
    labels = np.zeros(brain.shape, np.int16)
    for i, name in enumerate(RESPONSE_REGIONS):
        labels[masks[name]] = i + 1
    atlas = tmp_path / "regions.nii"
    nib.save(nib.Nifti1Image(labels, affine), atlas)
    extractor = FmriExtractor(
        projection="atlas", atlas=atlas, frequency=1 / TR, hemodynamic_delay=2 * TR
    )
    extractor.prepare(events, Store(tmp_path / "store"), progress=False)
    segments = segment_on_triggers(events, "Fmri", duration=20 * TR)
    out = extractor.read(segments, Store(tmp_path / "store")).data  # (runs, regions, time)
    assert out.shape == (2, len(RESPONSE_REGIONS), 20)
    for run, timeline in enumerate(segments.timeline_names):
        words = events[(events["timeline"] == timeline) & (events["type"] == "Word")]
        response = bold_response(words, 30)[2:22]  # volumes 2..21: the 4 s delay
        for i, name in enumerate(RESPONSE_REGIONS):
            expected = BASELINE + RESPONSE_REGIONS[name][3] * response
            tol = 5 * NOISE_STD / np.sqrt(masks[name].sum())
            np.testing.assert_allclose(out[run, i], expected, atol=tol)


def test_parcellation_covers_the_brain_with_the_response_regions_first(tmp_path):
    import os

    import pandas as pd

    from neuralset.synthetic.fmri import region_masks, template_grid, write_parcellation

    image, table = write_parcellation(tmp_path)
    labels = np.asarray(nib.load(image).dataobj)
    brain, affine = template_grid()
    masks = region_masks(brain, affine)
    np.testing.assert_array_equal(labels == 1, masks["left_superior_temporal"])
    np.testing.assert_array_equal(labels == 2, masks["occipital"])
    np.testing.assert_array_equal(labels > 0, brain)  # every brain voxel, nothing else
    names = pd.read_csv(table, sep="\t")
    assert list(names["name"][:2]) == ["left_superior_temporal", "occipital"]
    assert list(names["index"]) == list(range(1, labels.max() + 1))
    mtime = os.stat(image).st_mtime_ns
    write_parcellation(tmp_path)  # unchanged: not rewritten (its mtime is part of keys)
    assert os.stat(image).st_mtime_ns == mtime

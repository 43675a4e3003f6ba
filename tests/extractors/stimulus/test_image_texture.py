"""HOG and LBP against scikit-image's own calls; Fourier energy against its definition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.extractors.stimulus.image_texture import (
    FourierEnergy,
    ImageHog,
    ImageLbp,
    fourier_energy,
    lbp_bins,
)
from neuralset.segments import segment_on_triggers
from neuralset.store import Store


def _grating(rows: int, cols: int, cycles_per_pixel: float, angle: float) -> np.ndarray:
    y, x = np.indices((rows, cols))
    phase = 2 * np.pi * cycles_per_pixel * (x * np.cos(angle) + y * np.sin(angle))
    return 0.5 + 0.4 * np.sin(phase)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("texture")
    rng = np.random.default_rng(0)
    noise = (rng.random((90, 120, 3)) * 255).astype(np.uint8)
    Image.fromarray(noise).save(root / "noise.png")
    grating = (_grating(100, 100, 0.125, 0.0)[..., None].repeat(3, -1) * 255).astype(np.uint8)
    Image.fromarray(grating).save(root / "grating.png")
    return root


@pytest.fixture(scope="module")
def events(folder) -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "type": "Image",
            "start": [1.0, 3.0],
            "duration": 1.0,
            "timeline": "a",
            "filepath": ["noise.png", "grating.png"],
        }
    )
    raw["study_root"] = str(folder)
    return validate_events(raw)


def _gray(path: Path, size):
    from PIL import Image
    from skimage.color import rgb2gray
    from skimage.transform import resize

    gray = rgb2gray(np.asarray(Image.open(path).convert("RGB")))
    return resize(gray, size, anti_aliasing=True) if size else gray


def _read(ex, events, store):
    ex.prepare(events, store, progress=False)
    return (
        ex.replace(output="static", aggregation="trigger")
        .read(segment_on_triggers(events, "Image"), store)
        .data
    )


def test_hog_equals_skimage(folder, events, tmp_path):
    from skimage.feature import hog

    ex = ImageHog(size=(64, 96), orientations=8, pixels_per_cell=(8, 8), block_norm="L2")
    got = _read(ex, events, Store(tmp_path))
    for i, name in enumerate(("noise.png", "grating.png")):
        ref = hog(
            _gray(folder / name, (64, 96)),
            orientations=8,
            pixels_per_cell=(8, 8),
            cells_per_block=(2, 2),
            block_norm="L2",
        )
        np.testing.assert_allclose(got[i], ref, rtol=1e-5, atol=1e-7)
    with pytest.raises(
        ConfigError, match=r"^ImageHog.pixels_per_cell: \(16, 16\) pixels give \[1, 1\] cells"
    ):
        ImageHog(size=(16, 16), pixels_per_cell=(16, 16))


@pytest.mark.parametrize(("method", "points"), [("uniform", 8), ("default", 4), ("nri_uniform", 8)])
def test_lbp_histogram_equals_skimage(folder, events, tmp_path, method, points):
    from skimage.feature import local_binary_pattern
    from skimage.util import img_as_ubyte

    ex = ImageLbp(size=None, points=points, radius=2.0, method=method)
    got = _read(ex, events, Store(tmp_path))
    n = lbp_bins(points, method)
    for i, name in enumerate(("noise.png", "grating.png")):
        codes = local_binary_pattern(
            img_as_ubyte(_gray(folder / name, None)), points, 2.0, method=method
        )
        ref = np.histogram(codes, bins=np.arange(n + 1))[0] / codes.size
        np.testing.assert_allclose(got[i], ref, rtol=1e-6, atol=1e-7)
        assert codes.max() < n


def test_fourier_energy_definition_and_gratings(folder, events, tmp_path):
    ex = FourierEnergy(size=(100, 100), n_bands=5, n_orientations=4, window="none")
    got = _read(ex, events, Store(tmp_path))
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)
    # reference: per-bin sums of |FFT|^2 written as explicit loops over the spectrum
    gray = _gray(folder / "grating.png", (100, 100))
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    freqs = np.fft.fftfreq(100)
    edges = np.geomspace(0.01, 0.5, 6)
    ref = np.zeros((5, 4))
    for a, fy in enumerate(freqs):
        for b, fx in enumerate(freqs):
            r = np.hypot(fx, fy)
            if not edges[0] <= r <= edges[-1]:
                continue
            band = min(int(np.searchsorted(edges, r, side="right")) - 1, 4)
            orient = min(int(np.mod(np.arctan2(fy, fx), np.pi) / np.pi * 4), 3)
            ref[band, orient] += power[a, b]
    np.testing.assert_allclose(got[1], (ref / ref.sum()).ravel(), rtol=1e-4, atol=1e-7)
    # a vertical grating (0.125 cycle/pixel along x) has its energy at angle 0, in band 3
    assert np.argmax(got[1]) == 3 * 4 + 0
    oblique = fourier_energy(_grating(128, 128, 0.06, np.pi / 2), n_bands=5, n_orientations=4)
    assert np.argmax(oblique.reshape(5, 4).sum(axis=0)) == 2  # pi/2 falls in the third bin

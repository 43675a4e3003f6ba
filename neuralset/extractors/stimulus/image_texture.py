"""Classic texture features of ``Image`` events: HOG and LBP (scikit-image), 2-D Fourier energy.

Each image is read as RGB, converted to grey levels with :func:`skimage.color.rgb2gray`
(Rec. 709 luma in ``[0, 1]``) and, when ``size`` is set, resized with
:func:`skimage.transform.resize` (``anti_aliasing=True``), so images of any size give vectors of
one length. Static vectors, one per distinct image file.

Registered YAML kinds: ``image_hog``, ``image_lbp``, ``fourier_energy``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from ...config import ConfigError, config, register
from ..base import Computed, Item
from .media import read_image
from .media_features import MediaFileFeature

__all__ = ["ImageHog", "ImageLbp", "FourierEnergy", "gray_image", "fourier_energy", "lbp_bins"]


def gray_image(pixels: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Grey levels in ``[0, 1]`` (``rgb2gray``), resized to ``size`` (rows, columns) if given."""
    from skimage.color import rgb2gray
    from skimage.transform import resize

    gray = rgb2gray(np.asarray(pixels)[..., :3])
    if size is not None and gray.shape != tuple(size):
        gray = resize(gray, tuple(size), anti_aliasing=True)
    return np.asarray(gray, dtype=np.float64)


@config
class _TextureFeature(MediaFileFeature):
    default_event_type: ClassVar[str] = "Image"
    #: 2: transparent parts composited onto white, 16-bit images scaled (read_image)
    _version: ClassVar[int] = 2

    size: tuple[int, int] | None = (128, 128)

    def _check(self) -> None:
        if self.size is not None and min(self.size) < 8:
            raise ConfigError(
                f"{type(self).__name__}.size: (rows, columns) of at least 8 pixels, got {self.size}"
            )

    def gray(self, item: Item) -> np.ndarray:
        return gray_image(np.asarray(read_image(item.payload["path"])), self.size)


@register("image_hog")
@config
class ImageHog(_TextureFeature):
    """Histogram of oriented gradients (:func:`skimage.feature.hog`) of the grey image.

    The vector is ``hog(gray, orientations, pixels_per_cell, cells_per_block, block_norm,
    feature_vector=True)``; its length follows from ``size`` and the cell layout.

    Parameters
    ----------
    size
        ``(rows, columns)`` the grey image is resized to (at least 8 pixels each).
    orientations
        Number of orientation bins (>= 1).
    pixels_per_cell, cells_per_block
        Cell size in pixels and block size in cells (``size`` must hold one block).
    block_norm
        Block normalisation of :func:`skimage.feature.hog`.
    """

    orientations: int = 9
    pixels_per_cell: tuple[int, int] = (16, 16)
    cells_per_block: tuple[int, int] = (2, 2)
    block_norm: Literal["L1", "L1-sqrt", "L2", "L2-Hys"] = "L2-Hys"

    def _check(self) -> None:
        if self.size is None:
            raise ConfigError("ImageHog.size: HOG vectors need one image size, e.g. (128, 128)")
        if self.orientations < 1:
            raise ConfigError(f"ImageHog.orientations: must be >= 1, got {self.orientations}")
        cells = [s // p for s, p in zip(self.size, self.pixels_per_cell)]
        if any(c < b for c, b in zip(cells, self.cells_per_block)):
            raise ConfigError(
                f"ImageHog.pixels_per_cell: {self.size} pixels give {cells} cells, fewer than "
                f"one block of {self.cells_per_block}; use smaller cells or a larger size"
            )

    def compute(self, item: Item) -> Computed:
        from skimage.feature import hog

        vector = hog(
            self.gray(item),
            orientations=self.orientations,
            pixels_per_cell=tuple(self.pixels_per_cell),
            cells_per_block=tuple(self.cells_per_block),
            block_norm=self.block_norm,
            feature_vector=True,
        )
        return Computed(value=np.asarray(vector, dtype=np.float32))


def lbp_bins(points: int, method: str) -> int:
    """Number of distinct codes of :func:`skimage.feature.local_binary_pattern`."""
    if method == "uniform":
        return points + 2
    if method == "nri_uniform":
        return points * (points - 1) + 3
    return 2**points


@register("image_lbp")
@config
class ImageLbp(_TextureFeature):
    """Normalised histogram of local binary patterns (:func:`skimage.feature.local_binary_pattern`).

    Codes of the 8-bit grey image (``img_as_ubyte``: LBP compares neighbours, so integer levels
    avoid spurious float differences), one bin per possible code (:func:`lbp_bins`), divided
    by the number of pixels.

    Parameters
    ----------
    size
        ``(rows, columns)`` the grey image is resized to (at least 8 pixels each); ``None``: the image's own size.
    points, radius
        Number of neighbours (1 to 16) and their distance in pixels (> 0).
    method
        Code of :func:`skimage.feature.local_binary_pattern`.
    """

    points: int = 8
    radius: float = 1.0
    method: Literal["default", "ror", "uniform", "nri_uniform"] = "uniform"

    def _check(self) -> None:
        if not 1 <= self.points <= 16:
            raise ConfigError(f"ImageLbp.points: between 1 and 16 neighbours, got {self.points}")
        if self.radius <= 0:
            raise ConfigError(f"ImageLbp.radius: must be > 0 pixels, got {self.radius}")

    def compute(self, item: Item) -> Computed:
        from skimage.feature import local_binary_pattern
        from skimage.util import img_as_ubyte

        codes = local_binary_pattern(
            img_as_ubyte(self.gray(item)), self.points, self.radius, method=self.method
        )
        n = lbp_bins(self.points, self.method)
        hist = np.bincount(codes.astype(np.int64).ravel(), minlength=n)[:n] / codes.size
        return Computed(value=np.asarray(hist, dtype=np.float32))


def fourier_energy(
    gray: np.ndarray, n_bands: int, n_orientations: int, window: str = "hann"
) -> np.ndarray:
    """Share of the image's spectral power per (frequency band, orientation): ``(bands * orientations,)``.

    Power ``|FFT2((gray - mean) * window)|**2`` at each frequency ``(fy, fx)`` (cycles per
    pixel); bands are log-spaced in radius from one cycle per image (``1 / max(size)``) to the
    Nyquist frequency 0.5, orientations split ``[0, pi)`` of the frequency vector's angle
    equally. Frequencies outside the bands (DC, the corners beyond 0.5) are left out; the
    shares sum to 1 (band-major order).
    """
    rows, cols = gray.shape
    x = gray - gray.mean()
    if window == "hann":
        x = x * np.outer(np.hanning(rows), np.hanning(cols))
    power = np.abs(np.fft.fft2(x)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(rows), np.fft.fftfreq(cols), indexing="ij")
    radius = np.hypot(fx, fy)
    angle = np.mod(np.arctan2(fy, fx), np.pi)
    edges = np.geomspace(1.0 / max(rows, cols), 0.5, n_bands + 1)
    below = np.searchsorted(edges, radius, side="right") - 1
    band = np.where(radius == edges[-1], n_bands - 1, below)  # Nyquist on the last edge
    inside = (band >= 0) & (band < n_bands)
    orient = np.minimum((angle / np.pi * n_orientations).astype(np.int64), n_orientations - 1)
    energy = np.bincount(
        (band * n_orientations + orient)[inside],
        weights=power[inside],
        minlength=n_bands * n_orientations,
    )
    total = energy.sum()
    return (energy / total if total > 0 else energy).astype(np.float32)


@register("fourier_energy")
@config
class FourierEnergy(_TextureFeature):
    """Spectral power of the grey image per spatial-frequency band and orientation.

    See :func:`fourier_energy`; ``n_bands * n_orientations`` values summing to 1.

    Parameters
    ----------
    size
        ``(rows, columns)`` the grey image is resized to (at least 8 pixels each); ``None``: the image's own size.
    n_bands, n_orientations
        Number of log-spaced frequency bands and of orientations.
    window
        ``"hann"`` (a 2D Hann window before the FFT) or ``"none"``.
    """

    n_bands: int = 6
    n_orientations: int = 4
    window: Literal["hann", "none"] = "hann"

    def _check(self) -> None:
        if self.n_bands < 1 or self.n_orientations < 1:
            raise ConfigError(
                f"FourierEnergy.n_bands: n_bands and n_orientations must be >= 1, got "
                f"{self.n_bands} and {self.n_orientations}"
            )

    def compute(self, item: Item) -> Computed:
        vector = fourier_energy(self.gray(item), self.n_bands, self.n_orientations, self.window)
        return Computed(value=vector)

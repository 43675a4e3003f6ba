"""Classic image features: luminance statistics and color histograms of ``Image`` events.

Registered YAML kind: ``image_statistics``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...config import config, register
from ...validation import at_least
from ..base import Computed, Item
from .media import read_image
from .media_features import MediaFileFeature

__all__ = ["ImageStatistics", "image_statistics"]


def image_statistics(pixels: np.ndarray, n_bins: int) -> np.ndarray:
    """``[mean luminance, luminance std, R histogram, G histogram, B histogram]`` of an RGB image.

    Luminance is Rec. 709 luma of the 0-1 scaled values; histograms have ``n_bins`` equal bins
    over 0-255 and sum to 1.
    """
    rgb = np.asarray(pixels, dtype=np.float64)[..., :3]
    lum = (rgb / 255.0) @ np.array([0.2126, 0.7152, 0.0722])
    hists = [
        np.histogram(rgb[..., c], bins=n_bins, range=(0.0, 256.0))[0] / lum.size for c in range(3)
    ]
    return np.concatenate([[lum.mean(), lum.std()], *hists]).astype(np.float32)


@register("image_statistics")
@config
class ImageStatistics(MediaFileFeature):
    """Luminance mean and std and per-channel color histograms of Image events (static).

    See :func:`image_statistics`; the vector has ``2 + 3 * n_bins`` values.

    Parameters
    ----------
    n_bins
        Bins of each color channel's histogram (over 0-255).
    """

    default_event_type: ClassVar[str] = "Image"
    #: 2: transparent parts composited onto white, 16-bit images scaled (read_image)
    _version: ClassVar[int] = 2

    n_bins: int = 8

    def _check(self) -> None:
        at_least(self, "n_bins", 1)

    def compute(self, item: Item) -> Computed:
        pixels = np.asarray(read_image(item.payload["path"]))
        return Computed(value=image_statistics(pixels, self.n_bins))

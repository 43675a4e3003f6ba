"""A sub-window of each segment: :class:`Crop`.

Registered YAML kind: ``crop``.
"""

from __future__ import annotations

import numpy as np

from ...config import ConfigError, config, register
from ...segments import Segments
from ...store import Store
from ..base import Extractor, OutOfBounds, Output
from .wrapper import Wrapper, with_windows

__all__ = ["Crop"]


@register("crop")
@config
class Crop(Wrapper):
    """The inner extractor read on ``[segment start + start, segment start + start + duration)``.

    Reading ``Crop(extractor=x, start=0.1, duration=0.3)`` on a segment equals reading ``x`` on
    the segment moved by ``start`` seconds and lasting ``duration`` seconds (exactly: it is that
    read). The trigger is unchanged. A negative ``start`` reaches before the segment.

    Parameters
    ----------
    extractor
        The extractor to read.
    start
        Seconds from each segment's start to the window's start.
    duration
        Window length in seconds (``None``: to the segment's end, ``duration - start``).
    """

    extractor: Extractor
    start: float = 0.0
    duration: float | None = None

    def _check(self) -> None:
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"Crop.duration: must be > 0 seconds (or None), got {self.duration}")

    def windows(self, segments: Segments) -> Segments:
        """The cropped windows of ``segments``."""
        start = segments.start + self.start
        if self.duration is None:
            duration = segments.duration - self.start
            if len(duration) and duration.min() <= 0:
                bad = np.flatnonzero(duration <= 0)[:3].tolist()
                raise ValueError(
                    f"Crop.start: {self.start} s is past the end of segments {bad}; "
                    "lower start or set duration"
                )
        else:
            duration = np.full(len(segments), self.duration)
        return with_windows(segments, start, duration)

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        return self.extractor.read(self.windows(segments), store, out_of_bounds=out_of_bounds)

"""Base of the classic stimulus features computed from a file: one item per distinct file."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...config import config
from ...store import Store
from ..base import Item
from ..event_features import EventFeatureExtractor
from .media import check_media_events, media_items, media_payloads, read_audio, resample_audio

__all__ = ["MediaFileFeature"]


@config
class MediaFileFeature(EventFeatureExtractor):
    """Base of the classic features computed from a stimulus file (sound, image).

    One item per distinct (file identity, offset, duration): the same file shown twice is
    computed once.
    """

    def items(self, events: pd.DataFrame) -> list[Item]:
        return media_items(events, self.event_rows(events), self._keys_of)

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        return self._keys_of([ident for ident, _ in media_payloads(events, rows)])

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Each Audio event's part lies in a readable sound file (see
        :func:`~neuralset.extractors.stimulus.media.check_media_events`)."""
        super().preflight(events, store)
        rows = self.event_rows(events)
        check_media_events(events, rows, self.resolved_event_type, type(self).__name__)

    def _sound(self, payload: dict[str, Any], rate: float | None) -> tuple[np.ndarray, float]:
        samples, sr = read_audio(payload["path"], payload["offset"], payload["duration"])
        if rate is not None:
            return resample_audio(samples, sr, rate), rate
        return samples, sr

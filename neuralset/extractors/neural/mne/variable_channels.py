"""Base of the MNE extractors whose channel sets differ between recordings (iEEG, EMG, fNIRS).

:class:`VariableChannelsExtractor` extends :class:`~neuralset.extractors.neural.mne.base.MneExtractor`
with two things the M/EEG extractors do not need:

* **channel sets per recording** (``channels``): ``"per_recording"`` (default) or ``"union"``,
  read as described in :mod:`neuralset.extractors.neural.channel_sets`, or MNE-base's ``"intersection"``.
  Recordings are prepared whatever their channels (prepare only checks that each file exists,
  is readable, has channels of the picked types and spans its event).
* **line-noise removal before non-linear steps**: ``notch`` runs inside :meth:`preprocess`,
  before a subclass's non-linear step (Hilbert envelope, rectification), instead of after it as
  in the base pipeline. Subclasses say so through ``notch_first()`` and call :meth:`apply_notch`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from ....config import config
from ....segments import Segments
from ....store import Store
from ...base import OutOfBounds, Output
from ..channel_sets import read_channel_sets, union_channels
from .base import MneExtractor
from .preflight import check_one_rate, scan_recordings

__all__ = ["VariableChannelsExtractor"]


@config
class VariableChannelsExtractor(MneExtractor):
    """An :class:`~neuralset.extractors.neural.mne.base.MneExtractor` for recordings with differing channels.

    Parameters
    ----------
    channels
        ``"per_recording"``: each recording keeps its own channels; reading a batch that mixes
        recordings with different channel lists is an error naming them. ``"union"``: the output
        lies on the union of the channel names of all recordings of the events table,
        zero-filled where a recording lacks a channel, with
        :attr:`~neuralset.extractors.neural.channel_sets.ChannelOutput.channel_mask` (``(batch,
        channels)``, True where real) and ``channels`` (the names) on the returned output.
        ``"intersection"``: only the channels common to all recordings (see the base class).
    """

    channels: Literal["per_recording", "union", "intersection"] = "per_recording"  # type: ignore[assignment]

    def apply_notch(self, raw: Any) -> Any:
        """Apply ``notch`` here (call it from :meth:`preprocess`) when :meth:`notch_first`; the
        base pipeline then skips its own notch step."""
        if self.notch and self.notch_first():
            raw.notch_filter(list(self.notch), picks=np.arange(len(raw.ch_names)), verbose="error")
        return raw

    def check_recordings(self, events: pd.DataFrame, store: Store) -> None:
        """Preflight of every recording not yet stored: readable, channels of the picked types,
        span within the file; and one sampling rate when ``frequency`` is None."""
        if self.channels == "intersection":
            return super().check_recordings(events, store)
        _, rates = scan_recordings(self, events, store)
        check_one_rate(self, rates)

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        """Windows of a batch, ``(batch, channels, time)``; see ``channels`` for differing sets."""
        if self.channels == "intersection":
            return super().read(segments, store, out_of_bounds=out_of_bounds)
        # within one channel list the base read (windows + baseline) applies as is
        return read_channel_sets(self, super().read, segments, store, self.channels, out_of_bounds)

    def output_channels(self, segments: Segments, store: Store) -> tuple[str, ...]:
        """Names of the channels along axis 1 of :meth:`read`'s output for these segments."""
        if self.channels == "union":
            return union_channels(self, segments, store)
        return super().output_channels(segments, store)

"""MEG and EEG recordings: :class:`MegExtractor` and :class:`EegExtractor`.

Both run the MNE pipeline of :class:`~neuralset.extractors.neural.mne.base.MneExtractor`
(channel selection, filters, resampling, scaling, baseline at read time); EEG adds a
re-reference. Registered YAML kinds: ``meg``, ``eeg``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ....config import config, register
from ....validation import require
from .base import CHANNEL_TYPES, MneExtractor, RecordingMismatchError
from .headers import RecordingHeader

__all__ = [
    "MegExtractor",
    "EegExtractor",
    "MneExtractor",
    "CHANNEL_TYPES",
    "RecordingMismatchError",
]


@register("meg")
@config
class MegExtractor(MneExtractor):
    """MEG recordings (``Meg`` events); picks ``("mag", "grad")`` by default.

    Examples
    --------
    >>> meg = MegExtractor(frequency=100.0, filter=(0.5, 40.0))  # doctest: +SKIP
    >>> meg.prepare(events, store)  # doctest: +SKIP
    >>> meg.read(segments, store).data.shape  # (batch, channels, time)  # doctest: +SKIP
    """

    default_event_type: ClassVar[str] = "Meg"
    default_picks: ClassVar[tuple[str, ...]] = ("mag", "grad")


@register("eeg")
@config
class EegExtractor(MneExtractor):
    """EEG recordings (``Eeg`` events); picks ``("eeg",)`` by default.

    Parameters
    ----------
    reference
        ``"average"`` (``raw.set_eeg_reference("average")``, bad channels left out of the
        mean), a tuple of reference channel names, or ``None`` to keep the recorded reference.
    """

    default_event_type: ClassVar[str] = "Eeg"
    default_picks: ClassVar[tuple[str, ...]] = ("eeg",)

    reference: str | tuple[str, ...] | None = None

    def _check(self) -> None:
        require(
            not isinstance(self.reference, str) or self.reference == "average",
            self,
            "reference",
            f"expected 'average', a tuple of channel names or None, got {self.reference!r}",
        )

    def select_channels(self, header: RecordingHeader, where: str) -> list[str]:
        """The base selection; the ``reference`` channels must be among it (checked in the
        preflight, from the header, before any work)."""
        selected = super().select_channels(header, where)
        if isinstance(self.reference, tuple):
            absent = [c for c in self.reference if c not in selected]
            if absent:
                raise ValueError(
                    f"EegExtractor.reference: channel(s) {', '.join(absent)} not among the "
                    f"selected channels of {where}; add them to picks/ch_names"
                )
        return selected

    def preprocess(self, raw: Any) -> Any:
        if self.reference is None:
            return raw
        ref = "average" if self.reference == "average" else list(self.reference)
        if isinstance(ref, list):
            absent = [c for c in ref if c not in raw.ch_names]
            if absent:
                raise ValueError(
                    f"EegExtractor.reference: channel(s) {', '.join(absent)} not among the selected "
                    "channels; add them to picks/ch_names"
                )
        raw.set_eeg_reference(ref, projection=False, verbose="error")
        return raw

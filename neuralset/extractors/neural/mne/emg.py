"""Surface EMG through MNE: band-pass, rectification and envelope.

:class:`EmgExtractor` reads ``Emg`` recording events with the pipeline of
:class:`~neuralset.extractors.neural.mne.base.MneExtractor` and adds, in :meth:`EmgExtractor.preprocess`:

1. ``notch`` (before rectification, which would fold line noise into the envelope);
2. ``band``: band-pass ``raw.filter(low, high)`` (e.g. 20-450 Hz: motion artefacts and
   high-frequency noise out);
3. ``rectify``: absolute value (``raw.apply_function(np.abs)``);
4. ``envelope``: low-pass ``raw.filter(None, envelope)`` of the rectified signal (the linear
   envelope, e.g. 10 Hz);

then the base's ``filter``, crop and ``resample`` to ``frequency``.

EDF/BDF files are read with ``infer_types=True``, so channels labelled ``"EMG xxx"`` (as
``mne.export.export_raw(..., add_ch_type=True)`` writes them) are ``emg`` channels named ``xxx``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ....config import config, register
from ....readers import open_raw
from ....validation import positive, require
from .variable_channels import VariableChannelsExtractor

__all__ = ["EmgExtractor"]


@register("emg")
@config
class EmgExtractor(VariableChannelsExtractor):
    """EMG recordings (``Emg`` events): band-pass, rectification, envelope.

    Parameters
    ----------
    band
        ``(low, high)`` band-pass in Hz before rectification (``None``: no band-pass).
    rectify
        Take the absolute value after the band-pass.
    envelope
        Low-pass cut-off in Hz of the (rectified) signal; ``None``: no envelope.
    causal
        As for every MNE extractor; ``band``, ``envelope`` and a ``notch`` before rectification
        are zero-phase filters, so ``causal=True`` needs them off (``filter`` is causal).
    picks
        Default ``("emg",)``.

    Examples
    --------
    >>> emg = EmgExtractor(band=(20.0, 450.0), envelope=10.0, frequency=50.0)  # doctest: +SKIP
    """

    default_event_type: ClassVar[str] = "Emg"
    default_picks: ClassVar[tuple[str, ...]] = ("emg",)

    band: tuple[float, float] | None = (20.0, 450.0)
    rectify: bool = True
    envelope: float | None = 10.0

    def _check(self) -> None:
        require(
            self.band is None or 0 < self.band[0] < self.band[1],
            self,
            "band",
            "expected (low, high) with 0 < low < high Hz, e.g. (20.0, 450.0), "
            f"got {self.band}; use band=None for no band-pass",
        )
        positive(self, "envelope", "Hz", what="low-pass cut-off", optional=True)
        require(
            self.envelope is None or self.band is None or self.envelope < self.band[1],
            self,
            "envelope",
            f"the envelope cut-off ({self.envelope} Hz) must be below the band's high cut-off "
            f"({self.band and self.band[1]} Hz)",
        )
        if self.causal:
            acausal = [f"band={self.band}"] if self.band is not None else []
            acausal += [f"envelope={self.envelope}"] if self.envelope is not None else []
            acausal += [f"notch={self.notch} before rectify"] if self.notch and self.rectify else []
            require(
                not acausal,
                self,
                "causal",
                f"{', '.join(acausal)} run as zero-phase filters (they use later samples), so "
                "causal=True would store non-causal values; set them to None/() (the causal "
                "filter=(low, high) runs after rectification) or use causal=False",
            )

    def notch_first(self) -> bool:
        return self.rectify

    def read_raw(self, path: Path) -> Any:
        if Path(path).suffix.lower() in (".edf", ".bdf"):
            return open_raw(path, {"infer_types": True, **self.reader_options})
        return super().read_raw(path)

    def source_cutoffs(self) -> tuple[tuple[str, float | None], ...]:
        """``filter``'s cut-offs, the high cut-off of ``band`` and the ``envelope`` low-pass."""
        own = (("band[1] (high cut-off)", self.band[1]),) if self.band is not None else ()
        return super().source_cutoffs() + own + (("envelope (low-pass)", self.envelope),)

    def preprocess(self, raw: Any) -> Any:
        picks = np.arange(len(raw.ch_names))
        raw = self.apply_notch(raw)
        if self.band is not None:
            nyquist = raw.info["sfreq"] / 2
            if self.band[1] >= nyquist:
                raise ValueError(
                    f"EmgExtractor.band: high cut-off {self.band[1]} Hz is not below the Nyquist "
                    f"frequency ({nyquist:g} Hz) of the recording; lower it"
                )
            raw.filter(self.band[0], self.band[1], picks=picks, verbose="error")
        if self.rectify:
            raw.apply_function(np.abs, picks=picks)
        if self.envelope is not None:
            raw.filter(None, self.envelope, picks=picks, verbose="error")
        return raw

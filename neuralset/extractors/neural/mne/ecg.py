"""Electrocardiogram through MNE: the ECG signal or the heart rate of its R peaks.

:class:`EcgExtractor` reads ``Ecg`` recording events (a file with ECG channels: a dedicated
recording, or the ECG channel of a MEG/EEG file) with the pipeline of
:class:`~neuralset.extractors.neural.mne.base.MneExtractor` (channel selection, ``notch``,
``filter``, crop, resampling) and, with ``signal="heart_rate"``, replaces the ECG channels by
one ``heart_rate`` channel in beats per minute, computed in :meth:`EcgExtractor.preprocess`:

1. R peaks: :func:`mne.preprocessing.find_ecg_events` on the first ECG channel (band-pass
   ``qrs_band``, MNE's automatic QRS threshold);
2. at each sample between peaks ``k`` and ``k + 1``, ``60 / (t[k + 1] - t[k])``; before the second
   peak the first interval's rate, after the last peak the last interval's rate.

Registered YAML kind: ``ecg``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from ....config import ConfigError, config, register
from .base import MneExtractor

__all__ = ["EcgExtractor", "heart_rate"]


def heart_rate(peaks: np.ndarray, n_times: int, sfreq: float) -> np.ndarray:
    """Beats per minute at each of ``n_times`` samples from R-peak sample indices (step function)."""
    peaks = np.unique(np.asarray(peaks, dtype=np.int64))
    if len(peaks) < 2:
        raise ValueError(
            f"EcgExtractor: {len(peaks)} R peak(s) found; a heart rate needs at least two beats"
        )
    rates = 60.0 * sfreq / np.diff(peaks)
    interval = np.clip(
        np.searchsorted(peaks, np.arange(n_times), side="right") - 1, 0, len(rates) - 1
    )
    return rates[interval]


@register("ecg")
@config
class EcgExtractor(MneExtractor):
    """ECG recordings (``Ecg`` events): the ECG channels, or the heart rate.

    Parameters
    ----------
    signal
        ``"ecg"``: the picked ECG channels through the MNE pipeline; ``"heart_rate"``: one
        channel, the heart rate in beats per minute from the R peaks of the first ECG channel.
    qrs_band
        Band-pass in Hz of the R-peak detection (``find_ecg_events(l_freq, h_freq)``).
    picks
        Default ``("ecg",)``.

    Examples
    --------
    >>> EcgExtractor(signal="heart_rate", frequency=10.0)  # doctest: +SKIP
    """

    default_event_type: ClassVar[str] = "Ecg"
    default_picks: ClassVar[tuple[str, ...]] = ("ecg",)

    signal: Literal["ecg", "heart_rate"] = "ecg"
    qrs_band: tuple[float, float] = (5.0, 35.0)

    def _check(self) -> None:
        low, high = self.qrs_band
        if not 0 < low < high:
            raise ConfigError(
                f"EcgExtractor.qrs_band: expected (low, high) with 0 < low < high Hz, got {self.qrs_band}"
            )

    def source_cutoffs(self) -> tuple[tuple[str, float | None], ...]:
        """``filter``'s cut-offs, and with ``signal="heart_rate"`` the QRS band's."""
        own = (("qrs_band[1]", self.qrs_band[1]),) if self.signal != "ecg" else ()
        return super().source_cutoffs() + own

    def preprocess(self, raw: Any) -> Any:
        if self.signal == "ecg":
            return raw
        import mne

        nyquist = raw.info["sfreq"] / 2
        if self.qrs_band[1] >= nyquist:
            raise ValueError(
                f"EcgExtractor.qrs_band: {self.qrs_band[1]} Hz is not below the Nyquist frequency "
                f"({nyquist:g} Hz) of the recording; lower it"
            )
        events, _, _ = mne.preprocessing.find_ecg_events(
            raw,
            ch_name=raw.ch_names[0],
            l_freq=self.qrs_band[0],
            h_freq=self.qrs_band[1],
            verbose="error",
        )
        peaks = events[:, 0] - raw.first_samp
        rate = heart_rate(peaks, raw.n_times, raw.info["sfreq"])
        info = mne.create_info(["heart_rate"], raw.info["sfreq"], ch_types="misc")
        return mne.io.RawArray(rate[None, :], info, first_samp=raw.first_samp, verbose="error")

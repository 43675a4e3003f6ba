"""Causal filters of the MNE pipeline: one design, applied offline and online alike.

With ``causal=True`` an MNE extractor filters with causal IIR filters only, so that a stream
(:mod:`neuralset.streaming`) reproduces its output sample for sample:

* each ``notch`` frequency ``f``: a band-stop from ``f - f/400 - 0.5`` to ``f + f/400 + 0.5``
  Hz (the band of ``mne.filter.notch_filter``'s default width and transition);
* ``filter``: the band-pass, high-pass or low-pass of ``(low, high)``;
* resampling: an anti-alias low-pass at :data:`ANTI_ALIAS` times the output rate, then keeping
  one sample in ``q`` (the rates must be a whole multiple of each other).

Every filter is designed by ``mne.filter.create_filter(..., method="iir", phase="forward")``
with :data:`CAUSAL_IIR` (4th-order Butterworth, second-order sections) and applied with
``scipy.signal.sosfilt``: from a zero state over the whole recording offline
(:func:`apply_causal`), chunk by chunk with the state carried over online
(:class:`neuralset.streaming.causal.SosFilter`). The recurrence is the same, so are the
numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = [
    "CAUSAL_IIR",
    "ANTI_ALIAS",
    "CausalDesign",
    "causal_design",
    "apply_causal",
    "decimate_raw",
]

#: IIR parameters of every causal filter (``iir_params`` of ``mne.filter.create_filter``).
CAUSAL_IIR: dict[str, Any] = {"order": 4, "ftype": "butter", "output": "sos"}
#: Anti-alias cut-off before decimation, as a fraction of the output rate (0.4: 80% of Nyquist).
ANTI_ALIAS = 0.4


@dataclasses.dataclass(frozen=True)
class CausalDesign:
    """The causal filters of an extractor for one input rate.

    Attributes
    ----------
    sos
        Second-order sections of each filter, applied in order (notches, band, anti-alias).
    labels
        What each filter is (``"notch 50 Hz"``, ``"band (1.0, 40.0) Hz"``, ``"anti-alias 40 Hz"``).
    decimation
        Keep one sample in ``decimation`` after filtering (1: no resampling).
    sfreq
        Input rate in Hz.
    """

    sos: tuple[np.ndarray, ...]
    labels: tuple[str, ...]
    decimation: int
    sfreq: float

    @property
    def out_sfreq(self) -> float:
        """Output rate in Hz."""
        return self.sfreq / self.decimation


def _iir(sfreq: float, low: float | None, high: float | None) -> np.ndarray:
    import mne

    design = mne.filter.create_filter(
        None,
        sfreq,
        low,
        high,
        method="iir",
        iir_params=dict(CAUSAL_IIR),
        phase="forward",
        verbose="error",
    )
    return np.asarray(design["sos"], dtype=np.float64)


def causal_design(
    sfreq: float,
    notch: tuple[float, ...],
    band: tuple[float | None, float | None],
    frequency: float | None,
    where: str,
) -> CausalDesign:
    """The causal filters (and decimation) that take a ``sfreq`` recording to ``frequency``.

    Raises
    ------
    ValueError
        When ``frequency`` does not divide ``sfreq`` (naming ``where``), or a cut-off is not
        below the Nyquist frequency.
    """
    nyquist = sfreq / 2.0
    sos: list[np.ndarray] = []
    labels: list[str] = []
    for f in notch:
        half = f / 400.0 + 0.5
        if f + half >= nyquist:
            raise ValueError(
                f"{where}: notch {f:g} Hz is too close to the Nyquist frequency ({nyquist:g} Hz)"
            )
        sos.append(_iir(sfreq, f + half, f - half))
        labels.append(f"notch {f:g} Hz")
    low, high = band
    for value in (low, high):
        if value is not None and value >= nyquist:
            raise ValueError(
                f"{where}: filter cut-off {value:g} Hz is not below the Nyquist frequency "
                f"({nyquist:g} Hz) of the {sfreq:g} Hz recording"
            )
    if low is not None or high is not None:
        sos.append(_iir(sfreq, low, high))
        labels.append(f"band ({low}, {high}) Hz")
    decimation = 1
    if frequency is not None and abs(frequency - sfreq) > 1e-9:
        ratio = sfreq / frequency
        decimation = int(round(ratio))
        if decimation < 2 or abs(ratio - decimation) > 1e-9:
            raise ValueError(
                f"{where}: causal resampling keeps one sample in q, so the {sfreq:g} Hz "
                f"recording needs an output frequency of {sfreq:g}/q Hz, got {frequency:g} Hz; "
                "pick such a frequency or set causal=False"
            )
        cut = ANTI_ALIAS * frequency
        sos.append(_iir(sfreq, None, cut))
        labels.append(f"anti-alias {cut:g} Hz")
    return CausalDesign(tuple(sos), tuple(labels), decimation, float(sfreq))


def apply_causal(raw: Any, design: CausalDesign) -> None:
    """Filter every channel of a loaded ``mne.io.Raw`` in place, from a zero state."""
    from scipy.signal import sosfilt

    data = raw._data  # the loaded array; raw.apply_function would copy channel by channel
    for sos in design.sos:
        data[:] = sosfilt(sos, data, axis=-1)


def decimate_raw(raw: Any, decimation: int) -> Any:
    """A new ``RawArray`` keeping samples ``0, q, 2q, ...`` of ``raw`` (already filtered)."""
    import mne

    if decimation == 1:
        return raw
    info = raw.info.copy()
    with info._unlock():
        info["sfreq"] = raw.info["sfreq"] / decimation
        info["lowpass"] = min(float(raw.info["lowpass"]), info["sfreq"] / 2.0)
    return mne.io.RawArray(raw.get_data()[:, ::decimation], info, verbose="error")

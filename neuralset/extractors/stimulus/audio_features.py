"""Classic audio features: log-mel spectrogram and speech envelope of ``Audio`` events.

Registered YAML kinds: ``mel_spectrogram``, ``speech_envelope``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from ...config import ConfigError, config, register
from ...store import Store
from ...validation import at_least, positive, require
from ..base import Computed, Item
from .media import media_payloads, resample_audio
from .media_features import MediaFileFeature

__all__ = ["MelSpectrogram", "SpeechEnvelope", "mel_filters", "mel_spectrogram", "speech_envelope"]


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = 3.0 * f / 200.0
    log = 15.0 + 27.0 * np.log(np.maximum(f, 1e-10) / 1000.0) / np.log(6.4)
    return np.where(f < 1000.0, lin, log)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    lin = 200.0 * m / 3.0
    log = 1000.0 * np.exp(np.log(6.4) * (m - 15.0) / 27.0)
    return np.where(m < 15.0, lin, log)


def mel_filters(n_fft: int, n_mels: int, sfreq: float, fmin: float, fmax: float) -> np.ndarray:
    """``(n_fft // 2 + 1, n_mels)`` triangular filters on the Slaney mel scale, Slaney-normalised
    (each filter's area is constant)."""
    freqs = np.linspace(0.0, sfreq / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lower) / (center - lower)
    down = (upper - freqs[:, None]) / (upper - center)
    bank = np.maximum(0.0, np.minimum(up, down))
    return bank * (2.0 / (upper - lower))


def mel_spectrogram(
    samples: np.ndarray,
    sfreq: float,
    *,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    log: bool = True,
) -> np.ndarray:
    """``(frames, n_mels)`` power mel spectrogram (dB when ``log``) of mono ``samples``.

    Frames are centred (the signal is reflect-padded by ``n_fft // 2``): frame ``k`` is centred on
    sample ``k * hop_length``; periodic Hann window of ``n_fft`` samples; power spectrum.
    """
    x = np.asarray(samples, dtype=np.float64)
    pad = n_fft // 2
    x = np.pad(x, pad, mode="reflect") if len(x) > pad else np.pad(x, pad)
    n_frames = 1 + (len(x) - n_fft) // hop_length
    idx = np.arange(n_fft)[None, :] + hop_length * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    power = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2
    mel = power @ mel_filters(n_fft, n_mels, sfreq, fmin, fmax if fmax is not None else sfreq / 2)
    if log:
        mel = 10.0 * np.log10(np.maximum(mel, 1e-10))
    return mel.astype(np.float32)


def speech_envelope(samples: np.ndarray, sfreq: float, *, cutoff: float, rate: float) -> np.ndarray:
    """Broadband amplitude envelope: ``|hilbert(x)|``, low-passed at ``cutoff`` Hz (4th-order
    Butterworth, zero-phase) and resampled to ``rate`` Hz (``resample_poly``)."""
    from scipy.signal import butter, hilbert, sosfiltfilt

    env = np.abs(hilbert(np.asarray(samples, dtype=np.float64)))
    if cutoff < sfreq / 2:
        sos = butter(4, cutoff, btype="low", fs=sfreq, output="sos")
        if len(env) > 3 * (2 * len(sos) + 1):
            env = sosfiltfilt(sos, env)
    return resample_audio(env.astype(np.float32), sfreq, rate)


def file_rates(extractor: MediaFileFeature, events: pd.DataFrame) -> dict[str, int]:
    """The sampling rate of each distinct sound file of the extractor's events (headers only)."""
    import soundfile

    rows = extractor.event_rows(events)
    paths = dict.fromkeys(str(p["path"]) for _, p in media_payloads(events, rows))
    return {path: soundfile.info(path).samplerate for path in paths}


@register("mel_spectrogram")
@config
class MelSpectrogram(MediaFileFeature):
    """Log-mel spectrogram of Audio events: a series at ``sample_rate / hop_length`` Hz.

    Parameters
    ----------
    sample_rate
        Sounds are resampled to this rate first (``None``: the file's rate).
    n_fft, hop_length
        Window and step in samples; frame ``k`` is centred at ``k * hop_length / sample_rate`` s
        after the event onset.
    n_mels, fmin, fmax
        Mel bands between ``fmin`` and ``fmax`` Hz (``None``: Nyquist).
    log
        Power in dB (``10 log10``) rather than linear.
    """

    default_event_type: ClassVar[str] = "Audio"

    sample_rate: float | None = 16000.0
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float | None = None
    log: bool = True

    def _check(self) -> None:
        at_least(self, "n_fft", 2, "samples")
        at_least(self, "hop_length", 1, "samples")
        at_least(self, "n_mels", 1)
        nyquist = self.sample_rate / 2 if self.sample_rate is not None else None
        require(
            self.fmax is None or nyquist is None or self.fmax <= nyquist,
            self,
            "fmax",
            f"{self.fmax} Hz exceeds the Nyquist frequency ({nyquist} Hz at sample_rate="
            f"{self.sample_rate}); lower fmax or raise sample_rate",
        )
        require(
            0 <= self.fmin < min(x for x in (self.fmax, nyquist, np.inf) if x is not None),
            self,
            "fmin",
            f"the mel bands span [fmin, fmax), got fmin={self.fmin} Hz with fmax={self.fmax} "
            f"Hz (Nyquist: {nyquist} Hz); give 0 <= fmin below fmax and the Nyquist frequency",
        )

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """With ``sample_rate=None``, ``fmin`` and ``fmax`` lie below each file's Nyquist
        frequency (bands above it would be silent, -100 dB)."""
        super().preflight(events, store)
        if self.sample_rate is not None:
            return
        for path, rate in file_rates(self, events).items():
            nyquist = rate / 2
            top = self.fmax if self.fmax is not None else nyquist
            if top > nyquist or self.fmin >= top:
                raise ConfigError(
                    f"MelSpectrogram.fmax: bands [{self.fmin}, {top}) Hz exceed the Nyquist "
                    f"frequency ({nyquist:g} Hz) of {path} read at its own rate "
                    "(sample_rate=None); lower fmax and fmin, or set sample_rate"
                )

    def compute(self, item: Item) -> Computed:
        samples, sr = self._sound(item.payload, self.sample_rate)
        mel = mel_spectrogram(
            samples,
            sr,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            log=self.log,
        )
        return Computed(arrays={"data": mel}, meta={"sfreq": sr / self.hop_length})


@register("speech_envelope")
@config
class SpeechEnvelope(MediaFileFeature):
    """Amplitude envelope of Audio events (see :func:`speech_envelope`): ``(time, 1)`` series.

    Parameters
    ----------
    cutoff
        Low-pass cutoff in Hz, below each sound's Nyquist frequency (checked before any work).
    envelope_rate
        Rate in Hz of the stored envelope.
    """

    default_event_type: ClassVar[str] = "Audio"

    cutoff: float = 10.0
    envelope_rate: float = 100.0

    def _check(self) -> None:
        positive(self, "cutoff", "Hz")
        positive(self, "envelope_rate", "Hz")

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """``cutoff`` lies below each file's Nyquist frequency (the low-pass was skipped)."""
        super().preflight(events, store)
        for path, rate in file_rates(self, events).items():
            if self.cutoff >= rate / 2:
                raise ConfigError(
                    f"SpeechEnvelope.cutoff: {self.cutoff} Hz is not below the Nyquist frequency "
                    f"({rate / 2:g} Hz) of {path}; lower cutoff"
                )

    def compute(self, item: Item) -> Computed:
        samples, sr = self._sound(item.payload, None)
        env = speech_envelope(samples, sr, cutoff=self.cutoff, rate=self.envelope_rate)
        return Computed(arrays={"data": env[:, None]}, meta={"sfreq": self.envelope_rate})

"""Causal preprocessing with state carried across chunks: the online form of an MNE extractor.

:class:`OnlinePreprocessor` applies, chunk by chunk, the steps of a ``causal=True``
:class:`~neuralset.extractors.neural.mne.base.MneExtractor` (MEG, or EEG with its reference),
with the same numbers as the offline pipeline:

1. channel selection: the extractor's own ``select_channels`` on the stream's channels;
2. EEG reference (:class:`Rereference`): ``raw.set_eeg_reference``'s arithmetic (the mean over
   the reference channels subtracted from the good EEG channels);
3. filters (:class:`SosFilter`): the extractor's
   :func:`~neuralset.extractors.neural.mne.causal.causal_design`, each with its
   ``scipy.signal.sosfilt`` state carried from chunk to chunk;
4. resampling (:class:`Decimator`): one sample in ``q``, on the grid of the stream's first
   sample (or of ``first_sample``, the offline crop start);
5. scaling (:class:`Scaler`): with statistics fitted offline in ``prepare`` and read from the
   store (``meta["scaling"]`` of a stored recording), then ``clamp``; cast to float32.

Each step keeps its state in the object; a chunk goes in, the processed, time-major float32
samples come out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..extractors.neural.mne.base import MneExtractor
from ..extractors.neural.mne.headers import RecordingHeader
from ..extractors.neural.mne.meeg import EegExtractor
from .source import Chunk, StreamInfo

__all__ = ["SosFilter", "Decimator", "Rereference", "Scaler", "OnlinePreprocessor"]


class SosFilter:
    """A causal IIR filter (second-order sections) with its state carried across chunks."""

    def __init__(self, sos: np.ndarray, n_channels: int) -> None:
        self.sos = np.asarray(sos, dtype=np.float64)
        self.state = np.zeros((self.sos.shape[0], n_channels, 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Filter ``(channels, samples)``; the state moves on to the chunk's end."""
        from scipy.signal import sosfilt

        y, self.state = sosfilt(self.sos, x, axis=-1, zi=self.state)
        return np.asarray(y)


class Decimator:
    """Keep the samples whose stream index ``k`` satisfies ``(k - phase) % q == 0``."""

    def __init__(self, q: int, phase: int = 0) -> None:
        self.q, self.phase = int(q), int(phase)

    def __call__(self, x: np.ndarray, first: int) -> tuple[np.ndarray, int]:
        """``(kept samples, output index of the first kept one)`` of a chunk starting at ``first``."""
        if self.q == 1:
            return x, first - self.phase
        skip = (self.phase - first) % self.q
        kept = x[:, skip :: self.q]
        return kept, (first + skip - self.phase) // self.q


class Rereference:
    """EEG re-referencing as ``raw.set_eeg_reference(..., projection=False)`` computes it."""

    def __init__(self, ref_from: np.ndarray, ref_to: np.ndarray) -> None:
        self.ref_from, self.ref_to = np.asarray(ref_from), np.asarray(ref_to)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        ref = x[..., self.ref_from, :].mean(-2, keepdims=True)
        x[..., self.ref_to, :] -= ref
        return x


class Scaler:
    """``(x - center) / scale`` per channel, then ``clamp``; time-major float32 out."""

    def __init__(
        self,
        center: np.ndarray | None = None,
        scale: np.ndarray | None = None,
        clamp: float | None = None,
    ) -> None:
        self.center = None if center is None else np.asarray(center, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        self.clamp = clamp

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``(channels, samples)`` float64 in, ``(samples, channels)`` float32 out."""
        data = x.T
        if self.center is not None and self.scale is not None:
            data = (data - self.center) / self.scale
        if self.clamp is not None:
            data = np.clip(data, -self.clamp, self.clamp)
        return np.ascontiguousarray(data, dtype=np.float32)


class OnlinePreprocessor:
    """The preprocessing of a ``causal=True`` MEG/EEG extractor, applied chunk by chunk.

    Parameters
    ----------
    extractor
        A :class:`~neuralset.extractors.neural.mne.meeg.MegExtractor` or
        :class:`~neuralset.extractors.neural.mne.meeg.EegExtractor` (or an
        :class:`MneExtractor` without modality steps) with ``causal=True``.
    info
        The stream's channels and rate.
    scaling
        ``{"center": [...], "scale": [...]}`` fitted offline (the ``meta["scaling"]`` of a
        stored recording); required when the extractor has ``scaling``.
    first_sample
        Stream index of the offline crop start (the decimation grid starts there).

    Raises
    ------
    ValueError
        When the extractor is not causal, has modality steps with no online form, or its
        scaling statistics are missing; the message names the fix.
    """

    def __init__(
        self,
        extractor: MneExtractor,
        info: StreamInfo,
        *,
        scaling: dict[str, Any] | None = None,
        first_sample: int = 0,
    ) -> None:
        name = type(extractor).__name__
        if not extractor.causal:
            raise ValueError(
                f"{name}.causal: streaming needs causal filters; set causal=True (the offline "
                "pipeline then uses the same filters, so stored and streamed windows agree)"
            )
        own = type(extractor).preprocess
        if own is not MneExtractor.preprocess and not isinstance(extractor, EegExtractor):
            raise ValueError(
                f"{name}: its preprocess step has no online form yet; stream MEG or EEG extractors"
            )
        header = RecordingHeader(
            names=info.ch_names, types=info.ch_types, bads=info.bads, sfreq=info.sfreq, n_times=0
        )
        names = extractor.select_channels(header, "the stream")
        position = {n: i for i, n in enumerate(info.ch_names)}
        self.picks = np.array([position[n] for n in names], dtype=np.int64)
        self.ch_names = tuple(names)
        self.reference = self._reference(extractor, info, names)
        design = extractor.causal_design(info.sfreq, "the stream")
        self.labels = design.labels
        self.filters = [SosFilter(sos, len(names)) for sos in design.sos]
        self.decimator = Decimator(design.decimation, first_sample)
        self.sfreq_in = float(info.sfreq)
        self.sfreq = design.out_sfreq
        self.scaler = self._scaler(extractor, scaling, len(names))

    @staticmethod
    def _reference(extractor: MneExtractor, info: StreamInfo, names: list[str]) -> Any:
        # only an EegExtractor references its channels (other modality steps are refused above)
        reference = extractor.reference if isinstance(extractor, EegExtractor) else None
        if reference is None:
            return None
        kinds = dict(zip(info.ch_names, info.ch_types))
        good_eeg = [i for i, n in enumerate(names) if kinds[n] == "eeg" and n not in set(info.bads)]
        if reference == "average":
            ref_from = good_eeg
        else:
            absent = [c for c in reference if c not in names]
            if absent:
                raise ValueError(
                    f"EegExtractor.reference: channel(s) {', '.join(absent)} not among the "
                    "selected channels; add them to picks/ch_names"
                )
            ref_from = [names.index(c) for c in reference]
        return Rereference(np.array(ref_from), np.array(good_eeg))

    @staticmethod
    def _scaler(extractor: MneExtractor, scaling: dict[str, Any] | None, n: int) -> Scaler:
        name = type(extractor).__name__
        if extractor.scaling is None:
            return Scaler(clamp=extractor.clamp)
        if scaling is None:
            raise ValueError(
                f"{name}.scaling: {extractor.scaling!r} scaling online needs the statistics "
                "fitted offline: pass scaling=store.meta(key)['scaling'] of a prepared "
                "recording (see neuralset.streaming.online.stored_scaling)"
            )
        center, scale = np.asarray(scaling["center"]), np.asarray(scaling["scale"])
        if center.shape != (n,) or scale.shape != (n,):
            raise ValueError(
                f"{name}.scaling: statistics for {center.shape[0]} channels, the stream selects {n}"
            )
        return Scaler(center, scale, extractor.clamp)

    def __call__(self, chunk: Chunk) -> tuple[np.ndarray, int]:
        """``((samples, channels) float32, output index of its first sample)`` of a chunk."""
        x = chunk.data[self.picks]  # a copy: the chunk is left as it is
        if self.reference is not None:
            x = self.reference(x)
        for step in self.filters:
            x = step(x)
        x, first = self.decimator(x, chunk.first)
        return self.scaler(x), first

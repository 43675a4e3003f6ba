"""Sound embeddings from HuggingFace speech encoders (wav2vec2-style, HuBERT, Whisper).

Registered YAML kind: ``hf_audio``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ...config import config, register
from ...hashing import KEY_UNLESS_DEFAULT
from ...store import Store
from ...validation import finite, positive, require
from ..base import Computed, Item, events_label
from .audio_chunks import chunk_plan, first_group_norm, norm_with, whole_sound_norm
from .hf import HuggingFaceMediaExtractor, _is_local
from .media import audio_span, media_payloads, read_audio, resample_audio, resample_ratio

__all__ = [
    "HuggingFaceAudio",
    "check_audio_model",
    "min_samples",
    "receptive_field",
    "resampled_length",
]


def _load_audio_model(name: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """AutoModel, except Whisper: the encoder of a full ``WhisperModel``.

    (``WhisperEncoder.from_pretrained`` on a full Whisper folder silently keeps random weights:
    the checkpoint's keys carry an ``encoder.`` prefix.)
    """
    from transformers import AutoConfig, AutoModel, WhisperModel

    cfg = AutoConfig.from_pretrained(name, revision=kwargs.get("revision", "main"))
    if cfg.model_type == "whisper":
        net, info = WhisperModel.from_pretrained(name, **kwargs)
        return net.get_encoder(), info
    return AutoModel.from_pretrained(name, **kwargs)


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> tuple[int, int]:
    """Receptive field and total stride, in input samples, of a stack of unpadded 1-d convolutions.

    Output frame ``i`` of the stack sees the input samples ``[i * stride, i * stride + field)``.

    Parameters
    ----------
    kernels, strides
        Kernel size and stride of each layer, first layer first (``conv_kernel`` and
        ``conv_stride`` of a wav2vec2-style configuration).

    Examples
    --------
    >>> receptive_field([10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2])  # wav2vec2-base
    (400, 320)
    """
    field, stride = 1, 1
    for kernel, step in zip(kernels, strides):
        field += (int(kernel) - 1) * stride
        stride *= int(step)
    return field, stride


def min_samples(cfg: Any) -> int:
    """Fewest input samples from which a wav2vec2-style convolutional encoder gives one frame
    (its receptive field, :func:`receptive_field`)."""
    return receptive_field(cfg.conv_kernel, cfg.conv_stride)[0]


def check_audio_model(cfg: Any) -> None:
    """Raise unless ``cfg`` is a Whisper or a wav2vec2-style configuration (``conv_kernel``)."""
    if cfg.model_type != "whisper" and not hasattr(cfg, "conv_kernel"):
        raise ValueError(
            f"HuggingFaceAudio.model: a {cfg.model_type!r} model ({type(cfg).__name__}) is not "
            "supported: the extractor runs wav2vec2-style encoders (a convolutional front end "
            "on the waveform: wav2vec2, HuBERT, WavLM, data2vec-audio) and Whisper encoders; "
            "give one of those"
        )


def resampled_length(n: int, sfreq: float, target: float) -> int:
    """Samples that :func:`~neuralset.extractors.stimulus.media.resample_audio` gives for ``n``."""
    if abs(sfreq - target) < 1e-9:
        return n
    ratio = resample_ratio(sfreq, target)
    return -(-n * ratio.numerator // ratio.denominator)


@register("hf_audio")
@config
class HuggingFaceAudio(HuggingFaceMediaExtractor):
    """Hidden states of a speech encoder over each Audio event: a series at the latent rate.

    The part ``[offset, offset + duration)`` of the event's file (to its end when the duration
    is 0) is read, averaged to mono and resampled to the model's rate (``resample_poly``).
    wav2vec2-style models run on the whole sound, or on chunks of it with ``chunk_duration``
    (items and chunks of equal length are batched together: padding would change their
    group-normalised features). Whisper encoders run on consecutive windows of the feature
    extractor's length (30 s for real Whisper models, zero-padded, batched across items): a
    longer sound is covered window after window (nothing is cut at 30 s), each window seen
    without the sound on either side of it, and the frames past the end of the sound are dropped.

    The stored series is ``(frames, *features)`` at the model's latent rate (50 Hz for wav2vec2
    and Whisper), each frame stamped at the centre of the sound it summarises. A wav2vec2-style
    frame ``i`` sees the samples ``[i * stride, i * stride + field)`` (:func:`receptive_field`:
    a 320-sample stride and a 400-sample field for wav2vec2-base, 20 and 25 ms at 16 kHz), so
    it is stamped at ``(i * stride + field / 2) / rate`` s after the event onset (12.5 ms +
    ``i`` * 20 ms for wav2vec2-base; the series' ``start`` holds the 12.5 ms). A Whisper frame
    ``k`` is already centred at ``k / 50`` s (its two convolutions, kernel 3 with padding 1, are
    centred on mel frame ``2 k``, itself centred on sample ``320 k``). Reading paints the
    series at ``frequency`` (``None``: the latent rate) or averages it (``output="static"``).

    Parameters
    ----------
    chunk_duration
        wav2vec2-style models only: seconds of sound per forward pass (``None``: the whole
        sound in one pass, the model's exact output). Attention memory grows with the square
        of the number of frames, so a sound of several minutes (a story in a naturalistic
        MEG or fMRI study) may not fit in one pass: 10 minutes are 30,000 frames. With a
        chunk, each pass keeps the frames of its middle part and sets aside ``chunk_context``
        seconds of frames on each side, so every kept frame saw at least that much sound
        around it; the stitched series has exactly the frames and times of one pass. The
        input is normalised over the whole sound first, as in one pass, and so is the first
        convolution of models that group-normalise it over time (wav2vec2-base, HuBERT-base:
        ``feat_extract_norm="group"``; its statistics are computed over the whole sound, by
        pieces): the convolutional features of a chunk are those of one pass (to float
        rounding); the transformer layers differ by what their attention would have seen
        beyond the chunk: measure it on your model (on random weights, which attend
        everywhere, up to a third of the features' standard deviation for a wav2vec2-base
        architecture with 2.5 s of context; below 1% for 2-layer test models). Chunks of
        equal length are batched by ``batch_size``: memory grows with ``batch_size`` times
        the chunk, so lower ``batch_size`` with long chunks. The default is ``None`` because
        only the single pass is exact and the length that fits depends on the device and the
        attention implementation; 30 s with the default context is a reasonable start for
        long sounds (wav2vec2 was trained on crops of at most about 15 s).
    chunk_context
        Seconds of sound on each side of the kept frames of a chunk (only with
        ``chunk_duration``, less than half of it).
    """

    default_event_type: ClassVar[str] = "Audio"
    #: 2: wav2vec2-style frames stamped at the centre of their receptive field (was its start)
    _version: ClassVar[int] = 2

    chunk_duration: float | None = dataclasses.field(default=None, metadata=KEY_UNLESS_DEFAULT)
    chunk_context: float = dataclasses.field(default=5.0, metadata=KEY_UNLESS_DEFAULT)

    def _check(self) -> None:
        finite(self, "chunk_duration", "seconds", optional=True)
        positive(self, "chunk_duration", "seconds", optional=True)
        require(
            math.isfinite(self.chunk_context) and self.chunk_context >= 0,
            self,
            "chunk_context",
            f"must be a finite number >= 0 seconds, got {self.chunk_context}",
        )
        require(
            self.chunk_duration is not None or self.chunk_context == 5.0,
            self,
            "chunk_context",
            f"only used with chunk_duration, got chunk_context={self.chunk_context} with "
            "chunk_duration=None; set chunk_duration (seconds per forward pass) or leave "
            "chunk_context out",
        )
        require(
            self.chunk_duration is None or 2 * self.chunk_context < self.chunk_duration,
            self,
            "chunk_context",
            f"{self.chunk_context} s on each side leaves no frame of a {self.chunk_duration} s "
            "chunk; give chunk_context below half of chunk_duration, or a longer chunk_duration",
        )

    def _model(self) -> tuple[Any, Any]:
        from transformers import AutoFeatureExtractor

        return self._load_model(_load_audio_model, AutoFeatureExtractor.from_pretrained, "audio")

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """The checks of :meth:`HuggingFaceMediaExtractor.preflight`, then, for a model that
        is local or cached (its ``config.json`` and preprocessor read, no weights): that a
        Whisper model has no ``chunk_duration``, and that each Audio part holds at least a
        wav2vec2-style model's receptive field (:func:`min_samples`, after resampling to the
        model's rate) and each chunk keeps frames.

        Raises
        ------
        ValueError
            Naming the first too short event, its length and the receptive field; a
            ``chunk_duration`` that keeps no frame or is set for Whisper; or a model that is
            neither Whisper nor wav2vec2-style (:func:`check_audio_model`).
        """
        super().preflight(events, store)
        found = self._model_config()
        if found is None:
            return
        cfg, rate = found
        self._check_chunks(cfg, rate)
        if cfg.model_type == "whisper":
            return
        shortest = min_samples(cfg)
        rows, seen = self.event_rows(events), set()
        for row, (_, p) in zip(rows, media_payloads(events, rows)):
            if (span := (p["path"], p["offset"], p["duration"])) in seen:
                continue
            seen.add(span)
            first, n, sr = audio_span(*span)
            if n < 0:  # to the end of the file
                import soundfile

                n = soundfile.info(p["path"]).frames - first
            if (got := resampled_length(n, sr, rate)) < shortest:
                raise ValueError(
                    f"{type(self).__name__}: {events_label(events, int(row))}: {got} samples of "
                    f"sound at {rate:g} Hz are fewer than the model's receptive field "
                    f"({shortest} samples, {shortest / rate:g} s); lengthen the event's "
                    "duration or drop the event"
                )

    def _check_chunks(self, cfg: Any, rate: float) -> None:
        """Raise unless ``chunk_duration`` suits the model (see :meth:`preflight`)."""
        if self.chunk_duration is None:
            return
        name = type(self).__name__
        if cfg.model_type == "whisper":
            raise ValueError(
                f"{name}.chunk_duration: Whisper encoders run on their feature extractor's "
                f"fixed windows, got chunk_duration={self.chunk_duration}; leave "
                "chunk_duration out for Whisper models"
            )
        field, stride = receptive_field(cfg.conv_kernel, cfg.conv_stride)
        try:
            chunks, context = self._chunking(rate, stride)
            chunk_plan((chunks or 0) + 1, field, stride, chunks, context)
        except ValueError as err:
            raise ValueError(
                f"{name}.chunk_duration: {self.chunk_duration} s at {rate:g} Hz with "
                f"chunk_context={self.chunk_context} s: {err}; lengthen chunk_duration or "
                "shorten chunk_context"
            ) from None

    def _chunking(self, rate: float, stride: int) -> tuple[int | None, int]:
        """Samples per chunk (None: whole sounds) and frames of context on each side."""
        if self.chunk_duration is None:
            return None, 0
        context = math.ceil(self.chunk_context * rate / stride - 1e-9)
        return int(round(self.chunk_duration * rate)), context

    def _model_config(self) -> tuple[Any, float] | None:
        """The model's configuration and sampling rate, read from its ``config.json`` and
        preprocessor (no weights, no download); None for a model neither local nor cached.

        Raises
        ------
        ValueError
            The model is neither Whisper nor wav2vec2-style (:func:`check_audio_model`).
        """
        from huggingface_hub import try_to_load_from_cache
        from transformers import AutoConfig, AutoFeatureExtractor

        local = _is_local(self.model)
        kwargs: dict[str, Any] = {"local_files_only": True}
        if not local:
            kwargs["revision"] = self.revision
            if not isinstance(
                try_to_load_from_cache(self.model, "config.json", revision=self.revision), str
            ):
                return None
        cfg = AutoConfig.from_pretrained(self.model, **kwargs)
        check_audio_model(cfg)
        fe = AutoFeatureExtractor.from_pretrained(self.model, **kwargs)
        return cfg, float(fe.sampling_rate)

    def load_sound(self, payload: dict[str, Any]) -> np.ndarray:
        """The event's samples, mono, at the model's sampling rate."""
        _, fe = self._model()
        samples, sr = read_audio(payload["path"], payload["offset"], payload["duration"])
        return resample_audio(samples, sr, float(fe.sampling_rate))

    def latent_rate(self) -> float:
        """Frames per second of the encoder's output."""
        model, fe = self._model()
        cfg = model.config
        check_audio_model(cfg)
        if cfg.model_type == "whisper":
            return cfg.max_source_positions / (fe.n_samples / fe.sampling_rate)
        return float(fe.sampling_rate) / float(np.prod(cfg.conv_stride))

    def _forward(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        model, _ = self._model()
        param = next(model.parameters())
        with torch.no_grad():
            tensors = {
                k: torch.as_tensor(v, device=param.device).to(param.dtype)
                for k, v in inputs.items()
            }
            out = model(**tensors, output_hidden_states=True)
        return self._hidden_to_numpy(out.hidden_states)  # (layers, batch, frames, features)

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        model, fe = self._model()
        rate = self.latent_rate()
        sounds = [self.load_sound(i.payload) for i in items]
        self._check_chunks(model.config, float(fe.sampling_rate))
        if model.config.model_type == "whisper":
            series, start = self._whisper_series(sounds, rate), 0.0
        else:
            field = min_samples(model.config)
            series, start = self._conv_series(items, sounds), field / 2 / fe.sampling_rate
        return [
            Computed(
                arrays={"data": np.ascontiguousarray(s, dtype=np.float32)},
                meta={"sfreq": rate, "start": start},
            )
            for s in series
        ]

    def _whisper_series(self, sounds: list[np.ndarray], rate: float) -> list[np.ndarray]:
        """Whisper: consecutive windows of the feature extractor's length, batched."""
        _, fe = self._model()
        chunks: list[tuple[int, np.ndarray]] = []
        for k, s in enumerate(sounds):
            for a in range(0, max(len(s), 1), fe.n_samples):
                chunks.append((k, s[a : a + fe.n_samples]))
        parts: list[list[np.ndarray]] = [[] for _ in sounds]
        for b in range(0, len(chunks), self.batch_size):
            batch = chunks[b : b + self.batch_size]
            feats = fe([c for _, c in batch], sampling_rate=fe.sampling_rate, return_tensors="np")
            stack = self._forward({"input_features": feats["input_features"]})
            for j, (k, c) in enumerate(batch):
                n = int(np.ceil(len(c) / fe.sampling_rate * rate - 1e-9))
                parts[k].append(self._aggregate_layers(stack[:, j, :n]))
        return [np.concatenate(p, axis=0) for p in parts]

    def _conv_series(self, items: Sequence[Item], sounds: list[np.ndarray]) -> list[np.ndarray]:
        """wav2vec2-style: each sound normalised whole, then run whole or in chunks
        (:func:`~neuralset.extractors.stimulus.audio_chunks.chunk_plan`, with the first
        group norm's statistics of the whole sound); chunks of equal length are batched."""
        model, fe = self._model()
        field, stride = receptive_field(model.config.conv_kernel, model.config.conv_stride)
        chunk_samples, context = self._chunking(float(fe.sampling_rate), stride)
        group_norm = first_group_norm(model)
        inputs, plans, stats = [], [], {}
        for k, (item, sound) in enumerate(zip(items, sounds)):
            if len(sound) < field:
                raise ValueError(
                    f"{item.label}: {len(sound)} samples of sound at {fe.sampling_rate} Hz are "
                    f"fewer than the model's receptive field ({field} samples, "
                    f"{field / fe.sampling_rate:g} s); lengthen the event or drop it"
                )
            inputs.append(fe(sound, sampling_rate=fe.sampling_rate, return_tensors="np"))
            plans.append(chunk_plan(len(sound), field, stride, chunk_samples, context))
            if len(plans[k]) > 1 and group_norm is not None and chunk_samples is not None:
                piece = chunk_samples // int(group_norm[0].stride[0])
                stats[k] = whole_sound_norm(group_norm[0], inputs[k]["input_values"][0], piece)
        groups: dict[tuple[int, bool], list[tuple[int, tuple[int, int, int, int]]]] = {}
        for k, plan in enumerate(plans):
            for chunk in plan:
                groups.setdefault((chunk[1] - chunk[0], k in stats), []).append((k, chunk))
        parts: list[dict[int, np.ndarray]] = [{} for _ in items]
        for (_, global_norm), group in groups.items():
            for b in range(0, len(group), self.batch_size):
                batch = group[b : b + self.batch_size]
                values = np.stack([inputs[k]["input_values"][0, a:e] for k, (a, e, _, _) in batch])
                with contextlib.ExitStack() as stack:
                    if global_norm and group_norm is not None:
                        mean, var = (np.stack([stats[k][i] for k, _ in batch]) for i in (0, 1))
                        stack.enter_context(norm_with(group_norm[1], mean, var))
                    hidden = self._forward({"input_values": values})
                for j, (k, (a, _, lo, hi)) in enumerate(batch):
                    first = a // stride
                    parts[k][lo] = self._aggregate_layers(hidden[:, j, lo - first : hi - first])
        return [np.concatenate([p[lo] for lo in sorted(p)], axis=0) for p in parts]

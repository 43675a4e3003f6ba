"""Sound embeddings from HuggingFace speech encoders (wav2vec2-style, HuBERT, Whisper).

Registered YAML kind: ``hf_audio``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ...config import config, register
from ...store import Store
from ..base import Computed, Item, events_label
from .hf import HuggingFaceMediaExtractor, _is_local
from .media import audio_span, media_payloads, read_audio, resample_audio, resample_ratio

__all__ = ["HuggingFaceAudio", "check_audio_model", "min_samples", "resampled_length"]


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


def min_samples(cfg: Any) -> int:
    """Fewest input samples from which a wav2vec2-style convolutional encoder gives one frame."""
    n = 1
    for kernel, stride in zip(reversed(cfg.conv_kernel), reversed(cfg.conv_stride)):
        n = (n - 1) * stride + kernel
    return int(n)


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
    wav2vec2-style models run on the whole sound (items of equal length are batched together:
    padding would change their group-normalised features); Whisper encoders run on consecutive
    chunks of the feature extractor's length (30 s for real Whisper models, zero-padded, batched
    across items), and the frames past the end of the sound are dropped.

    The stored series is ``(frames, *features)`` at the model's latent rate (50 Hz for wav2vec2
    and Whisper), frame ``i`` at ``i / rate`` s after the event onset. For Whisper that is the
    centre of the frame's window; a wav2vec2-style frame ``i`` sees the samples ``[i * stride,
    i * stride + field)`` (:func:`min_samples`; 320 and 400 for wav2vec2-base), so ``i / rate``
    is the start of its window, whose centre is ``field / 2`` samples later (12.5 ms). Reading paints it at
    ``frequency`` (``None``: the latent rate) or averages it (``output="static"``).
    """

    default_event_type: ClassVar[str] = "Audio"

    def _model(self) -> tuple[Any, Any]:
        from transformers import AutoFeatureExtractor

        return self._load_model(_load_audio_model, AutoFeatureExtractor.from_pretrained, "audio")

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """The checks of :meth:`HuggingFaceMediaExtractor.preflight`, then, for a wav2vec2-style
        model that is local or cached, that each Audio part holds at least the model's
        receptive field (:func:`min_samples`, after resampling to the model's rate).

        Raises
        ------
        ValueError
            Naming the first too short event, its length and the receptive field; or a model
            that is neither Whisper nor wav2vec2-style (:func:`check_audio_model`).
        """
        super().preflight(events, store)
        field = self._receptive_field()
        if field is None:
            return
        shortest, rate = field
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

    def _receptive_field(self) -> tuple[int, float] | None:
        """Fewest samples and sampling rate of a wav2vec2-style model, read from its
        ``config.json`` and preprocessor (no weights, no download); None for other models
        (Whisper pads its chunks) or a model neither local nor cached.

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
        if cfg.model_type == "whisper":
            return None
        fe = AutoFeatureExtractor.from_pretrained(self.model, **kwargs)
        return min_samples(cfg), float(fe.sampling_rate)

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
        series: list[np.ndarray | None] = [None] * len(items)
        if model.config.model_type == "whisper":
            chunks: list[tuple[int, np.ndarray]] = []
            for k, s in enumerate(sounds):
                for a in range(0, max(len(s), 1), fe.n_samples):
                    chunks.append((k, s[a : a + fe.n_samples]))
            parts: list[list[np.ndarray]] = [[] for _ in items]
            for b in range(0, len(chunks), self.batch_size):
                batch = chunks[b : b + self.batch_size]
                feats = fe(
                    [c for _, c in batch], sampling_rate=fe.sampling_rate, return_tensors="np"
                )
                stack = self._forward({"input_features": feats["input_features"]})
                for j, (k, c) in enumerate(batch):
                    n = int(np.ceil(len(c) / fe.sampling_rate * rate - 1e-9))
                    parts[k].append(self._aggregate_layers(stack[:, j, :n]))
            series = [np.concatenate(p, axis=0) for p in parts]
        else:
            shortest = min_samples(model.config)
            by_length: dict[int, list[int]] = {}
            for k, s in enumerate(sounds):
                if len(s) < shortest:
                    raise ValueError(
                        f"{items[k].label}: {len(s)} samples of sound at {fe.sampling_rate} Hz "
                        f"are fewer than the model's receptive field ({shortest} samples, "
                        f"{shortest / fe.sampling_rate:g} s); lengthen the event or drop it"
                    )
                by_length.setdefault(len(s), []).append(k)
            for group in by_length.values():
                for b in range(0, len(group), self.batch_size):
                    ks = group[b : b + self.batch_size]
                    feats = fe(
                        [sounds[k] for k in ks], sampling_rate=fe.sampling_rate, return_tensors="np"
                    )
                    stack = self._forward({"input_values": feats["input_values"]})
                    for j, k in enumerate(ks):
                        series[k] = self._aggregate_layers(stack[:, j])
        return [
            Computed(
                arrays={"data": np.ascontiguousarray(s, dtype=np.float32)}, meta={"sfreq": rate}
            )
            for s in series
            if s is not None
        ]

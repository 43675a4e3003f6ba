"""Video embeddings from HuggingFace clip models (VideoMAE-style) over sliding clips.

Registered YAML kind: ``hf_video``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from ...config import config, register
from ...validation import at_least, positive
from ..base import Computed, Item
from .hf import HuggingFaceMediaExtractor
from .image import frame_times
from .media import lazy_video_frames, read_video

__all__ = ["HuggingFaceVideo", "clip_starts"]


def clip_starts(n_frames: int, stride: int) -> np.ndarray:
    """First frame of each clip: every ``stride`` frames while inside the video."""
    return np.arange(0, max(n_frames, 1), stride)


@register("hf_video")
@config
class HuggingFaceVideo(HuggingFaceMediaExtractor):
    """Embeddings of sliding clips of each Video event: a series at ``frame_frequency / stride``.

    Frames are sampled at ``frame_frequency`` (``None``: the video's rate), grouped in clips of
    the model's ``num_frames`` consecutive sampled frames starting every ``clip_stride`` frames
    (clips running past the end repeat the last frame). Clip ``i`` is stored at time
    ``i * clip_stride / frame_frequency`` (its first frame). Frames are prepared by the model's
    image processor (``VideoMAEImageProcessor``; the video processor needs torchvision).

    Parameters
    ----------
    frame_frequency
        Rate in Hz at which frames are sampled from the video.
    clip_stride
        Sampled frames between clip starts (``None``: the model's ``num_frames``, no overlap).
    token_aggregation
        ``"mean"``, ``"sum"`` or per-feature ``"max"`` of the clip's tokens, or its ``"first"``
        token.
    """

    default_event_type: ClassVar[str] = "Video"

    frame_frequency: float | None = None
    clip_stride: int | None = None
    token_aggregation: Literal["mean", "sum", "max", "first"] = "mean"

    def _check(self) -> None:
        positive(self, "frame_frequency", "Hz", optional=True)
        at_least(self, "clip_stride", 1, "frame", optional=True)

    def _model(self) -> tuple[Any, Any]:
        from transformers import AutoImageProcessor, AutoModel

        return self._load_model(
            AutoModel.from_pretrained, AutoImageProcessor.from_pretrained, "video"
        )

    def clips(self, payload: dict[str, Any]) -> tuple[list[list[np.ndarray]], float]:
        """The clips of a Video event (lists of ``(H, W, 3)`` frames) and the clip rate."""
        model, _ = self._model()
        n_frames = int(model.config.num_frames)
        stride = self.clip_stride or n_frames
        frames, fps = read_video(payload["path"], payload["frequency"])
        rate = self.frame_frequency or fps
        times = frame_times(payload["duration"], len(frames), fps, payload["offset"], rate)
        sampled = lazy_video_frames(frames, fps, times)  # read clip by clip when embedded
        clips = []
        for s in clip_starts(len(sampled), stride):
            idx = np.minimum(np.arange(s, s + n_frames), len(sampled) - 1)
            clips.append([sampled[i] for i in idx])
        return clips, rate / stride

    def embed(self, clips: Sequence[list[np.ndarray]]) -> np.ndarray:
        """Embeddings of clips, batched by ``batch_size``."""
        import torch

        model, proc = self._model()
        param = next(model.parameters())
        out = []
        for b in range(0, len(clips), self.batch_size):
            pixels = proc(list(clips[b : b + self.batch_size]), return_tensors="np")["pixel_values"]
            with torch.no_grad():
                res = model(
                    pixel_values=torch.as_tensor(pixels, device=param.device).to(param.dtype),
                    output_hidden_states=True,
                )
            stack = self._hidden_to_numpy(res.hidden_states)  # (layers, batch, tokens, features)
            tokens = {
                "first": lambda t: t[..., 0, :],
                "mean": lambda t: t.mean(axis=-2),
                "sum": lambda t: t.sum(axis=-2),
                "max": lambda t: t.max(axis=-2),
            }[self.token_aggregation](stack)
            out.append(self._aggregate_layers(tokens))
        return np.concatenate(out, axis=0).astype(np.float32)

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        per_item = [self.clips(i.payload) for i in items]
        flat = [c for clips, _ in per_item for c in clips]
        vectors = self.embed(flat)
        results, pos = [], 0
        for clips, rate in per_item:
            series = vectors[pos : pos + len(clips)]
            pos += len(clips)
            results.append(
                Computed(arrays={"data": np.ascontiguousarray(series)}, meta={"sfreq": float(rate)})
            )
        return results

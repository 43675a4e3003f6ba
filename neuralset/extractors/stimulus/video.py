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
from .image import aggregate_tokens, frame_times
from .media import lazy_video_frames, read_video

__all__ = ["HuggingFaceVideo", "clip_starts", "video_prefix_tokens"]


def clip_starts(n_frames: int, stride: int) -> np.ndarray:
    """First frame of each clip: every ``stride`` frames while inside the video."""
    return np.arange(0, max(n_frames, 1), stride)


def video_prefix_tokens(model: Any, pixels: np.ndarray, n_tokens: int) -> int:
    """Tokens before the patch tokens (a CLS token in TimeSformer and ViViT, none in VideoMAE):
    those beyond the ``(frames // t) * (height // h) * (width // w)`` tubelet grid of ``pixels``
    ``(batch, frames, channels, height, width)``."""
    cfg = model.config
    tubelet = getattr(cfg, "tubelet_size", 1)
    if isinstance(tubelet, int):
        patch = getattr(cfg, "patch_size", 1)
        tubelet = (tubelet, *((patch, patch) if isinstance(patch, int) else patch))
    t, h, w = tubelet
    return n_tokens - (pixels.shape[1] // t) * (pixels.shape[-2] // h) * (pixels.shape[-1] // w)


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
        ``"mean"``, ``"sum"`` or per-feature ``"max"`` of the clip's patch tokens (a CLS token,
        as in TimeSformer and ViViT, excluded), or its ``"first"`` (CLS) token (an error for
        models without one, such as VideoMAE).
    """

    default_event_type: ClassVar[str] = "Video"
    #: 2: mean, sum and max included the CLS token of TimeSformer and ViViT
    _version: ClassVar[int] = 2

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
            prefix = video_prefix_tokens(model, pixels, res.hidden_states[-1].shape[-2])
            if prefix == 0 and self.token_aggregation == "first":
                raise ValueError(
                    f"HuggingFaceVideo.token_aggregation: {type(model).__name__} has no CLS "
                    "token ('first' would be one patch of the first tubelet); use 'mean', 'sum' "
                    "or 'max'"
                )
            stack = self._hidden_to_numpy(res.hidden_states)  # (layers, batch, tokens, features)
            pooled = aggregate_tokens(stack, self.token_aggregation, prefix)
            out.append(self._aggregate_layers(pooled))
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

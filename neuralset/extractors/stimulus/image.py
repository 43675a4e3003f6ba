"""Image embeddings from HuggingFace vision models (DINOv2, CLIP vision, ViT); video frames too.

Registered YAML kind: ``hf_image``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from ...config import config, register
from ...validation import positive, require
from ..base import Computed, Item
from .hf import HuggingFaceMediaExtractor
from .media import lazy_video_frames, read_image, read_video

__all__ = ["HuggingFaceImage", "aggregate_tokens", "frame_times", "prefix_tokens"]


def _load_vision_model(name: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """AutoModel, except a full CLIP checkpoint: its vision tower (``CLIPVisionModel``)."""
    from transformers import AutoConfig, AutoModel, CLIPVisionModel

    cfg = AutoConfig.from_pretrained(name, revision=kwargs.get("revision", "main"))
    if cfg.model_type == "clip":
        return CLIPVisionModel.from_pretrained(name, **kwargs)
    return AutoModel.from_pretrained(name, **kwargs)


def frame_times(
    duration: float, n_frames: int, fps: float, offset: float, rate: float
) -> np.ndarray:
    """Times (s, from the file start) at which a video shown for ``duration`` s is sampled.

    Samples at ``offset + k / rate`` for ``k / rate < duration`` (the whole remaining video
    when ``duration`` is 0).
    """
    span = duration if duration > 0 else max(n_frames / fps - offset, 0.0)
    count = max(int(np.ceil(span * rate - 1e-9)), 1)
    return offset + np.arange(count) / rate


def aggregate_tokens(tokens: np.ndarray, how: str, prefix: int = 1) -> np.ndarray:
    """``(..., tokens, features)`` -> ``(..., features)``: the first (CLS) token, or the mean,
    sum or per-feature max of the patch tokens (the ``prefix`` tokens before them, CLS,
    registers or distillation token, excluded when there are others)."""
    if how == "first" or tokens.shape[-2] <= prefix:
        return tokens[..., 0, :]
    patches = tokens[..., prefix:, :]
    if how == "sum":
        return patches.sum(axis=-2)
    if how == "max":
        return patches.max(axis=-2)
    return patches.mean(axis=-2)


def prefix_tokens(model: Any, pixels: np.ndarray, shape: Sequence[int]) -> int:
    """Tokens before the patch tokens in hidden states of ``shape`` ``(batch, tokens, features)``
    (CLS, registers, distillation token): those beyond the ``(height // patch) * (width //
    patch)`` patch grid of ``pixels`` ``(batch, channels, height, width)``.

    Raises
    ------
    ValueError
        The hidden states are not token sequences (a convolutional network's feature maps).
    """
    cfg = getattr(model.config, "vision_config", model.config)
    patch = getattr(cfg, "patch_size", None)
    if len(shape) != 3 or patch is None:
        raise ValueError(
            f"HuggingFaceImage.model: the hidden states of {type(model).__name__} are "
            f"{tuple(shape)} feature maps, not (batch, tokens, features) token sequences; use a "
            "vision transformer such as ViT, DINOv2 or CLIP"
        )
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    return int(shape[-2]) - (pixels.shape[-2] // ph) * (pixels.shape[-1] // pw)


@register("hf_image")
@config
class HuggingFaceImage(HuggingFaceMediaExtractor):
    """Embedding of each Image event (a static vector), or of a Video event's frames (a series).

    Parameters
    ----------
    token_aggregation
        ``"first"`` (the CLS token), or ``"mean"``, ``"sum"`` or ``"max"`` (per feature) of the
        patch tokens, the tokens before them excluded (CLS, DINOv2's registers, DeiT's
        distillation token).
    frame_frequency
        On Video events (``event_type="Video"``): rate in Hz at which frames are embedded
        (``None``: every frame, at the video's own rate). Frame at time ``t`` is the latest one
        shown at or before ``t``.
    """

    default_event_type: ClassVar[str] = "Image"
    #: 2: transparent parts composited onto white, 16-bit images scaled (read_image)
    #: 3: register and distillation tokens were pooled with the patch tokens
    _version: ClassVar[int] = 3

    token_aggregation: Literal["first", "mean", "sum", "max"] = "first"
    frame_frequency: float | None = None

    def _check(self) -> None:
        positive(self, "frame_frequency", "Hz", optional=True)
        require(
            self.frame_frequency is None or self.resolved_event_type == "Video",
            self,
            "frame_frequency",
            f"only used on Video events, got {self.frame_frequency} with event_type="
            f"{self.resolved_event_type!r}; set event_type='Video' or drop frame_frequency",
        )

    def _model(self) -> tuple[Any, Any]:
        from transformers import AutoImageProcessor

        return self._load_model(_load_vision_model, AutoImageProcessor.from_pretrained, "image")

    def embed(self, images: Sequence[Any]) -> np.ndarray:
        """Embeddings of images (PIL images or ``(H, W, 3)`` uint8 arrays), batched."""
        import torch

        model, proc = self._model()
        param = next(model.parameters())
        out = []
        for b in range(0, len(images), self.batch_size):
            pixels = proc(list(images[b : b + self.batch_size]), return_tensors="np")[
                "pixel_values"
            ]
            with torch.no_grad():
                res = model(
                    pixel_values=torch.as_tensor(pixels, device=param.device).to(param.dtype),
                    output_hidden_states=True,
                )
            prefix = prefix_tokens(model, pixels, tuple(res.hidden_states[-1].shape))
            stack = self._hidden_to_numpy(res.hidden_states)  # (layers, batch, tokens, features)
            tokens = aggregate_tokens(stack, self.token_aggregation, prefix)
            out.append(self._aggregate_layers(tokens))
        return np.concatenate(out, axis=0).astype(np.float32)

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        video = self.resolved_event_type == "Video"
        if not video:
            vectors = self.embed([read_image(i.payload["path"]) for i in items])
            return [Computed(value=np.ascontiguousarray(v)) for v in vectors]
        results = []
        for item in items:
            frames, rate = self.frames(item.payload)
            series = self.embed(frames)
            results.append(Computed(arrays={"data": series}, meta={"sfreq": float(rate)}))
        return results

    def frames(self, payload: dict[str, Any]) -> tuple[list[np.ndarray], float]:
        """The frames of a Video event sampled at ``frame_frequency`` and that rate; frames of a
        ``.npy`` video stay memory-mapped views until embedded, batch by batch."""
        frames, fps = read_video(payload["path"], payload["frequency"])
        rate = self.frame_frequency or fps
        times = frame_times(payload["duration"], len(frames), fps, payload["offset"], rate)
        return lazy_video_frames(frames, fps, times), rate

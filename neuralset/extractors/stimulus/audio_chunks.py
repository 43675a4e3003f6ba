"""Long sounds through wav2vec2-style encoders in chunks (see ``HuggingFaceAudio.chunk_duration``).

:func:`chunk_plan` splits a sound's frames into kept runs, each computed from a chunk that also
holds context on both sides. Models whose first convolution is group-normalised over time
(wav2vec2-base, HuBERT-base: ``feat_extract_norm="group"``) would normalise each chunk by its
own statistics; :func:`whole_sound_norm` computes that layer's statistics over the whole sound
(convolution by pieces, no attention) and :func:`norm_with` makes the chunks use them, so that
the convolutional features of a chunk are those of a single pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["chunk_plan", "first_group_norm", "norm_with", "whole_sound_norm"]


def chunk_plan(
    n_samples: int, field: int, stride: int, chunk_samples: int | None, context: int
) -> list[tuple[int, int, int, int]]:
    """How a convolutional-front-end encoder covers a sound in chunks.

    The sound's ``(n_samples - field) // stride + 1`` frames are split into consecutive kept
    runs; each run is computed from a chunk of at most ``chunk_samples`` input samples (plus,
    for the last, the fewer than ``stride`` samples after the last frame's window) that also
    holds up to ``context`` frames on each side (fewer at the sound's edges). The first chunk
    starts at sample 0 and the last ends at ``n_samples``, so one chunk is the whole sound.

    Returns
    -------
    list of (first sample, end sample, first kept frame, end kept frame)
        Global frame ``f`` is the chunk's frame ``f - first sample // stride``.

    Raises
    ------
    ValueError
        A chunk of ``chunk_samples`` keeps no frame once ``context`` frames are set aside on
        each side.

    Examples
    --------
    >>> chunk_plan(3520, 400, 320, 1360, 1)  # 10 frames, 4 per chunk, 2 kept
    [(0, 1040, 0, 2), (320, 1680, 2, 4), (960, 2320, 4, 6), (1600, 2960, 6, 8), (2240, 3520, 8, 10)]
    """
    n_frames = (n_samples - field) // stride + 1
    if chunk_samples is None or chunk_samples >= n_samples:
        return [(0, n_samples, 0, n_frames)]
    per_chunk = (chunk_samples - field) // stride + 1
    keep = per_chunk - 2 * context
    if keep < 1:
        raise ValueError(
            f"a chunk of {chunk_samples} samples gives {max(per_chunk, 0)} frames (receptive "
            f"field {field}, stride {stride}), none left once {context} "
            + ("frame of context is" if context == 1 else "frames of context are")
            + " set aside on each side"
        )
    plan = []
    for a in range(0, n_frames, keep):
        b = min(a + keep, n_frames)
        first, last = max(a - context, 0), min(b + context, n_frames)
        end = n_samples if last == n_frames else (last - 1) * stride + field
        plan.append((first * stride, end, a, b))
    return plan


def first_group_norm(model: Any) -> tuple[Any, Any] | None:
    """The first convolution and its ``GroupNorm`` (one group per channel, over time) of a
    wav2vec2-style model with ``feat_extract_norm="group"``; None for other models."""
    import torch

    layers = getattr(getattr(model, "feature_extractor", None), "conv_layers", None)
    if getattr(model.config, "feat_extract_norm", None) != "group" or not layers:
        return None
    conv, norm = getattr(layers[0], "conv", None), getattr(layers[0], "layer_norm", None)
    if not isinstance(norm, torch.nn.GroupNorm) or norm.num_groups != norm.num_channels:
        return None
    return conv, norm


def whole_sound_norm(conv: Any, values: np.ndarray, piece: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (biased) variance over time of ``conv`` applied to the whole
    ``values`` (1-d), computed ``piece`` output frames at a time: what the model's
    ``GroupNorm`` computes in a single pass, ``(channels,)`` each, float64."""
    import torch

    kernel, stride = int(conv.kernel_size[0]), int(conv.stride[0])
    n_frames = (len(values) - kernel) // stride + 1
    param = next(conv.parameters())
    total = np.zeros(conv.out_channels)
    squares = np.zeros(conv.out_channels)
    for a in range(0, n_frames, max(piece, 1)):
        b = min(a + piece, n_frames)
        x = torch.as_tensor(values[a * stride : (b - 1) * stride + kernel], device=param.device)
        with torch.no_grad():
            out = conv(x.to(param.dtype)[None, None])[0].double().cpu().numpy()
        total += out.sum(axis=1)
        squares += (out**2).sum(axis=1)
    mean = total / n_frames
    return mean, np.maximum(squares / n_frames - mean**2, 0.0)


@contextlib.contextmanager
def norm_with(norm: Any, mean: np.ndarray, var: np.ndarray) -> Iterator[None]:
    """Within the block, ``norm`` (a per-channel ``GroupNorm``) normalises batch row ``j`` with
    ``mean[j]`` and ``var[j]`` (``(batch, channels)``) instead of the row's own statistics."""
    import torch

    def hook(module: Any, inputs: tuple[Any, ...], _: Any) -> Any:
        x = inputs[0]
        m = torch.as_tensor(mean, device=x.device, dtype=torch.float64)[..., None]
        v = torch.as_tensor(var, device=x.device, dtype=torch.float64)[..., None]
        y = (x.double() - m) / torch.sqrt(v + module.eps)
        if module.affine:
            y = y * module.weight.double()[:, None] + module.bias.double()[:, None]
        return y.to(x.dtype)

    handle = norm.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()

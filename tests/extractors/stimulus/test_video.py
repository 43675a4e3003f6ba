"""HuggingFaceVideo (tiny VideoMAE) over sliding clips against direct transformers forward passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.extractors.stimulus.video import HuggingFaceVideo, clip_starts
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from tests.extractors.stimulus import hf_models


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return hf_models.stimulus_events()


def direct(clips: list[list[np.ndarray]], layer: int, folder=None, prefix: int = 0) -> np.ndarray:
    import torch
    from transformers import AutoImageProcessor, AutoModel

    folder = folder or hf_models.videomae_dir()
    proc = AutoImageProcessor.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        hidden = model(**proc(clips, return_tensors="pt"), output_hidden_states=True).hidden_states
    return hidden[layer].numpy()[:, prefix:].mean(axis=1)


def test_sliding_clips_match_direct_forward(events, tmp_path):
    ex = HuggingFaceVideo(
        model=str(hf_models.videomae_dir()),
        layers=-1,
        clip_stride=2,
        frame_frequency=10.0,
        device="cpu",
        batch_size=4,
    )
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Video", duration=4.0)
    out = ex.read(segments, store).data  # clips every 2 frames at 10 Hz -> 5 Hz
    assert out.shape == (1, 32, 20)
    video = np.load(
        hf_models.stimulus_study().path / events[events["type"] == "Video"]["filepath"].iloc[0]
    )
    clips = [[video[min(k, len(video) - 1)] for k in range(s, s + 4)] for s in range(0, 40, 2)]
    np.testing.assert_allclose(out[0].T, direct(clips, -1), atol=3e-5)
    # static: mean over the clips
    static = ex.replace(output="static", aggregation="trigger").read(segments, store).data
    np.testing.assert_allclose(static[0], direct(clips, -1).mean(axis=0), atol=3e-5)
    # painted at 20 Hz: clip i owns samples [4 i, 4 i + 4) (linear interpolation between clips)
    at20 = ex.replace(frequency=20.0).read(segments, store).data
    np.testing.assert_allclose(at20[0, :, ::4], out[0], atol=1e-6)


def test_clip_starts_and_errors():
    np.testing.assert_array_equal(clip_starts(10, 4), [0, 4, 8])
    with pytest.raises(ConfigError, match="HuggingFaceVideo.clip_stride: must be >= 1 frame"):
        HuggingFaceVideo(model="MCG-NJU/videomae-base", clip_stride=0)


def test_clips_stay_memory_mapped_until_embedded(events):
    """A long video's sampled frames were all read into memory at once (tens of GB for minutes
    of HD video); the clips now hold views of the memory-mapped frames."""
    row = events[events["type"] == "Video"].iloc[0]
    path = hf_models.stimulus_study().path / row["filepath"]
    ex = HuggingFaceVideo(model=str(hf_models.videomae_dir()), frame_frequency=10.0, device="cpu")
    payload = {"path": str(path), "offset": 0.0, "duration": 1.0, "frequency": row["frequency"]}
    clips, rate = ex.clips(payload)
    assert rate == 2.5 and len(clips) == 3  # 10 frames at 10 Hz in clips of 4: 0, 4, 8
    assert all(isinstance(frame, np.memmap) for clip in clips for frame in clip)
    video = np.load(path)
    step = row["frequency"] / 10.0
    for s, clip in zip((0, 4, 8), clips):
        for k, frame in enumerate(clip):
            np.testing.assert_array_equal(frame, video[int(min(s + k, 9) * step)])


def _clips(events: pd.DataFrame) -> list[list[np.ndarray]]:
    """Clips of 4 frames starting every 4 frames over the first 2 s at 10 Hz."""
    video = np.load(
        hf_models.stimulus_study().path / events[events["type"] == "Video"]["filepath"].iloc[0]
    )
    return [[video[k] for k in range(s, s + 4)] for s in range(0, 20, 4)]


def test_cls_token_excluded_from_pooling(events, tmp_path):
    """TimeSformer's hidden states are CLS + 4 frames x 16 patches; mean pools the patches."""
    folder = hf_models.timesformer_dir()
    ex = HuggingFaceVideo(
        model=str(folder), layers=-1, frame_frequency=10.0, device="cpu", batch_size=3
    )
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Video", duration=2.0)
    out = ex.read(segments, store).data  # clips every 4 frames at 10 Hz -> 2.5 Hz
    assert out.shape == (1, 32, 5)
    # was: the CLS token averaged with the 64 patch tokens
    np.testing.assert_allclose(out[0].T, direct(_clips(events), -1, folder, 1), atol=3e-5)
    first = ex.replace(token_aggregation="first")
    first.prepare(events, store, progress=False)
    import torch
    from transformers import AutoImageProcessor, AutoModel

    proc = AutoImageProcessor.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        inputs = proc(_clips(events), return_tensors="pt")
        cls = model(**inputs, output_hidden_states=True).hidden_states[-1][:, 0].numpy()
    np.testing.assert_allclose(first.read(segments, store).data[0].T, cls, atol=3e-5)


def test_first_token_without_cls_is_an_error(events):
    ex = HuggingFaceVideo(
        model=str(hf_models.videomae_dir()), token_aggregation="first", device="cpu"
    )
    # was: silently the first patch of the first tubelet
    with pytest.raises(ValueError) as err:
        ex.embed(_clips(events)[:1])
    assert str(err.value) == (
        "HuggingFaceVideo.token_aggregation: VideoMAEModel has no CLS token ('first' would be "
        "one patch of the first tubelet); use 'mean', 'sum' or 'max'"
    )

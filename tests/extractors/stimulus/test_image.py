"""HuggingFaceImage (tiny DINOv2, CLIP vision, ViT) against direct transformers forward passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.extractors.stimulus.image import HuggingFaceImage
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from neuralset.synthetic.stimuli import VIDEO_FPS
from tests.extractors.stimulus import hf_models


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return hf_models.stimulus_events()


def direct(folder, images, layers, token_agg: str, prefix: int = 1) -> np.ndarray:
    import torch
    from transformers import AutoImageProcessor, AutoModel

    proc = AutoImageProcessor.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        hidden = model(**proc(images, return_tensors="pt"), output_hidden_states=True).hidden_states
    n = len(hidden)
    out = []
    for layer in layers:
        h = hidden[int(round(layer * (n - 1))) if isinstance(layer, float) else layer % n].numpy()
        patches = h[:, prefix:]
        pooled = {"mean": patches.mean(1), "sum": patches.sum(1), "max": patches.max(1)}
        out.append(h[:, 0] if token_agg == "first" else pooled[token_agg])
    return np.mean(out, axis=0)


@pytest.mark.parametrize(
    ("which", "layers", "token_agg"),
    [
        ("dinov2", (1.0,), "first"),
        ("clip_vision", (1, 2), "mean"),
        ("vit", (0.5,), "first"),
        ("dinov2", (1.0,), "max"),
        ("vit", (0.5,), "sum"),
        ("dinov2_registers", (1.0,), "mean"),  # was: the 4 registers pooled with the patches
        ("dinov2_registers", (0, 2), "max"),
    ],
)
def test_images_match_direct_forward(events, tmp_path, which, layers, token_agg):
    from PIL import Image

    folder = getattr(hf_models, f"{which}_dir")()
    ex = HuggingFaceImage(
        model=str(folder),
        layers=layers if len(layers) > 1 else layers[0],
        token_aggregation=token_agg,
        output="static",
        aggregation="trigger",
        device="cpu",
        batch_size=2,
    )
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    rows = events[events["type"] == "Image"]
    got = ex.read(segment_on_triggers(events, "Image"), store).data
    root = hf_models.stimulus_study().path
    images = [Image.open(root / p).convert("RGB") for p in rows["filepath"]]
    prefix = 5 if which == "dinov2_registers" else 1  # CLS (+ 4 registers): 16 patches after
    ref = direct(folder, images, layers, token_agg, prefix)
    np.testing.assert_allclose(got, ref, atol=3e-5)


def test_image_painted_over_its_display(events, tmp_path):
    ex = HuggingFaceImage(model=str(hf_models.dinov2_dir()), frequency=20.0, device="cpu")
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Image", offset=-0.5, duration=2.0)  # images shown 1 s
    data = ex.read(segments, store).data
    vectors = ex.replace(output="static", aggregation="trigger").read(segments, store).data
    painted = np.abs(data).sum(axis=1) > 0
    expected = np.zeros(40, dtype=bool)
    expected[10:30] = True  # from 0.5 s to 1.5 s after the window start, at 20 Hz
    np.testing.assert_array_equal(painted[0], expected)
    np.testing.assert_array_equal(data[0, :, 10:30], np.repeat(vectors[0][:, None], 20, axis=1))


def test_video_frames_at_chosen_frequency(events, tmp_path):
    folder = hf_models.clip_vision_dir()
    ex = HuggingFaceImage(
        model=str(folder),
        event_type="Video",
        frame_frequency=5.0,
        layers=-1,
        device="cpu",
        batch_size=8,
    )
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Video", duration=4.0)
    out = ex.read(segments, store).data  # frequency None -> 5 Hz: frames 0, 2, 4, ...
    assert out.shape == (1, 32, 20)
    video = np.load(
        hf_models.stimulus_study().path / events[events["type"] == "Video"]["filepath"].iloc[0]
    )
    frames = [video[k] for k in range(0, int(4.0 * VIDEO_FPS), 2)]
    np.testing.assert_allclose(out[0].T, direct(folder, frames, (-1,), "first"), atol=3e-5)


def test_bad_frame_frequency():
    with pytest.raises(ConfigError, match="HuggingFaceImage.frame_frequency: must be > 0 Hz"):
        HuggingFaceImage(model="facebook/dinov2-small", event_type="Video", frame_frequency=0.0)
    # was: silently ignored on Image events
    with pytest.raises(ConfigError) as err:
        HuggingFaceImage(model="facebook/dinov2-small", frame_frequency=5.0)
    assert str(err.value) == (
        "HuggingFaceImage.frame_frequency: only used on Video events, got 5.0 with "
        "event_type='Image'; set event_type='Video' or drop frame_frequency"
    )


def test_missing_image_file_names_the_event_before_any_work(events, tmp_path):
    # was "recording file not found: PATH", naming neither the stimulus event nor the fix
    moved = events.copy()
    row = int(np.flatnonzero(moved["type"] == "Image")[0])
    moved.loc[row, "filepath"] = "sub-01/moved.png"
    path = hf_models.stimulus_study().path / "sub-01" / "moved.png"
    ex = HuggingFaceImage(model=str(hf_models.vit_dir()), output="static", device="cpu")
    store = Store(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        ex.prepare(moved, store, progress=False)
    assert str(err.value) == (
        f"stimulus file not found: {path}, for Image event {row} (timeline sub-01, file "
        "sub-01/moved.png); fix the event's filepath (relative to its study_root), or drop "
        "the event"
    )
    assert not list(store.keys())


def test_transparent_png_matches_the_clip_processor(tmp_path):
    """CLIP's processor composites transparency onto white; the extractor reads the same image."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, CLIPVisionModel

    from neuralset.events import validate_events

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 48, 4), dtype=np.uint8)
    pixels[..., 3] = 0
    pixels[:20, :, 3] = 255  # top half opaque, bottom half transparent
    Image.fromarray(pixels, "RGBA").save(tmp_path / "object.png")
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Image"],
                "start": [0.0],
                "duration": [1.0],
                "timeline": ["t"],
                "filepath": [str(tmp_path / "object.png")],
            }
        )
    )
    folder = hf_models.clip_vision_dir()
    ex = HuggingFaceImage(
        model=str(folder), layers=-1, output="static", aggregation="trigger", device="cpu"
    )
    store = Store(tmp_path / "store")
    ex.prepare(events, store, progress=False)
    got = ex.read(segment_on_triggers(events, "Image"), store).data[0]
    proc = AutoImageProcessor.from_pretrained(folder)
    model = CLIPVisionModel.from_pretrained(folder).eval()
    with torch.no_grad():
        inputs = proc(Image.open(tmp_path / "object.png"), return_tensors="pt")
        ref = model(**inputs, output_hidden_states=True).hidden_states[-1][0, 0].numpy()
    np.testing.assert_allclose(got, ref, atol=3e-5)  # was: 0.73 off (alpha dropped)


def test_feature_map_model_is_a_clear_error(events, tmp_path):
    ex = HuggingFaceImage(model=str(hf_models.resnet_dir()), output="static", device="cpu")
    # was: the (batch, channels, height, width) maps pooled as if rows were tokens: (16, 4) "vectors"
    with pytest.raises(ValueError) as err:
        ex.compute_many(ex.items(events)[:1])
    assert str(err.value) == (
        "HuggingFaceImage.model: the hidden states of ResNetModel are (1, 16, 4, 4) feature "
        "maps, not (batch, tokens, features) token sequences; use a vision transformer such as "
        "ViT, DINOv2 or CLIP"
    )


def test_video_frames_stay_memory_mapped_until_embedded(events):
    row = events[events["type"] == "Video"].iloc[0]
    path = hf_models.stimulus_study().path / row["filepath"]
    ex = HuggingFaceImage(
        model=str(hf_models.vit_dir()), event_type="Video", frame_frequency=5.0, device="cpu"
    )
    payload = {"path": str(path), "offset": 0.5, "duration": 1.0, "frequency": row["frequency"]}
    frames, rate = ex.frames(payload)  # was: all sampled frames read into memory at once
    assert rate == 5.0 and len(frames) == 5
    assert all(isinstance(frame, np.memmap) for frame in frames)
    video = np.load(path)
    for k, frame in enumerate(frames):  # frames shown at 0.5 + k / 5 s
        np.testing.assert_array_equal(frame, video[int(round((0.5 + k / 5.0) * VIDEO_FPS))])


def test_unreadable_image_fails_at_preflight(events, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    broken = events.copy()
    row = int(np.flatnonzero(broken["type"] == "Image")[1])
    broken.loc[row, "filepath"] = str(bad)
    ex = HuggingFaceImage(model=str(hf_models.vit_dir()), output="static", device="cpu")
    store = Store(tmp_path / "store")
    # was: a PrepareError from compute_many (PIL.UnidentifiedImageError), after the model loaded
    with pytest.raises(ValueError) as err:
        ex.prepare(broken, store, progress=False)
    assert str(err.value) == (
        f"HuggingFaceImage: Image event {row} (timeline sub-01, file {bad}): not a readable "
        "image file (UnidentifiedImageError); fix the event's filepath, or convert the file to "
        "a format pillow reads (PNG, JPEG, ...)"
    )
    assert not list(store.keys())

"""Stimulus file readers: parts of sound files outside the file fail before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.events import validate_events
from neuralset.extractors.stimulus.audio import HuggingFaceAudio, min_samples
from neuralset.extractors.stimulus.audio_features import MelSpectrogram
from neuralset.extractors.stimulus.media import read_audio
from neuralset.store import Store
from tests.extractors.stimulus import hf_models


@pytest.fixture
def wav(tmp_path) -> Path:
    import soundfile

    path = tmp_path / "one.wav"
    samples = np.arange(16000, dtype=np.float32) / 16000.0  # 1 s ramp
    soundfile.write(str(path), samples, 16000, subtype="FLOAT")
    return path


def _audio_event(path: Path, offset: float, duration: float) -> pd.DataFrame:
    return validate_events(
        pd.DataFrame(
            {
                "type": ["Audio"],
                "start": [0.5],
                "duration": [duration],
                "offset": [offset],
                "timeline": ["t"],
                "filepath": [str(path)],
            }
        )
    )


def test_read_audio_part_and_rounding_tolerance(wav):
    samples, sr = read_audio(wav, 0.25, 0.5)
    assert sr == 16000.0
    np.testing.assert_array_equal(samples, np.arange(4000, 12000, dtype=np.float32) / 16000.0)
    # an event rounded to the millisecond may end just past the file: what is there is read
    assert len(read_audio(wav, 0.5, 0.5009)[0]) == 8000


@pytest.mark.parametrize(
    ("offset", "duration", "why"),
    [
        # was: soundfile counts a negative start from the end, the last 0.5 s were read
        (
            -0.5,
            0.5,
            "the event's offset -0.5 s is outside the sound (1 s long); give an offset in [0, 1)",
        ),
        # was: a RuntimeError of the model's first convolution, after loading it
        (
            1.0,
            0.5,
            "the event's offset 1 s is outside the sound (1 s long); give an offset in [0, 1)",
        ),
        # was: a 1 s series painted over 3 s (its last frame held for 2 s)
        (
            0.0,
            3.0,
            "the event's offset 0 s + duration 3 s runs past the end of the sound (1 s "
            "long); shorten the event's duration (0 reads to the end of the file)",
        ),
    ],
)
@pytest.mark.parametrize("which", ["mel", "hf"])
def test_part_outside_the_sound_fails_at_preflight(wav, tmp_path, offset, duration, why, which):
    events = _audio_event(wav, offset, duration)
    ex = (
        MelSpectrogram(frequency=100.0)
        if which == "mel"
        else HuggingFaceAudio(model=str(hf_models.wav2vec2_dir()), device="cpu")
    )
    store = Store(tmp_path / "store")
    with pytest.raises(ValueError) as err:
        ex.prepare(events, store, progress=False)
    assert str(err.value) == (f"{type(ex).__name__}: Audio event 0 (timeline t, file {wav}): {why}")
    assert not list(store.keys())
    with pytest.raises(ValueError, match="outside the sound|past the end of the sound"):
        read_audio(wav, offset, duration)


def test_unreadable_sound_fails_at_preflight(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a sound")
    store = Store(tmp_path / "store")
    with pytest.raises(ValueError) as err:
        MelSpectrogram(frequency=100.0).prepare(_audio_event(bad, 0.0, 1.0), store, progress=False)
    assert str(err.value) == (
        f"MelSpectrogram: Audio event 0 (timeline t, file {bad}): not a readable sound file "
        f"(Error opening '{bad}': Format not recognised.); fix the event's filepath, or convert "
        "the file to a format libsndfile reads (WAV, FLAC, OGG, MP3)"
    )
    assert not list(store.keys())


@pytest.mark.parametrize(
    ("rate", "offset", "duration", "got"),
    [
        (16000, 0.0, 0.0125, 200),
        (16000, 0.99, 0.0, 160),  # to the end of the file
        (8000, 0.0, 0.02, 320),  # 160 samples at 8 kHz, 320 at the model's 16 kHz
    ],
)
def test_sound_shorter_than_the_receptive_field_fails_at_preflight(
    tmp_path, rate, offset, duration, got
):
    import soundfile

    path = tmp_path / "one.wav"
    soundfile.write(str(path), np.zeros(rate, np.float32), rate, subtype="FLOAT")
    ex = HuggingFaceAudio(model=str(hf_models.wav2vec2_dir()), device="cpu")
    store = Store(tmp_path / "store")
    # was: the PrepareError of compute_many, after loading the model and computing other items
    with pytest.raises(ValueError) as err:
        ex.prepare(_audio_event(path, offset, duration), store, progress=False)
    assert str(err.value) == (
        f"HuggingFaceAudio: Audio event 0 (timeline t, file {path}): {got} samples of sound at "
        "16000 Hz are fewer than the model's receptive field (336 samples, 0.021 s); lengthen "
        "the event's duration or drop the event"
    )
    assert not list(store.keys())
    ex.preflight(_audio_event(path, 0.0, 0.021), store)  # 336 samples at 16 kHz: passes


def test_resampled_length_is_that_of_resample_audio():
    from neuralset.extractors.stimulus.audio import resampled_length
    from neuralset.extractors.stimulus.media import resample_audio

    for n, sr, target in [
        (160, 8000, 16000),
        (441, 44100, 16000),
        (7, 22050, 16000),
        (5, 16000, 16000),
    ]:
        got = len(resample_audio(np.zeros(n, np.float32), sr, target))
        assert resampled_length(n, sr, target) == got


def test_sound_shorter_than_the_receptive_field(wav, tmp_path):
    from transformers import Wav2Vec2Config

    assert min_samples(Wav2Vec2Config()) == 400  # wav2vec2-base: 25 ms at 16 kHz
    ex = HuggingFaceAudio(model=str(hf_models.wav2vec2_dir()), device="cpu")
    # was: "Calculated padded input size per channel: (11). Kernel size: (20)..."
    with pytest.raises(ValueError) as err:
        ex.compute_many(ex.items(_audio_event(wav, 0.0, 0.0125)))
    assert str(err.value) == (
        f"{wav}: 200 samples of sound at 16000 Hz are fewer than the model's receptive field "
        "(336 samples, 0.021 s); lengthen the event or drop it"
    )


@pytest.mark.parametrize(
    ("offset", "duration", "why"),
    [
        (
            1.5,
            0.5,
            "the event's offset 1.5 s is outside the video (1 s long); give an offset in [0, 1)",
        ),
        # was: the last frame held for 2 s
        (
            0.0,
            3.0,
            "the event's offset 0 s + duration 3 s runs past the end of the video (1 s long); "
            "shorten the event's duration (0 reads to the end of the file)",
        ),
    ],
)
def test_part_outside_the_video_fails_at_preflight(tmp_path, offset, duration, why):
    """10 frames at 10 fps: a part past them fails before the model is loaded."""
    from neuralset.extractors.stimulus.video import HuggingFaceVideo

    path = tmp_path / "clip.npy"
    np.save(path, np.zeros((10, 8, 8, 3), np.uint8))
    row = {"type": "Video", "start": 0.5, "duration": duration, "offset": offset}
    events = validate_events(
        pd.DataFrame([{**row, "timeline": "t", "filepath": str(path), "frequency": 10.0}])
    )
    ex = HuggingFaceVideo(model=str(hf_models.videomae_dir()), device="cpu")
    with pytest.raises(ValueError) as err:
        ex.prepare(events, Store(tmp_path / "store"), progress=False)
    assert str(err.value) == (
        "HuggingFaceVideo: Video event 0 (timeline t, file " + str(path) + "): " + why
    )
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("frames", "frequency", "why"),
    [
        # was: rescaled by 1/255 by the image processor, silently near-black images
        (
            np.zeros((10, 8, 8, 3), np.float32),
            10.0,
            "video frames must be uint8 (time, height, width, 3), got float32 (10, 8, 8, 3)",
        ),
        # was: the same error, but only in compute_many (a PrepareError per item)
        (
            np.zeros((10, 8, 8), np.uint8),
            10.0,
            "video frames must be uint8 (time, height, width, 3), got uint8 (10, 8, 8)",
        ),
    ],
)
def test_bad_video_frames_fail_at_preflight(tmp_path, frames, frequency, why):
    from neuralset.extractors.stimulus.video import HuggingFaceVideo

    path = tmp_path / "clip.npy"
    np.save(path, frames)
    row = {"type": "Video", "start": 0.5, "duration": 0.5, "offset": 0.0}
    events = validate_events(
        pd.DataFrame([{**row, "timeline": "t", "filepath": str(path), "frequency": frequency}])
    )
    ex = HuggingFaceVideo(model=str(hf_models.videomae_dir()), device="cpu")
    with pytest.raises(ValueError) as err:
        ex.prepare(events, Store(tmp_path / "store"), progress=False)
    assert str(err.value) == (
        f"HuggingFaceVideo: Video event 0 (timeline t, file {path}): {why}; save RGB frames as "
        "uint8 (floats in [0, 1]: np.round(frames * 255).astype(np.uint8); greyscale: "
        "np.repeat(frames[..., None], 3, axis=-1))"
    )
    assert not (tmp_path / "store").exists()


def test_read_image_composites_transparency_and_scales_16_bit(tmp_path):
    from PIL import Image

    from neuralset.extractors.stimulus.media import read_image

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = [10, 20, 30]
    rgba[..., 3] = [[255, 0], [128, 64]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    got = np.asarray(read_image(tmp_path / "rgba.png"))
    # was: [10, 20, 30] everywhere (the alpha channel dropped, transparent pixels shown dark)
    alpha = rgba[..., 3:4] / 255.0
    expected = np.round(alpha * rgba[..., :3] + (1 - alpha) * 255).astype(np.uint8)
    np.testing.assert_allclose(got, expected, atol=1)
    np.testing.assert_array_equal(got[0, 1], [255, 255, 255])
    grey = np.array([[0, 257, 32896], [65535, 1000, 514]], np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    got = np.asarray(read_image(tmp_path / "g16.png"))  # was: 255 (white) wherever grey > 255
    np.testing.assert_array_equal(got[..., 0], [[0, 1, 128], [255, 4, 2]])
    np.testing.assert_array_equal(got[..., 1], got[..., 2])
    Image.fromarray(np.array([[0.0, 300.0]], np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(ValueError) as err:
        read_image(tmp_path / "f.tiff")
    assert str(err.value) == (
        f"{tmp_path / 'f.tiff'}: a F-mode image with values in [0, 300] has no 8-bit reading; "
        "save it as an 8-bit or 16-bit PNG"
    )

"""Synthetic stimulus files: real wav/png/npy files on the same timelines as the words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.synthetic import SYNTHETIC_WRITERS, SyntheticStudy
from neuralset.synthetic.stimuli import (
    AUDIO_SFREQ,
    IMAGE_DURATION,
    IMAGE_PERIOD,
    N_IMAGES,
    VIDEO_DURATION,
    VIDEO_FPS,
    WRITERS,
    image_pixels,
    word_tone,
    write_audio,
    write_wav,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> SyntheticStudy:
    study = SyntheticStudy(
        path=tmp_path_factory.mktemp("stim") / "study",
        n_subjects=2,
        duration=10.0,
        seed=5,
        modalities=("audio", "image", "video"),
    )
    study.build()
    return study


def test_writers_are_registered():
    for name, target in WRITERS.items():
        assert SYNTHETIC_WRITERS[name] == target


def test_audio_one_wav_per_sentence_with_word_tones(study, events):
    import soundfile

    audio = events[events["type"] == "Audio"]
    sentences = events[events["type"] == "Sentence"]
    assert len(audio) == len(sentences)
    np.testing.assert_allclose(audio["start"].to_numpy(), sentences["start"].to_numpy())
    assert (audio["frequency"] == AUDIO_SFREQ).all()
    # sentences do not overlap
    for _, group in audio.groupby("timeline", observed=True):
        stops = (group["start"] + group["duration"]).to_numpy()
        assert (group["start"].to_numpy()[1:] >= stops[:-1]).all()
    first = audio.iloc[0]
    x, sr = soundfile.read(str(study.path / first["filepath"]), dtype="float32")
    assert sr == AUDIO_SFREQ and len(x) / sr == pytest.approx(first["duration"])
    # the first word's burst: its spectral peak is the word's tone
    word = events[(events["type"] == "Word") & (events["timeline"] == first["timeline"])].iloc[0]
    a = int(round((word["start"] - first["start"]) * sr))
    burst = x[a : a + int(word["duration"] * sr)]
    spectrum = np.abs(np.fft.rfft(burst * np.hanning(len(burst)), n=sr))
    assert abs(np.argmax(spectrum) - word_tone(word["text"])) <= 2
    # silence (noise only) before the second word
    gap = x[
        int(0.21 * sr) : a
        + int((events[events["type"] == "Word"].iloc[1]["start"] - first["start"]) * sr)
        - 10
    ]
    assert np.abs(gap).max() < 0.1


def test_images_every_period(study, events):
    from PIL import Image

    images = events[(events["type"] == "Image") & (events["timeline"] == "sub-01")]
    np.testing.assert_allclose(np.diff(images["start"].to_numpy()), IMAGE_PERIOD)
    assert (images["duration"] == IMAGE_DURATION).all()
    rng = study.rng(0, "image")
    expected = [image_pixels(k, rng) for k in range(N_IMAGES)]
    for j, path in enumerate(images["filepath"]):
        np.testing.assert_array_equal(
            np.asarray(Image.open(study.path / path)), expected[j % N_IMAGES]
        )


def test_video_frames_carry_their_index(study, events):
    video = events[events["type"] == "Video"]
    assert len(video) == 2 and (video["frequency"] == VIDEO_FPS).all()
    frames = np.load(study.path / video["filepath"].iloc[0])
    assert frames.shape == (int(VIDEO_DURATION * VIDEO_FPS), 32, 32, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[:, 0, 0, 0], np.arange(len(frames)))
    assert video["duration"].iloc[0] == pytest.approx(len(frames) / VIDEO_FPS)


def test_rebuild_keeps_files_and_is_deterministic(study, tmp_path):
    files = sorted(p for p in study.path.rglob("*") if p.suffix in (".wav", ".png", ".npy"))
    mtimes = [p.stat().st_mtime_ns for p in files]
    study.build()
    assert [p.stat().st_mtime_ns for p in files] == mtimes
    other = SyntheticStudy(
        path=tmp_path / "again", n_subjects=1, duration=10.0, seed=5, modalities=("audio",)
    )
    other.build()
    a = sorted((study.path / "sub-01").glob("*.wav"))[0]
    b = sorted((other.path / "sub-01").glob("*.wav"))[0]
    assert a.read_bytes() == b.read_bytes()


def test_writer_without_sentences_makes_one_wav_per_timeline(tmp_path):
    words = pd.DataFrame(
        {"type": "Word", "start": [1.0, 1.5], "duration": 0.2, "timeline": "x", "text": ["a", "bb"]}
    )

    class _Study:
        path = tmp_path

    out = write_audio(_Study(), 0, tmp_path, np.random.default_rng(0), words)
    assert len(out) == 1 and out["start"].iloc[0] == 1.0
    assert (tmp_path / out["filepath"].iloc[0]).exists()


def test_wav_bytes_do_not_depend_on_the_time_of_writing(tmp_path):
    """The same samples give the same file, also a second later (no timestamp in the header:
    libsndfile's PEAK chunk made test_rebuild_keeps_files_and_is_deterministic flaky)."""
    import time

    import soundfile

    sound = np.random.default_rng(0).normal(0, 0.1, 800).astype(np.float32)
    write_wav(tmp_path / "a.wav", sound)
    time.sleep(1.05)  # libsndfile's PEAK chunk stamps whole seconds
    write_wav(tmp_path / "b.wav", sound)
    a, b = (tmp_path / "a.wav").read_bytes(), (tmp_path / "b.wav").read_bytes()
    assert a == b and b"PEAK" not in a
    x, sr = soundfile.read(str(tmp_path / "a.wav"), dtype="float32")
    assert sr == AUDIO_SFREQ and soundfile.info(str(tmp_path / "a.wav")).subtype == "FLOAT"
    np.testing.assert_array_equal(x, sound)

"""Audio events extracted from real mp4 files (H.264 video + AAC audio written with PyAV)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.events.video_audio import AudioFromVideo, decode_audio

RATE = 16_000
FPS = 10


def tone(duration: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(duration * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_mp4(
    path: Path, duration: float = 2.0, with_audio: bool = True, freq: float = 440.0
) -> np.ndarray:
    """A real mp4: 32x32 H.264 frames (pixel value = 10 x frame index) and an AAC tone."""
    import av

    signal = tone(duration, freq)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = container.add_stream("aac", rate=RATE, layout="mono") if with_audio else None
        for k in range(int(duration * FPS)):
            frame = av.VideoFrame.from_ndarray(
                np.full((32, 32, 3), 10 * k, np.uint8), format="rgb24"
            )
            for packet in video.encode(frame):
                container.mux(packet)
        if audio is not None:
            for i in range(0, len(signal), 1024):
                frame = av.AudioFrame.from_ndarray(
                    signal[None, i : i + 1024], format="fltp", layout="mono"
                )
                frame.rate, frame.pts = RATE, i
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode(None):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return signal


def video_events(root: Path) -> pd.DataFrame:
    return validate_events(
        pd.DataFrame(
            {
                "type": ["Video", "Video", "Word"],
                "start": [1.0, 30.0, 1.5],
                "duration": [2.0, 1.5, 0.3],
                "timeline": ["sub-01", "sub-02", "sub-01"],
                "filepath": ["clip.mp4", "clip.mp4", None],
                "frequency": [float(FPS), float(FPS), 0.0],
                "offset": [0.0, 0.5, 0.0],
                "text": [None, None, "hi"],
                "study_root": str(root),
            }
        )
    )


def test_audio_events_from_a_real_mp4(tmp_path: Path) -> None:
    from neuralset.extractors.stimulus.media import read_audio, read_video

    signal = write_mp4(tmp_path / "clip.mp4")
    frames, fps = read_video(tmp_path / "clip.mp4")  # the video part is a real H.264 stream
    assert frames.shape == (20, 32, 32, 3) and fps == FPS
    assert abs(int(frames[7].mean()) - 70) <= 2
    events = video_events(tmp_path)
    before = events.copy()
    out = AudioFromVideo(folder=tmp_path / "audio")(events)
    pd.testing.assert_frame_equal(events, before)
    audio = out[out["type"] == "Audio"].reset_index(drop=True)
    assert len(audio) == 2 and audio["filepath"].nunique() == 1  # one file decoded once
    assert audio["start"].tolist() == [1.0, 30.0] and audio["offset"].tolist() == [0.0, 0.5]
    assert audio["frequency"].tolist() == [16000.0, 16000.0]
    assert audio["video"].tolist() == ["clip.mp4", "clip.mp4"]
    samples, sr = read_audio(audio["filepath"][0])  # the ordinary audio reader (soundfile)
    assert sr == RATE
    decoded, _ = decode_audio(tmp_path / "clip.mp4")
    np.testing.assert_array_equal(samples, decoded[0])  # float32 WAV: bit-exact
    # AAC is lossy: the tone comes back at the same time, nearly identical
    n = len(signal)
    assert len(samples) >= n
    assert np.corrcoef(samples[2000 : n - 2000], signal[2000 : n - 2000])[0, 1] > 0.999
    # a second run reuses the file; a changed video gets a new one
    path = Path(audio["filepath"][0])
    mtime = path.stat().st_mtime_ns
    again = AudioFromVideo(folder=tmp_path / "audio")(events)
    assert again.loc[again["type"] == "Audio", "filepath"].iloc[0] == str(path)
    assert path.stat().st_mtime_ns == mtime
    write_mp4(tmp_path / "clip.mp4", freq=880.0)
    os.utime(tmp_path / "clip.mp4", ns=(mtime + 10**9, mtime + 10**9))
    changed = AudioFromVideo(folder=tmp_path / "audio")(events)
    assert changed.loc[changed["type"] == "Audio", "filepath"].iloc[0] != str(path)


def test_resampled_and_missing_audio(tmp_path: Path) -> None:
    write_mp4(tmp_path / "clip.mp4", duration=1.0)
    out = AudioFromVideo(folder=tmp_path / "a", frequency=8000)(video_events(tmp_path))
    audio = out[out["type"] == "Audio"]
    assert audio["frequency"].tolist() == [8000.0, 8000.0]
    write_mp4(tmp_path / "clip.mp4", duration=1.0, with_audio=False)
    with pytest.raises(ConfigError) as err:
        AudioFromVideo(folder=tmp_path / "b")(video_events(tmp_path))
    assert str(err.value) == (
        f"AudioFromVideo: {tmp_path / 'clip.mp4'}: no audio stream in this file; pass "
        "missing_audio='skip' to leave it out"
    )
    skipped = AudioFromVideo(folder=tmp_path / "b", missing_audio="skip")(video_events(tmp_path))
    assert (skipped["type"] == "Audio").sum() == 0
    with pytest.raises(ConfigError, match="AudioFromVideo.frequency: must be > 0 Hz, got -1"):
        AudioFromVideo(folder=tmp_path, frequency=-1)

"""Synthetic stimulus files (wav audio, png images, a video clip) for the synthetic study.

Each writer has the signature of the synthetic study's pluggable writers,
``fn(study, subject, folder, rng, words_df) -> events_df``: it writes its files into ``folder``
(skipping files already present; each written under a temporary name then moved into place with
:func:`os.replace`) and returns its events (``type``, ``start``, ``duration``, ``timeline``,
``filepath`` relative to ``study.path``, ``frequency``, ``offset``), on the timelines of
``words_df``.

Known structure, for tests:

* **audio** (``write_audio``): one mono float32 wav at :data:`AUDIO_SFREQ` per sentence
  (``<timeline>_sentence-XXX.wav``), starting at the sentence's first word and lasting until its
  last word's offset plus :data:`AUDIO_TAIL`. Each word is a Hann-windowed tone burst of the word's
  duration at ``word_tone(text)`` Hz (peak amplitude :data:`TONE_AMPLITUDE`), over seeded noise of
  std :data:`AUDIO_NOISE`. The Audio event's ``frequency`` is the file's sampling rate.
* **image** (``write_image``): :data:`N_IMAGES` distinct 32x32 RGB pngs per subject
  (``<timeline>_image-XX.png``): a uniform background of gray level ``IMAGE_LEVELS[k]`` with a
  seeded colored 8x8 square; an Image event every :data:`IMAGE_PERIOD` s from
  :data:`IMAGE_FIRST` s to the last word, lasting :data:`IMAGE_DURATION` s, cycling through them.
* **video** (``write_video``): one clip per timeline (``<timeline>_video.npy``, frames
  ``(time, 32, 32, 3)`` uint8 at :data:`VIDEO_FPS`, :data:`VIDEO_DURATION` s, starting at
  :data:`VIDEO_START` s): a white vertical bar moving one column per frame over a dark background,
  and pixel ``[k, 0, 0, 0] == k`` (frame index) to expose alignment errors. The Video event's
  ``frequency`` is the frame rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .files import safe_name, study_relative, write_atomic

__all__ = [
    "write_audio",
    "write_image",
    "write_video",
    "word_tone",
    "write_wav",
    "WRITERS",
    "AUDIO_SFREQ",
    "VIDEO_FPS",
]

AUDIO_SFREQ = 16000.0
AUDIO_TAIL = (
    0.02  # s of sound after the last word (sentences never overlap: words are >= 0.24 s apart)
)
TONE_AMPLITUDE = 0.5
AUDIO_NOISE = 0.01
N_IMAGES = 6
IMAGE_SIZE = 32
IMAGE_LEVELS = (20, 60, 100, 140, 180, 220)
IMAGE_FIRST = 1.0
IMAGE_PERIOD = 2.0
IMAGE_DURATION = 1.0
VIDEO_FPS = 10.0
VIDEO_DURATION = 4.0
VIDEO_START = 1.0

#: modality name -> "module:function", to merge into ``SYNTHETIC_WRITERS``.
WRITERS: dict[str, str] = {
    "audio": "neuralset.synthetic.stimuli:write_audio",
    "image": "neuralset.synthetic.stimuli:write_image",
    "video": "neuralset.synthetic.stimuli:write_video",
}


def word_tone(text: str) -> float:
    """Tone frequency (Hz) of a word: 200 Hz plus 100 Hz per letter."""
    return 200.0 + 100.0 * len(str(text))


def _of_type(words_df: pd.DataFrame, kind: str) -> pd.DataFrame:
    if "type" not in words_df.columns:
        return words_df if kind == "Word" else words_df.iloc[:0]
    return words_df[words_df["type"].astype(str) == kind]


def _timelines(words_df: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    words = _of_type(words_df, "Word")
    for timeline, group in words.groupby(words["timeline"].astype(str), sort=True, observed=True):
        yield str(timeline), group.sort_values("start", kind="stable")


def _sentences(words: pd.DataFrame) -> list[pd.DataFrame]:
    if "sentence" in words.columns and words["sentence"].notna().all():
        # consecutive words sharing a sentence text form one sentence
        change = words["sentence"].astype(str).ne(words["sentence"].astype(str).shift()).to_numpy()
        ids = np.cumsum(change)
        return [words[ids == i] for i in np.unique(ids)]
    return [words]


def sentence_sound(
    words: pd.DataFrame, rng: np.random.Generator, sfreq: float = AUDIO_SFREQ
) -> np.ndarray:
    """The samples of one sentence: a tone burst per word over noise (sample 0 = first onset)."""
    t0 = float(words["start"].iloc[0])
    stop = float((words["start"] + words["duration"]).max())
    n = int(round((stop - t0 + AUDIO_TAIL) * sfreq))
    sound = rng.normal(0.0, AUDIO_NOISE, n)
    for start, dur, text in zip(words["start"], words["duration"], words["text"]):
        a = int(round((float(start) - t0) * sfreq))
        m = max(int(round(max(float(dur), 0.05) * sfreq)), 2)
        t = np.arange(m) / sfreq
        burst = TONE_AMPLITUDE * np.hanning(m) * np.sin(2 * np.pi * word_tone(str(text)) * t)
        sound[a : a + m] += burst[: max(n - a, 0)]
    return sound.astype(np.float32)


def write_wav(path: Path, sound: np.ndarray, sfreq: float = AUDIO_SFREQ) -> None:
    """A mono 32-bit float wav whose bytes depend only on ``sound`` and ``sfreq``.

    Written with :func:`scipy.io.wavfile.write`: libsndfile (``soundfile.write``) adds to float
    wavs a ``PEAK`` chunk holding the time of writing, so the same study written twice would
    differ by a few header bytes.
    """
    from scipy.io import wavfile

    wavfile.write(str(path), int(sfreq), np.ascontiguousarray(sound, dtype=np.float32))


def write_audio(
    study: Any, subject: int, folder: Path, rng: np.random.Generator, words_df: pd.DataFrame
) -> pd.DataFrame:
    """One wav per sentence (tone burst per word); returns the Audio events."""
    rows = []
    for timeline, words in _timelines(words_df):
        for k, sentence in enumerate(_sentences(words)):
            target = Path(folder) / f"{safe_name(timeline)}_sentence-{k:03d}.wav"
            sound = sentence_sound(sentence, rng)  # drawn even when the file exists: stable stream
            if not target.exists():
                write_atomic(target, lambda tmp, s=sound: write_wav(tmp, s))
            rows.append(
                {
                    "type": "Audio",
                    "start": float(sentence["start"].iloc[0]),
                    "duration": len(sound) / AUDIO_SFREQ,
                    "timeline": timeline,
                    "filepath": study_relative(target, study),
                    "frequency": AUDIO_SFREQ,
                    "offset": 0.0,
                }
            )
    return pd.DataFrame(rows)


def image_pixels(k: int, rng: np.random.Generator) -> np.ndarray:
    """Image ``k``: uniform gray ``IMAGE_LEVELS[k]`` with a seeded colored 8x8 square."""
    img = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), IMAGE_LEVELS[k % len(IMAGE_LEVELS)], dtype=np.uint8)
    y, x = rng.integers(0, IMAGE_SIZE - 8, size=2)
    img[y : y + 8, x : x + 8] = rng.integers(0, 256, size=3, dtype=np.uint8)
    return img


def write_image(
    study: Any, subject: int, folder: Path, rng: np.random.Generator, words_df: pd.DataFrame
) -> pd.DataFrame:
    """:data:`N_IMAGES` pngs per timeline, one shown every :data:`IMAGE_PERIOD` s; Image events."""
    from PIL import Image

    rows = []
    for timeline, words in _timelines(words_df):
        paths = []
        for k in range(N_IMAGES):
            target = Path(folder) / f"{safe_name(timeline)}_image-{k:02d}.png"
            pixels = image_pixels(k, rng)
            if not target.exists():
                write_atomic(
                    target, lambda tmp, p=pixels: Image.fromarray(p).save(tmp, format="PNG")
                )
            paths.append(study_relative(target, study))
        last = float(words["start"].max())
        onsets = np.arange(IMAGE_FIRST, last + 1e-9, IMAGE_PERIOD)
        for j, onset in enumerate(onsets):
            rows.append(
                {
                    "type": "Image",
                    "start": float(onset),
                    "duration": IMAGE_DURATION,
                    "timeline": timeline,
                    "filepath": paths[j % N_IMAGES],
                    "frequency": 0.0,
                    "offset": 0.0,
                }
            )
    return pd.DataFrame(rows)


def video_frames(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """``(n_frames, 32, 32, 3)`` uint8: a moving white bar; ``frames[k, 0, 0, 0] == k % 256``."""
    frames = rng.integers(0, 40, size=(n_frames, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for k in range(n_frames):
        frames[k, :, k % IMAGE_SIZE] = 255
        frames[k, 0, 0, 0] = k % 256
    return frames


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def write_video(
    study: Any, subject: int, folder: Path, rng: np.random.Generator, words_df: pd.DataFrame
) -> pd.DataFrame:
    """One ``.npy`` clip per timeline (frames at :data:`VIDEO_FPS`); returns the Video events."""
    rows = []
    for timeline, _ in _timelines(words_df):
        n_frames = int(round(VIDEO_DURATION * VIDEO_FPS))
        target = Path(folder) / f"{safe_name(timeline)}_video.npy"
        frames = video_frames(rng, n_frames)
        if not target.exists():
            write_atomic(target, lambda tmp, f=frames: _save_npy(tmp, f))
        rows.append(
            {
                "type": "Video",
                "start": VIDEO_START,
                "duration": n_frames / VIDEO_FPS,
                "timeline": timeline,
                "filepath": study_relative(target, study),
                "frequency": VIDEO_FPS,
                "offset": 0.0,
            }
        )
    return pd.DataFrame(rows)

"""Reading stimulus files: audio (soundfile), images (pillow) and videos (numpy frames).

Shared by the HuggingFace and the classic stimulus extractors; each reader is lazy (imports its
library when called) and returns plain numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..base import Item, events_label, source_identity, source_path

__all__ = [
    "read_audio",
    "audio_span",
    "check_media_events",
    "check_part",
    "video_frame_count",
    "check_npy_video",
    "resample_audio",
    "resample_ratio",
    "read_image",
    "check_image",
    "read_video",
    "video_frames_at",
    "video_frame_indices",
    "lazy_video_frames",
    "media_payloads",
    "media_items",
]


def read_audio(
    path: str | Path, offset: float = 0.0, duration: float = 0.0
) -> tuple[np.ndarray, float]:
    """Mono float32 samples of ``[offset, offset + duration)`` seconds of a sound file.

    ``duration <= 0`` reads to the end of the file. Channels are averaged.
    """
    import soundfile

    first, frames, sr = audio_span(path, offset, duration)
    data, _ = soundfile.read(str(path), start=first, frames=frames, dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), sr


#: how far (s) past its file's end an Audio event may run (durations rounded to the millisecond)
AUDIO_END_TOLERANCE = 1e-3


def audio_span(path: str | Path, offset: float, duration: float) -> tuple[int, int, float]:
    """First sample, number of samples (-1: to the end) and rate of a part of a sound file.

    Reads the header only. The part ``[offset, offset + duration)`` must lie in the file: a
    negative offset (which soundfile would count from the end) or one at or past the end, or
    a part running more than :data:`AUDIO_END_TOLERANCE` s (plus a sample) past the end, is
    an error (it would otherwise silently give another or a shorter sound).

    Raises
    ------
    ValueError
        The file is not a readable sound, or the part is outside it; the message names the
        file and the fix.
    """
    import soundfile

    try:
        info = soundfile.info(str(path))
    except soundfile.SoundFileError as err:
        raise ValueError(
            f"{path}: not a readable sound file ({err}); fix the event's filepath, or convert "
            "the file to a format libsndfile reads (WAV, FLAC, OGG, MP3)"
        ) from None
    sr = float(info.samplerate)
    check_part(path, offset, duration, info.frames, sr, "sound")
    first = int(round(offset * sr))
    return first, int(round(duration * sr)) if duration > 0 else -1, sr


def check_part(
    path: str | Path, offset: float, duration: float, n: int, rate: float, what: str
) -> None:
    """``[offset, offset + duration)`` (seconds; duration 0: to the end) lies in a file of ``n``
    samples or frames at ``rate``, up to :data:`AUDIO_END_TOLERANCE` s plus one sample past
    its end (durations rounded to the millisecond); else a ValueError naming the fix."""
    length = n / rate
    if not 0.0 <= offset < length:
        raise ValueError(
            f"{path}: the event's offset {offset:g} s is outside the {what} ({length:g} s long); "
            f"give an offset in [0, {length:g})"
        )
    if duration > 0 and offset + duration > length + AUDIO_END_TOLERANCE + 1.0 / rate:
        raise ValueError(
            f"{path}: the event's offset {offset:g} s + duration {duration:g} s runs past the "
            f"end of the {what} ({length:g} s long); shorten the event's duration (0 reads to "
            "the end of the file)"
        )


def video_frame_count(path: str | Path, fps: float) -> int | None:
    """Frames of a ``.npy`` video (its header only, checked by :func:`check_npy_video`); None
    for other formats (their readers check them)."""
    path = Path(path)
    if path.suffix != ".npy":
        return None
    frames = np.load(path, mmap_mode="r")
    check_npy_video(path, frames, fps)
    return int(frames.shape[0])


def check_npy_video(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """Frames of a ``.npy`` video are RGB uint8 ``(time, height, width, 3)`` at ``fps`` > 0.

    Raises
    ------
    ValueError
        Naming the file, what it holds and the fix (float frames would be rescaled by 1/255
        by the image processors: near-black images).
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"{path}: video frames must be uint8 (time, height, width, 3), got {frames.dtype} "
            f"{frames.shape}; save RGB frames as uint8 (floats in [0, 1]: "
            "np.round(frames * 255).astype(np.uint8); greyscale: np.repeat(frames[..., None], 3, "
            "axis=-1))"
        )
    if fps <= 0:
        raise ValueError(
            f"{path}: the Video event needs a frequency (frames per second) > 0, got {fps:g}; "
            "set the event's frequency column"
        )


def check_media_events(events: pd.DataFrame, rows: np.ndarray, event_type: str, what: str) -> None:
    """Preflight of file-backed stimulus events: each distinct Audio part lies in a readable
    sound file (:func:`audio_span`), each Video part in its ``.npy`` frames (at the event's
    ``frequency``), each Image file is an image (:func:`check_image`); other event types and
    formats are left to their readers.

    Raises
    ------
    ValueError
        Naming ``what`` (the extractor), the first bad event and the fix.
    """
    if event_type not in ("Image", "Audio", "Video"):
        return
    seen: set[tuple[Any, ...]] = set()
    for row, (_, payload) in zip(rows, media_payloads(events, rows)):
        path = payload["path"]
        part = (payload["offset"], payload["duration"], payload["frequency"])
        checked = (path,) if event_type == "Image" else (path, *part)  # an image: whole file
        if checked in seen:
            continue
        seen.add(checked)
        try:
            if event_type == "Image":
                check_image(path)
            elif event_type == "Audio":
                audio_span(path, *part[:2])
            elif (n := video_frame_count(path, part[2])) is not None:
                check_part(path, *part[:2], n, part[2], "video")
        except ValueError as err:
            why = str(err).removeprefix(f"{path}: ")
            raise ValueError(f"{what}: {events_label(events, int(row))}: {why}") from None


def resample_audio(samples: np.ndarray, sfreq: float, target: float) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) from ``sfreq`` to ``target`` Hz."""
    if abs(sfreq - target) < 1e-9:
        return samples
    from scipy.signal import resample_poly

    ratio = resample_ratio(sfreq, target)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


def resample_ratio(sfreq: float, target: float) -> Fraction:
    """The up/down factors of :func:`resample_audio` from ``sfreq`` to ``target`` Hz."""
    return Fraction(target / sfreq).limit_denominator(10_000)


def check_image(path: str | Path) -> None:
    """``path`` is an image file pillow reads (its header only).

    Raises
    ------
    ValueError
        Naming the file and the fix.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(str(path)):
            pass
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(
            f"{path}: not a readable image file ({type(err).__name__}); fix the event's "
            "filepath, or convert the file to a format pillow reads (PNG, JPEG, ...)"
        ) from None


def read_image(path: str | Path) -> Any:
    """The image as an 8-bit RGB ``PIL.Image``.

    Transparent parts are composited onto white (as transformers' ``convert_to_rgb`` does;
    dropping the alpha channel would show whatever colour the transparent pixels hold), and
    16-bit greyscale images are scaled to 8 bits (PIL's conversion would saturate them).

    Raises
    ------
    ValueError
        A 32-bit integer or float greyscale image with values outside ``[0, 255]``: naming the
        file and the fix.
    """
    from PIL import Image

    with Image.open(str(path)) as img:
        if img.mode.startswith("I;16"):
            pixels = np.asarray(img, dtype=np.float64) / 257.0
            return Image.fromarray(np.round(pixels).astype(np.uint8)).convert("RGB")
        if img.mode in ("I", "F"):
            pixels = np.asarray(img)
            if pixels.min() < 0 or pixels.max() > 255:
                raise ValueError(
                    f"{path}: a {img.mode}-mode image with values in [{pixels.min():g}, "
                    f"{pixels.max():g}] has no 8-bit reading; save it as an 8-bit or 16-bit PNG"
                )
            return Image.fromarray(np.round(pixels).astype(np.uint8)).convert("RGB")
        if "A" in img.getbands() or "transparency" in img.info:
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("RGB")


def read_video(path: str | Path, fps: float = 0.0) -> tuple[np.ndarray, float]:
    """Frames ``(time, height, width, 3)`` uint8 and the frame rate.

    ``.npy`` files hold the frames (memory-mapped); their rate is ``fps`` (the Video event's
    ``frequency``). Other formats are read with PyAV when it is installed.
    """
    path = Path(path)
    if path.suffix == ".npy":
        frames = np.load(path, mmap_mode="r")
        check_npy_video(path, frames, fps)
        return frames, float(fps)
    try:
        import av  # type: ignore[import-not-found]
    except ImportError:
        raise ValueError(
            f"{path}: cannot read {path.suffix} videos without PyAV (`pip install av`); "
            "or store the frames as a .npy array (time, height, width, 3)"
        ) from None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or fps)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    return frames, rate


def video_frame_indices(n_frames: int, fps: float, times: np.ndarray) -> np.ndarray:
    """Index of the frame shown at each of ``times`` (seconds from the first frame): the latest
    frame at or before it, within ``[0, n_frames)``."""
    idx = np.floor(np.asarray(times) * fps + 1e-6).astype(np.int64)
    return np.clip(idx, 0, n_frames - 1)


def video_frames_at(frames: np.ndarray, fps: float, times: np.ndarray) -> np.ndarray:
    """Frames shown at ``times`` (seconds from the first frame): the latest frame at or before."""
    return np.asarray(frames[video_frame_indices(len(frames), fps, times)])


def lazy_video_frames(frames: np.ndarray, fps: float, times: np.ndarray) -> list[np.ndarray]:
    """The frames of :func:`video_frames_at` as a list of views of ``frames``: nothing is read
    from a memory-mapped video until a frame is used (a long video's frames would not fit
    in memory at once)."""
    return [frames[i] for i in video_frame_indices(len(frames), fps, times)]


def media_payloads(
    events: pd.DataFrame, rows: np.ndarray
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Identity (for keys) and payload (for computing) of file-backed stimulus events.

    The identity is the study-relative path, size and mtime of the file plus the event's
    ``offset`` and ``duration`` (which part of the file is used) and its ``frequency``.
    """
    paths = source_path(events, rows)
    roots = (
        events["study_root"].to_numpy()[rows]
        if "study_root" in events.columns
        else [None] * len(rows)
    )
    offsets = (
        events["offset"].to_numpy()[rows] if "offset" in events.columns else np.zeros(len(rows))
    )
    freqs = (
        events["frequency"].to_numpy()[rows]
        if "frequency" in events.columns
        else np.zeros(len(rows))
    )
    durations = events["duration"].to_numpy()[rows]
    out = []
    for row, path, root, off, dur, freq in zip(rows, paths, roots, offsets, durations, freqs):
        off = float(off) if off == off else 0.0
        freq = float(freq) if freq == freq else 0.0
        try:
            source = source_identity(path, root if isinstance(root, str) else None)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"stimulus file not found: {path}, for {events_label(events, int(row))}; fix "
                "the event's filepath (relative to its study_root), or drop the event"
            ) from None
        ident = (
            *source,
            off,
            float(dur),
            freq,
        )
        out.append(
            (ident, {"path": str(path), "offset": off, "duration": float(dur), "frequency": freq})
        )
    return out


def media_items(
    events: pd.DataFrame, rows: np.ndarray, keys_of: Callable[[list[Any]], list[str]]
) -> list[Item]:
    """Items of file-backed stimulus events: one per row, keyed by ``keys_of`` of its identity.

    The identity and payload are those of :func:`media_payloads`; the label is the file path.
    """
    pairs = media_payloads(events, rows)
    keys = keys_of([ident for ident, _ in pairs])
    return [Item(key=k, label=p["path"], payload=p) for k, (_, p) in zip(keys, pairs)]

"""Audio events extracted from the sound track of video files (PyAV, which ships FFmpeg).

:class:`AudioFromVideo` decodes the audio stream of each ``Video`` event's file once, writes it
as a float32 WAV file in ``folder`` and adds an ``Audio`` event over the same span, so that every
audio extractor (spectrograms, speech envelopes, wav2vec) reads movies like any sound file. The
WAV's sample 0 is the container's time 0 (a sound track starting later is padded with zeros),
so the Audio event keeps the Video event's ``start`` and ``offset``.

The WAV is named after the video and a key of its identity (study-relative path, size,
modification time): a changed video gets a new file, never a stale one, and an existing file
is reused. Files are written to a temporary name, then renamed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from .transforms import Transform

__all__ = ["AudioFromVideo", "decode_audio", "write_wav"]


def decode_audio(path: str | Path, rate: int | None = None) -> tuple[np.ndarray, int]:
    """``(channels, samples)`` float32 sound track of a media file and its sample rate.

    Sample 0 is the container's time 0 (a late first packet is padded with zeros, samples
    before time 0 are cut). ``rate``
    resamples with FFmpeg's resampler; ``None`` keeps the stream's rate.

    Raises
    ------
    ValueError
        The file has no audio stream (names the file).
    """
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path}: no audio stream in this file")
        stream = container.streams.audio[0]
        out_rate = int(rate or stream.rate)
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=out_rate)
        chunks: list[np.ndarray] = []
        first_time: float | None = None
        for frame in container.decode(stream):
            if first_time is None and frame.time is not None:
                first_time = float(frame.time)
            for converted in resampler.resample(frame):
                chunks.append(converted.to_ndarray())
        for converted in resampler.resample(None):  # flush
            chunks.append(converted.to_ndarray())
    data = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
    lead = int(round((first_time or 0.0) * out_rate))
    if lead > 0:  # the sound track starts after time 0
        data = np.concatenate([np.zeros((data.shape[0], lead), data.dtype), data], axis=1)
    elif lead < 0:  # samples before time 0 (encoder priming not cut by an edit list)
        data = data[:, -lead:]
    return np.ascontiguousarray(data, dtype=np.float32), out_rate


def write_wav(path: str | Path, data: np.ndarray, rate: int) -> None:
    """Write ``(channels, samples)`` float32 audio as a WAV file (PCM float), atomically."""
    import av

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    layout = "mono" if data.shape[0] == 1 else "stereo"
    if data.shape[0] > 2:
        raise ValueError(f"write_wav: {data.shape[0]} channels; mono or stereo only")
    with av.open(str(tmp), "w", format="wav") as container:
        stream = container.add_stream("pcm_f32le", rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data.T.reshape(1, -1), dtype=np.float32),
            format="flt",
            layout=layout,
        )
        frame.rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    os.replace(tmp, path)


def _identity(path: Path, root: Any) -> str:
    st = os.stat(path)
    rel = str(path)
    if isinstance(root, str) and root:
        try:
            rel = path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return hashlib.blake2b(
        f"{rel}|{st.st_size}|{st.st_mtime_ns}".encode(), digest_size=8
    ).hexdigest()


@register("audio_from_video")
@config
class AudioFromVideo(Transform):
    """Add an ``Audio`` event, backed by an extracted WAV file, for each ``Video`` event.

    Parameters
    ----------
    folder
        Where the WAV files go (created if needed).
    frequency
        Sample rate of the WAV files (Hz); ``None`` keeps the sound track's.
    mono
        Average the channels.
    missing_audio
        A video without a sound track: ``"error"`` (default) or ``"skip"``.
    """

    folder: Path
    frequency: int | None = None
    mono: bool = True
    missing_audio: Literal["error", "skip"] = "error"

    def _check(self) -> None:
        if self.frequency is not None and self.frequency <= 0:
            raise ConfigError(f"AudioFromVideo.frequency: must be > 0 Hz, got {self.frequency}")

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        rows = np.flatnonzero((events["type"] == "Video").to_numpy())
        if not len(rows):
            raise ConfigError("AudioFromVideo: no Video events")
        self.folder.mkdir(parents=True, exist_ok=True)
        added = []
        done: dict[str, tuple[str, int] | None] = {}
        for row in rows:  # once per video event (a file is decoded once)
            ev = events.iloc[int(row)]
            path = Path(str(ev["filepath"]))
            root = ev.get("study_root")
            if not path.is_absolute() and isinstance(root, str) and root:
                path = Path(root) / path
            if not path.exists():
                raise ConfigError(f"AudioFromVideo: video file not found: {path}")
            if str(path) not in done:
                done[str(path)] = self._extract(path, root)
            result = done[str(path)]
            if result is None:
                continue
            wav, rate = result
            added.append(
                {
                    **{k: ev[k] for k in ("start", "duration", "timeline") if k in ev},
                    "type": "Audio",
                    "filepath": wav,
                    "frequency": float(rate),
                    "offset": float(ev["offset"])
                    if "offset" in ev and ev["offset"] == ev["offset"]
                    else 0.0,
                    "video": str(ev["filepath"]),
                }
            )
        out = pd.concat([events, pd.DataFrame(added)], ignore_index=True)
        return out.sort_values(["timeline", "start"], kind="stable")

    def _extract(self, path: Path, root: Any) -> tuple[str, int] | None:
        rate_tag = f"{self.frequency}hz" if self.frequency else "native"
        name = f"{path.stem}-{_identity(path, root)}-{rate_tag}{'-mono' if self.mono else ''}.wav"
        target = self.folder / name
        if target.exists():  # extracted before: only read its rate
            import av

            with av.open(str(target)) as container:
                return str(target.resolve()), int(container.streams.audio[0].rate)
        try:
            data, rate = decode_audio(path, self.frequency)
        except ValueError as err:
            if self.missing_audio == "skip" and "no audio stream" in str(err):
                return None
            raise ConfigError(
                f"AudioFromVideo: {err}; pass missing_audio='skip' to leave it out"
            ) from None
        if self.mono:
            data = data.mean(axis=0, keepdims=True)
        write_wav(target, data, rate)
        return str(target.resolve()), rate

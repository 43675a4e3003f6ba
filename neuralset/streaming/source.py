"""Stream sources: chunks of samples with timestamps, and markers on their own stream.

A source is any iterable of :class:`Chunk`; :class:`ArraySource` replays a recording (an array,
or a file read with MNE) chunk by chunk, in-process, either as fast as it is consumed or paced
in real time. Trigger events arrive as :class:`Marker` objects on a separate stream
(:func:`markers_from_events` turns events of a table into one, for replays).
:mod:`neuralset.streaming.lsl` provides the same two streams from Lab Streaming Layer.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["StreamInfo", "Chunk", "Marker", "ArraySource", "markers_from_events"]


@dataclasses.dataclass(frozen=True)
class StreamInfo:
    """What a stream carries: channel names and types (MNE names), rate, bad channels."""

    ch_names: tuple[str, ...]
    ch_types: tuple[str, ...]
    sfreq: float
    bads: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.ch_names) != len(self.ch_types):
            raise ValueError(
                f"StreamInfo: {len(self.ch_names)} channel names but {len(self.ch_types)} types"
            )
        if self.sfreq <= 0:
            raise ValueError(f"StreamInfo.sfreq: must be > 0 Hz, got {self.sfreq}")

    @classmethod
    def from_mne(cls, info: Any) -> StreamInfo:
        """From an ``mne.Info``."""
        import mne

        types = tuple(mne.channel_type(info, i) for i in range(len(info["ch_names"])))
        return cls(tuple(info["ch_names"]), types, float(info["sfreq"]), tuple(info["bads"]))


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Consecutive samples of a stream.

    Attributes
    ----------
    data
        ``(channels, samples)`` float64.
    first
        Index of the first sample in the stream (0 for the stream's first sample).
    timestamps
        ``(samples,)`` times of the samples on the stream's clock, in seconds.
    arrival
        ``time.perf_counter()`` when the chunk was handed over (latency measurements).
    """

    data: np.ndarray
    first: int
    timestamps: np.ndarray
    arrival: float = 0.0

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.data.shape[1])


@dataclasses.dataclass(frozen=True)
class Marker:
    """An event on the marker stream: its time (the stream's clock), value and event type.

    A :class:`~neuralset.segments.TriggerSegmenter` selects the markers that cut a window
    with its ``triggers``, as it selects trigger events offline: the selector is applied to a
    one-row events table made of ``fields``, ``type``, ``start`` (the timestamp) and ``value``.

    Attributes
    ----------
    timestamp
        Time of the event on the stream's clock (s).
    value
        The marker's text (an LSL string, an annotation description, a word).
    type
        Event type (``"Word"``, ``"Stimulus"``); ``""``: unknown, refused by a trigger
        segmenter (it could not tell whether the marker is a trigger).
    fields
        Other event fields a query selector may use (``{"code": 3}``).
    """

    timestamp: float
    value: str = ""
    type: str = ""
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_event(self) -> dict[str, Any]:
        """The marker as one row of an events table (what the trigger selector sees)."""
        return {**self.fields, "type": self.type, "start": self.timestamp, "value": self.value}


class ArraySource:
    """Replay ``(channels, samples)`` data as chunks, in-process.

    Parameters
    ----------
    data
        The samples (converted to float64).
    info
        What the channels are.
    chunk_size
        Samples per chunk (an int, or a sequence cycled through for irregular chunks).
    t0
        Timestamp of sample 0 on the stream's clock. The default, 0, is how the offline
        studies time a recording file: its first sample is at 0 s on its timeline (an MNE
        annotation at ``onset`` is an event at ``onset - raw.first_time``), so markers made
        from the events table (:func:`markers_from_events`) fall on the samples the offline
        segments start at. Give ``start - offset`` of the recording event when it does not
        start its timeline at 0, or ``raw.first_time`` for markers on MNE's clock (raw
        annotation onsets, ``mne.find_events`` samples divided by the rate).
    realtime
        Pace the chunks: a chunk is handed over when the wall clock reaches the time of its
        last sample (from the start of the iteration).
    """

    def __init__(
        self,
        data: np.ndarray,
        info: StreamInfo,
        chunk_size: int | tuple[int, ...] = 32,
        *,
        t0: float = 0.0,
        realtime: bool = False,
    ) -> None:
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] != len(info.ch_names):
            raise ValueError(
                f"ArraySource.data: expected ({len(info.ch_names)} channels, samples), got "
                f"shape {data.shape}"
            )
        sizes = (chunk_size,) if isinstance(chunk_size, int) else tuple(chunk_size)
        if not sizes or min(sizes) < 1:
            raise ValueError(f"ArraySource.chunk_size: must be >= 1, got {chunk_size}")
        self.data, self.info, self.sizes = data, info, sizes
        self.t0, self.realtime = float(t0), bool(realtime)
        #: MNE's time of the first sample (``raw.first_time``) for :meth:`from_file`, else 0
        self.first_time = 0.0

    @classmethod
    def from_file(
        cls, path: str | Path, chunk_size: int | tuple[int, ...] = 32, **kwargs: Any
    ) -> ArraySource:
        """Replay a recording file read with ``mne.io.read_raw`` (every channel).

        Its first sample is at ``t0`` (default 0 s, the study timeline's time of a file's
        first sample: see the class docstring), not at MNE's ``raw.first_time``, which is kept
        as :attr:`first_time` (pass ``t0=source.first_time`` for markers on MNE's clock).
        """
        import mne

        raw = mne.io.read_raw(path, preload=True, verbose="error")
        source = cls(raw.get_data(), StreamInfo.from_mne(raw.info), chunk_size, **kwargs)
        source.first_time = float(raw.first_time)
        return source

    def __iter__(self) -> Iterator[Chunk]:
        n = self.data.shape[1]
        sfreq = self.info.sfreq
        start = 0
        k = 0
        wall0 = time.perf_counter()
        while start < n:
            stop = min(n, start + self.sizes[k % len(self.sizes)])
            k += 1
            if self.realtime:
                due = wall0 + (stop - 1) / sfreq
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            stamps = self.t0 + np.arange(start, stop) / sfreq
            yield Chunk(self.data[:, start:stop], start, stamps, time.perf_counter())
            start = stop


def markers_from_events(
    events: pd.DataFrame, event_type: str | None, timeline: str, *, field: str = "text"
) -> list[Marker]:
    """Markers for the events of one type (``None``: of every type) on one timeline.

    Each marker has the event's ``start`` as timestamp, its ``field`` as value (``""`` when
    not set), its type, and its other columns as :attr:`Marker.fields` (NaN where not set, as
    in the table), so that a segmenter's ``triggers`` select among them online as among the
    events offline.
    """
    keep = events["timeline"].astype(str) == timeline
    if event_type is not None:
        keep &= events["type"] == event_type
    rows = events[keep]
    texts = rows[field].tolist() if field in rows.columns else [None] * len(rows)
    values = ["" if _missing(v) else str(v) for v in texts]
    columns = [c for c in rows.columns if c not in ("type", "start", "timeline")]
    markers = []
    for record, value in zip(rows.to_dict("records"), values):
        fields = {c: record[c] for c in columns}  # unset ones too (NaN), as in the table
        markers.append(Marker(float(record["start"]), str(value), str(record["type"]), fields))
    return markers


def _missing(value: Any) -> bool:
    """None, NaN or NA (an event field not set)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # an array or list: set
        return False

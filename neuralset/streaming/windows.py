"""Windows cut from a stream as soon as their last sample arrives, and their typed batches.

:class:`WindowEmitter` keeps the processed samples of the last ``history`` seconds in a ring
buffer (time-major float32, like a stored recording) and cuts windows the way
:meth:`RecordingExtractor.read <neuralset.extractors.recording.RecordingExtractor.read>` does:

* trigger windows: a marker at time ``t`` gives the window starting at ``t + offset``; its first
  sample is ``round((t + offset - t0) * sfreq)`` and it holds ``round(duration * sfreq)``
  samples (``t0``: the time of the stream's first sample);
* sliding windows: every ``stride`` seconds from ``t0``.

A window is emitted as soon as its last sample (and the last sample of its ``baseline``
interval) has been processed; a window (or baseline) that would start before the stream's
first sample, or that overlaps samples lost upstream (``gaps``), is never emitted, and its
marker index is listed in ``missed``. The baseline (as ``MneExtractor.baseline``: the mean over
``trigger + tmin ... trigger + tmax``, both included, on the sample grid of the trigger) is
subtracted with the same arithmetic as the offline read. :func:`to_batch` turns windows into a
:class:`~neuralset.loaders.batch.Batch` (torch) or a ``JaxBatch`` (JAX).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Literal

import numpy as np

from ..loaders.batch import META_FIELDS, default_layout, run_check, typecheck_enabled
from ..loaders.reading import sample_times
from .source import Marker

__all__ = ["Window", "WindowEmitter", "WindowOverrunError", "to_batch"]


class WindowOverrunError(RuntimeError):
    """A window's samples left the ring buffer before it could be cut (history too short)."""


@dataclasses.dataclass(frozen=True)
class Window:
    """One window of processed samples.

    Attributes
    ----------
    data
        ``(channels, time)`` float32.
    start
        Window start on the stream's clock (s).
    duration
        Window duration (s).
    trigger
        Index of its marker in the marker stream (-1 for sliding windows).
    index
        Position of the window in the emitted sequence.
    value
        The marker's value ("" for sliding windows).
    emitted
        ``time.perf_counter()`` when it was cut.
    """

    data: np.ndarray
    start: float
    duration: float
    trigger: int
    index: int
    value: str = ""
    emitted: float = 0.0


@dataclasses.dataclass
class _Pending:
    start: float
    first: int  # output sample index of the window's first sample
    need: int  # samples that must have been processed before cutting
    trigger: int
    value: str
    reference: int  # sample of the baseline's reference (trigger onset)


class WindowEmitter:
    """Cut windows from processed samples as they arrive (see the module docstring).

    Parameters
    ----------
    n_channels, sfreq
        Shape and rate of the processed samples.
    duration
        Window duration in seconds.
    offset
        Trigger windows: window start relative to the marker (s).
    stride
        Sliding windows every ``stride`` seconds (``None``: trigger windows from markers).
    baseline
        ``(tmin, tmax)`` relative to the marker (the window start for sliding windows).
    t0
        Time of the stream's first sample on the markers' clock.
    history
        Seconds of processed samples kept (windows and baselines must fit in it).
    """

    def __init__(
        self,
        n_channels: int,
        sfreq: float,
        duration: float,
        *,
        offset: float = 0.0,
        stride: float | None = None,
        baseline: tuple[float, float] | None = None,
        t0: float = 0.0,
        history: float = 30.0,
    ) -> None:
        if duration <= 0:
            raise ValueError(f"WindowEmitter.duration: must be > 0 s, got {duration}")
        if stride is not None and stride <= 0:
            raise ValueError(f"WindowEmitter.stride: must be > 0 s, got {stride}")
        self.sfreq, self.duration, self.offset = float(sfreq), float(duration), float(offset)
        self.stride, self.baseline, self.t0 = stride, baseline, float(t0)
        self.n_times = int(round(duration * sfreq))
        capacity = max(int(math.ceil(history * sfreq)), 2 * self.n_times + 1)
        self.ring = np.zeros((capacity, n_channels), dtype=np.float32)
        self.count = 0  # processed samples so far
        self.pending: list[_Pending] = []
        self.markers = 0
        self.emitted = 0
        #: marker index of each window never emitted (it starts before the stream, or overlaps
        #: a gap); -1 for sliding windows
        self.missed: list[int] = []
        #: ``(first, stop)`` output samples that never arrived (dropped upstream)
        self.gaps: list[tuple[int, int]] = []
        self._next_slide = 0

    # -- inputs ----------------------------------------------------------------------------
    def add_marker(self, marker: Marker, index: int | None = None) -> None:
        """Schedule the trigger window of a marker (``index``: its position in the marker
        stream, the window's ``trigger``; default: the markers added so far)."""
        start = marker.timestamp + self.offset
        self._schedule(
            start, marker.timestamp, self.markers if index is None else index, marker.value
        )
        self.markers += 1

    def _schedule(self, start: float, reference_time: float, trigger: int, value: str) -> None:
        first = int(np.round((start - self.t0) * self.sfreq))
        need = first + self.n_times
        reference = int(np.round((reference_time - self.t0) * self.sfreq))
        if self.baseline is not None:
            hi = math.floor(self.baseline[1] * self.sfreq + 1e-6)
            need = max(need, reference + hi + 1)
        self.pending.append(_Pending(start, first, need, trigger, value, reference))

    def add_samples(self, block: np.ndarray, first: int) -> list[Window]:
        """Append ``(samples, channels)`` processed samples (output index ``first``); cut the
        windows now complete.

        Samples lost upstream (``first`` beyond the samples received) are a gap: windows (or
        baselines) overlapping it are never cut and are listed in :attr:`missed`.
        """
        if first < self.count:
            raise ValueError(
                f"WindowEmitter: samples must arrive in order; expected output sample "
                f"{self.count} or later, got {first}"
            )
        if first > self.count:
            self.gaps.append((self.count, first))
            self.count = first
        self._store(block)
        oldest = self.count - len(self.ring)
        self.gaps = [g for g in self.gaps if g[1] > oldest]
        if self.stride is not None:
            self._slide()
        return self._cut()

    def _store(self, block: np.ndarray) -> None:
        n, capacity = len(block), len(self.ring)
        if n > capacity:  # only the tail can be kept
            block, self.count, n = block[-capacity:], self.count + n - capacity, capacity
        pos = self.count % capacity
        head = min(n, capacity - pos)
        self.ring[pos : pos + head] = block[:head]
        self.ring[: n - head] = block[head:]
        self.count += n

    def _slide(self) -> None:
        assert self.stride is not None
        while True:
            start = self.t0 + self._next_slide * self.stride
            if int(np.round((start - self.t0) * self.sfreq)) > self.count:  # not started yet
                break
            self._schedule(start, start, -1, "")
            self._next_slide += 1

    # -- cutting ---------------------------------------------------------------------------
    def _cut(self) -> list[Window]:
        ready = [p for p in self.pending if p.need <= self.count]
        if not ready:
            return []
        self.pending = [p for p in self.pending if p.need > self.count]
        out = []
        for p in sorted(ready, key=lambda p: p.first):
            lo = math.ceil(self.baseline[0] * self.sfreq - 1e-6) if self.baseline else 0
            begin = min(p.first, p.reference + lo)
            if begin < 0 or any(a < p.need and begin < b for a, b in self.gaps):
                self.missed.append(p.trigger)
                continue
            data = self._take(np.arange(p.first, p.first + self.n_times))  # (time, channels)
            window = data.T
            if self.baseline is not None:
                window = (window - self._baseline(p.reference)[:, None]).astype(
                    np.float32, copy=False
                )
            out.append(
                Window(
                    np.ascontiguousarray(window),
                    p.start,
                    self.duration,
                    p.trigger,
                    self.emitted,
                    p.value,
                    time.perf_counter(),
                )
            )
            self.emitted += 1
        return out

    def _take(self, idx: np.ndarray) -> np.ndarray:
        oldest = self.count - len(self.ring)
        if len(idx) and idx.min() < oldest:
            raise WindowOverrunError(
                f"WindowEmitter: a window needs output sample {int(idx.min())}, no longer in "
                f"the {len(self.ring) / self.sfreq:g} s history; raise history= or send markers "
                "earlier"
            )
        return self.ring[idx % len(self.ring)]

    def _baseline(self, reference: int) -> np.ndarray:
        """Per channel mean over the baseline samples (float64), as the offline read."""
        assert self.baseline is not None
        lo = math.ceil(self.baseline[0] * self.sfreq - 1e-6)
        hi = math.floor(self.baseline[1] * self.sfreq + 1e-6)
        idx = reference + np.arange(lo, max(hi, lo) + 1)
        gathered = np.asarray(self._take(idx), dtype=np.float64)[None]  # (1, n, channels)
        return np.asarray(gathered.sum(axis=1) / len(idx))[0]


def to_batch(
    windows: list[Window],
    name: str,
    sfreq: float,
    *,
    origin: float = 0.0,
    backend: Literal["torch", "jax"] = "torch",
    timeline: int = 0,
) -> Any:
    """A typed batch of windows: ``batch[name]`` is ``(windows, channels, time)``.

    The metadata are the windows' ``start``, ``duration``, ``trigger`` (marker index, -1 for
    sliding windows), ``index`` (emission order) and ``timeline`` (a constant code);
    ``batch.times[name]`` is ``origin + k / sfreq`` (``origin``: the window start relative to
    its trigger, as offline).
    """
    if not windows:
        raise ValueError("to_batch needs at least one window")
    data = {name: np.stack([w.data for w in windows])}
    mask: dict[str, np.ndarray] = {}
    times = {name: sample_times(data[name].shape[-1], sfreq, origin)}
    arrays: dict[str, Any] = {
        "data": data,
        "mask": mask,
        "times": times,
        "start": np.array([w.start for w in windows], dtype=np.float64),
        "duration": np.array([w.duration for w in windows], dtype=np.float64),
        "timeline": np.full(len(windows), timeline, dtype=np.int64),
        "trigger": np.array([w.trigger for w in windows], dtype=np.int64),
        "index": np.array([w.index for w in windows], dtype=np.int64),
    }
    layout = {name: default_layout(name, "dynamic")}
    if backend == "torch":
        from ..loaders.batch import Batch

        return Batch.from_numpy(arrays, layout=layout)
    if backend == "jax":
        import jax

        from ..loaders.jax_iter import jax_batch_class

        if typecheck_enabled():
            meta = {k: arrays[k] for k in META_FIELDS}
            run_check(np.ndarray, data, mask, meta, layout, times)
        leaves = jax.device_put({k: arrays[k] for k in ("data", "mask", "times", *META_FIELDS)})
        return jax_batch_class()(**leaves)
    raise ValueError(f"to_batch.backend: expected 'torch' or 'jax', got {backend!r}")

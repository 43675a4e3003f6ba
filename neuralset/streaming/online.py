"""An extractor config applied online: chunks in, typed batches out, latency recorded.

:class:`OnlinePipeline` chains an :class:`~neuralset.streaming.causal.OnlinePreprocessor` (the
extractor's causal steps, state carried across chunks) and a
:class:`~neuralset.streaming.windows.WindowEmitter` (windows cut as soon as their last sample
is processed), and turns the windows completed by each chunk into one typed batch. The windows
equal, sample for sample, what the same extractor stores and reads offline for the same
segments (``tests/streaming/test_online.py`` checks it).

Windows come from a segmenter config, as offline: a
:class:`~neuralset.segments.TriggerSegmenter` (``offset``, ``duration``; its trigger events
arrive as markers on their own stream, and its ``triggers`` select among them with the offline
selector, :func:`~neuralset.events.selectors.event_mask`) or a
:class:`~neuralset.segments.SlidingSegmenter` (``duration``, ``stride``; windows tile the
stream from its first sample). Online, every window is cut from the stream, a recording of the
extractor's event type: ``require`` may name that type only, and ``blocks`` may be that type
or ``None``; anything else is refused at construction (whether a window overlaps other events
is not known when its last sample arrives).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..config import ConfigError
from ..events.selectors import event_mask, selector_field
from ..extractors.neural.mne.base import MneExtractor
from ..segments import SlidingSegmenter, TriggerSegmenter
from ..store import Store
from .causal import OnlinePreprocessor
from .source import Chunk, Marker, StreamInfo
from .windows import Window, WindowEmitter, to_batch

__all__ = ["OnlinePipeline", "stored_scaling"]


def stored_scaling(
    extractor: MneExtractor, events: pd.DataFrame, store: Store, row: int | None = None
) -> dict[str, Any]:
    """The scaling statistics ``prepare`` fitted on a recording, read from the store.

    Parameters
    ----------
    extractor, events, store
        The extractor, the events table and the store that ``prepare`` used.
    row
        Row of the recording event in ``events`` (default: the first recording of the
        extractor's event type), e.g. a calibration run of the subject now streaming.
    """
    items = extractor.items(events)
    if row is not None:
        items = [i for i in items if i.payload["row"] == row]
    if not items:
        raise ValueError(
            f"stored_scaling: no {extractor.resolved_event_type} recording"
            + (f" at row {row}" if row is not None else "")
            + " in the events"
        )
    try:
        meta = store.meta(items[0].key)
    except Exception as err:
        raise ValueError(
            f"stored_scaling: {items[0].label} is not prepared in {store.root}; call "
            "extractor.prepare(events, store) first"
        ) from err
    if "scaling" not in meta:
        raise ValueError(
            f"stored_scaling: the stored entry of {items[0].label} has no scaling statistics "
            f"(extractor scaling={extractor.scaling!r}; entries prepared before statistics were "
            "stored need preparing again)"
        )
    return dict(meta["scaling"])


def _check_segmenter(
    segmenter: TriggerSegmenter | SlidingSegmenter, extractor: MneExtractor
) -> None:
    """Refuse what a stream cannot honour: ``require`` or ``blocks`` of other event types
    (see the module docstring), trigger windows without a fixed ``duration``."""
    kind, own = type(segmenter).__name__, extractor.resolved_event_type
    other = [t for t in segmenter.require if t != own]
    if other:
        raise ConfigError(
            f"{kind}.require: online, windows are cut from the {own} stream itself, so only "
            f"{own!r} can be required, got {list(segmenter.require)}; drop {other} from require "
            "(select the trigger events with triggers= instead)"
        )
    if isinstance(segmenter, SlidingSegmenter):
        if segmenter.blocks not in (None, own):
            raise ConfigError(
                f"SlidingSegmenter.blocks: online, sliding windows tile the {own} stream from "
                f"its first sample, got blocks={segmenter.blocks!r}; set blocks=None or "
                f"blocks={own!r}"
            )
    elif segmenter.duration is None:
        raise ConfigError(
            "TriggerSegmenter.duration: a stream needs fixed windows, got None; set "
            "TriggerSegmenter.duration"
        )


class OnlinePipeline:
    """Stream an extractor: causal preprocessing, windows, typed batches.

    Parameters
    ----------
    extractor
        A ``causal=True`` MEG or EEG extractor (its ``baseline`` is applied to each window).
    info
        The stream's channels and rate.
    segmenter
        Where windows are: trigger windows (the markers its ``triggers`` select) or sliding
        windows (markers are then ignored). ``require`` and ``blocks`` may only name the
        extractor's event type (see the module docstring).
    name
        Name of the output in the batches (``batch[name]``).
    scaling
        Statistics fitted offline (see :func:`stored_scaling`) when the extractor scales.
    t0
        Time of the stream's first sample on the markers' clock (default: the first chunk's
        first timestamp).
    first_sample
        Stream index of the offline crop start (aligns the decimation grid).
    history
        Seconds of processed samples kept for windows and baselines.
    backend
        ``"torch"`` (:class:`~neuralset.loaders.batch.Batch`), ``"jax"`` (``JaxBatch``) or
        ``"numpy"`` (the list of :class:`~neuralset.streaming.windows.Window`).

    Attributes
    ----------
    latencies
        Seconds from the arrival of the chunk holding a window's last sample to its batch
        being built, one per batch.
    dropped
        Stream samples that never arrived (a chunk starting after the previous one ended).
        The filters carry on from their state across such a gap; the windows overlapping it
        are not emitted (``emitter.missed``).
    """

    def __init__(
        self,
        extractor: MneExtractor,
        info: StreamInfo,
        segmenter: TriggerSegmenter | SlidingSegmenter,
        *,
        name: str = "meg",
        scaling: dict[str, Any] | None = None,
        t0: float | None = None,
        first_sample: int = 0,
        history: float = 30.0,
        backend: Literal["torch", "jax", "numpy"] = "torch",
    ) -> None:
        self.preprocess = OnlinePreprocessor(
            extractor, info, scaling=scaling, first_sample=first_sample
        )
        _check_segmenter(segmenter, extractor)
        self.segmenter = segmenter
        if isinstance(segmenter, TriggerSegmenter):
            assert segmenter.duration is not None  # checked above
            offset, duration, stride = segmenter.offset, segmenter.duration, None
        else:
            offset, duration, stride = 0.0, segmenter.duration, segmenter.stride
        self._duration = float(duration)
        self._origin = float(offset)  # batch times are relative to the trigger, as offline
        self._emitter_args = {
            "n_channels": len(self.preprocess.ch_names),
            "sfreq": self.preprocess.sfreq,
            "duration": duration,
            "offset": offset,
            "stride": stride,
            "baseline": extractor.baseline,
            "history": history,
        }
        self.emitter: WindowEmitter | None = None
        if t0 is not None:
            self.emitter = WindowEmitter(t0=t0, **self._emitter_args)  # type: ignore[arg-type]
        self._early: list[tuple[Marker, int]] = []
        self.markers = 0  # markers received (a window's ``trigger`` is its marker's position)
        self.name, self.backend = name, backend
        self.latencies: list[float] = []
        self.dropped = 0  # input samples that never arrived (gaps between chunks)
        self._next = 0

    @property
    def ch_names(self) -> tuple[str, ...]:
        """Channels of the windows (axis 1 of ``batch[name]``)."""
        return self.preprocess.ch_names

    def push_marker(self, marker: Marker) -> None:
        """A marker arrived (before or after its samples): a trigger when the segmenter's
        ``triggers`` select it.

        Raises
        ------
        ValueError
            A marker without an event type, with a trigger segmenter.
        ConfigError
            ``triggers`` cannot be evaluated on the marker (a query on a field it lacks).
        """
        index = self.markers
        self.markers += 1
        if not self.is_trigger(marker, index):
            return
        if self.emitter is None:
            self._early.append((marker, index))
        else:
            self.emitter.add_marker(marker, index)

    def is_trigger(self, marker: Marker, index: int = 0) -> bool:
        """Whether the segmenter's ``triggers`` select ``marker`` (never, for sliding windows)."""
        if not isinstance(self.segmenter, TriggerSegmenter):
            return False
        if not marker.type:
            raise ValueError(
                f"OnlinePipeline: marker {index} (at {marker.timestamp:g} s, value "
                f"{marker.value!r}) has no event type, so TriggerSegmenter.triggers="
                f"{self.segmenter.triggers!r} cannot select it as it selects events offline; "
                "give the markers their type (Marker(..., type=...), markers_from_events, "
                "LslMarkers(..., type=...))"
            )
        row = pd.DataFrame([marker.as_event()])
        with selector_field("TriggerSegmenter.triggers"):
            return bool(event_mask(row, self.segmenter.triggers)[0])

    def push(self, chunk: Chunk) -> Any | None:
        """Process a chunk; the batch of the windows it completes (None when none)."""
        if self.emitter is None:
            t0 = float(chunk.timestamps[0]) - chunk.first / self.preprocess.sfreq_in
            self.emitter = WindowEmitter(t0=t0, **self._emitter_args)  # type: ignore[arg-type]
            for marker, index in self._early:
                self.emitter.add_marker(marker, index)
            self._early.clear()
        if chunk.first < self._next:
            raise ValueError(
                f"OnlinePipeline: chunks must arrive in order; expected stream sample "
                f"{self._next} or later, got {chunk.first}"
            )
        self.dropped += chunk.first - self._next
        self._next = chunk.first + chunk.n
        block, first = self.preprocess(chunk)
        windows = self.emitter.add_samples(block, first) if len(block) else []
        if not windows:
            return None
        batch = self.batch(windows)
        self.latencies.append(time.perf_counter() - chunk.arrival)
        return batch

    def warm_up(self) -> None:
        """Build one throw-away batch: imports the backend and passes the shape checks once.

        Call it before the experiment starts, so that the first real window is not delayed
        by seconds of imports (torch, jax) and type-checker set-up.
        """
        n_times = int(round(self._duration * self.preprocess.sfreq))
        dummy = Window(np.zeros((len(self.ch_names), n_times), dtype=np.float32), 0.0, 0.0, -1, -1)
        self.batch([dummy])

    def batch(self, windows: list[Window]) -> Any:
        """The windows as a batch of :attr:`backend`."""
        if self.backend == "numpy":
            return windows
        return to_batch(
            windows, self.name, self.preprocess.sfreq, origin=self._origin, backend=self.backend
        )

    def run(self, source: Iterable[Chunk], markers: Iterable[Marker] | Any = ()) -> Iterator[Any]:
        """Stream ``source``, yielding each batch as soon as it is complete.

        ``markers`` is either a live marker stream (an object with ``poll() -> list[Marker]``,
        such as :class:`~neuralset.streaming.lsl.LslMarkers`, polled before each chunk) or,
        for a replay, the markers themselves: each is delivered with the chunk reaching its
        time.
        """
        poll = getattr(markers, "poll", None)
        queue = [] if poll is not None else sorted(markers, key=lambda m: m.timestamp)
        k = 0
        for chunk in source:
            if poll is not None:
                for marker in poll():
                    self.push_marker(marker)
            last = float(chunk.timestamps[-1]) if chunk.n else -np.inf
            while k < len(queue) and queue[k].timestamp <= last:
                self.push_marker(queue[k])
                k += 1
            batch = self.push(chunk)
            if batch is not None:
                yield batch
        for marker in queue[k:]:  # markers after the last sample: never complete
            self.push_marker(marker)

    def latency_summary(self) -> dict[str, float]:
        """Median and 99th percentile of :attr:`latencies`, in milliseconds."""
        if not self.latencies:
            return {"median_ms": float("nan"), "p99_ms": float("nan"), "batches": 0}
        values = np.asarray(self.latencies) * 1e3
        return {
            "median_ms": float(np.median(values)),
            "p99_ms": float(np.percentile(values, 99)),
            "batches": len(values),
        }

"""Segments: time windows over an events table, as a frozen struct of numpy arrays.

Segments are built by pure functions (:func:`segment_on_triggers`, :func:`sliding_windows`) or by
the equivalent configs (:class:`TriggerSegmenter`, :class:`SlidingSegmenter`). Every query over
many segments (which events fall inside, which segments lack a type, which run past a
recording) is vectorised through an :class:`EventIndex`: per timeline and type, event starts
sorted once, with the running maximum of their stops, so that "is there an event of type T in
[s, e)" costs two binary searches per segment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .config import Config, ConfigError, config, register
from .events.index import EventIndex
from .events.selectors import (
    Selector,
    check_event_types,
    describe_selector,
    event_mask,
    selected_rows,
    selector_field,
)
from .events.table import check_events_table
from .validation import finite, positive

__all__ = [
    "Segments",
    "Segment",
    "EventIndex",
    "segment_on_triggers",
    "sliding_windows",
    "TriggerSegmenter",
    "SlidingSegmenter",
    "Segmenter",
    "event_mask",
    "Selector",
]


@dataclasses.dataclass(frozen=True)
class Segment:
    """One segment, built on request (``segments[i]``); not used on hot paths.

    Attributes
    ----------
    start, duration, timeline, trigger, events
        As in :class:`Segments` for this window (``timeline`` by name), and its events.
    """

    start: float
    duration: float
    timeline: str
    trigger: int
    events: pd.DataFrame

    @property
    def stop(self) -> float:
        return self.start + self.duration


@dataclasses.dataclass(frozen=True, eq=False)
class Segments:
    """A frozen struct of arrays: one time window per position, over an events table.

    Attributes
    ----------
    events
        The validated events table the segments refer to.
    start, duration
        Window start and duration in seconds (float64).
    timeline
        Timeline code per segment (index into ``events["timeline"].cat.categories``).
    trigger
        Row of the trigger event in ``events`` per segment (-1 for sliding windows).
    """

    events: pd.DataFrame
    start: np.ndarray
    duration: np.ndarray
    timeline: np.ndarray
    trigger: np.ndarray
    #: the event index shared with the segments this one was selected from (built on demand)
    _index: EventIndex | None = dataclasses.field(
        default=None, kw_only=True, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        n = len(self.start)
        for name in ("duration", "timeline", "trigger"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Segments.{name} has {len(getattr(self, name))} values, expected {n}"
                )
        for arr in (self.start, self.duration, self.timeline, self.trigger):
            arr.flags.writeable = False
        if self._index is not None and self._index.events is not self.events:
            object.__setattr__(self, "_index", None)  # built on another table: not ours

    def __len__(self) -> int:
        return len(self.start)

    def __repr__(self) -> str:
        return f"Segments(n={len(self)}, timelines={len(np.unique(self.timeline))})"

    @property
    def stop(self) -> np.ndarray:
        return self.start + self.duration

    @property
    def index(self) -> EventIndex:
        """The event index of the underlying table (built once, shared by selections).

        Its :attr:`~neuralset.events.index.EventIndex.memo` holds what extractors derive from
        the events table, so the selections of one Segments (the batches of a dataset) share it.
        """
        index = self._index
        if index is None:
            index = EventIndex(self.events)
            object.__setattr__(self, "_index", index)  # frozen: set once, on first use
        return index

    @property
    def timeline_names(self) -> np.ndarray:
        """Timeline name per segment."""
        return np.asarray(self.events["timeline"].cat.categories)[self.timeline]

    def select(self, which: np.ndarray | slice | Sequence[int]) -> Segments:
        """A new Segments with the chosen positions (mask, indices or slice)."""
        which = np.arange(len(self))[which] if isinstance(which, slice) else np.asarray(which)
        if not which.size:  # an empty list is float64 to numpy: no position, not an error
            which = which.astype(np.intp)
        return Segments(
            events=self.events,
            start=self.start[which],
            duration=self.duration[which],
            timeline=self.timeline[which],
            trigger=self.trigger[which],
            _index=self._index,
        )

    def with_windows(
        self,
        start: np.ndarray | Sequence[float],
        duration: np.ndarray | Sequence[float],
        *,
        timeline: np.ndarray | None = None,
        trigger: np.ndarray | None = None,
    ) -> Segments:
        """Other windows over the same events table (by default, the same segments' timelines
        and triggers).

        The result shares this one's event index (built here if needed), and so its memo.

        Parameters
        ----------
        start, duration
            Window start and duration of each new segment, in seconds.
        timeline, trigger
            Timeline code and trigger row of each new segment (default: this one's).
        """
        return Segments(
            events=self.events,
            start=np.asarray(start, dtype=np.float64),
            duration=np.asarray(duration, dtype=np.float64),
            timeline=self.timeline if timeline is None else np.asarray(timeline),
            trigger=self.trigger if trigger is None else np.asarray(trigger),
            _index=self.index,
        )

    def __getitem__(self, i: int) -> Segment:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"segment {i} out of range for {len(self)} segments")
        rows = self.event_rows(i)
        return Segment(
            start=float(self.start[i]),
            duration=float(self.duration[i]),
            timeline=str(self.timeline_names[i]),
            trigger=int(self.trigger[i]),
            events=self.events.iloc[rows],
        )

    def trigger_values(self, column: str) -> np.ndarray:
        """The value of ``column`` at each segment's trigger event.

        Segments without a trigger (sliding windows) take the value of the events they lie in
        (see :meth:`values`), never None.
        """
        return self.values(column)

    def values(self, column: str) -> np.ndarray:
        """Per segment, the value of the events table's ``column`` (e.g. ``"split"``).

        A segment with a trigger takes its trigger's value. A segment without one (a sliding
        window) takes the value its timeline's events share, when they all have one value
        (missing values, None, NaN or ``""``, ignored); otherwise the value of the events
        spanning the whole window (one per event type; they must agree).

        Raises
        ------
        KeyError
            The table has no such column.
        ValueError
            A window lies in no event with a value, or in events with different values (a
            window across two splits); the message names it and the fix.
        """
        return self.index.segment_values(column, self.trigger, self.timeline, self.start, self.stop)

    def split(self, name: str, column: str = "split") -> Segments:
        """The segments whose ``column`` value (see :meth:`values`) is ``name``.

        Raises
        ------
        ValueError
            No segment is in that split: the message lists the values present, so an empty
            training set is never built silently.
        """
        values = self.values(column)
        keep = values == name
        if not keep.any():
            present = pd.Series(values, dtype=object).fillna("<missing>").value_counts()
            shown = ", ".join(f"{str(v)!r}: {c}" for v, c in present.items()) or "none"
            raise ValueError(
                f"no segment is in split {name!r} (column {column!r}); the {len(self)} segments "
                f"have: {shown}. Check the split names given to AssignSplits(names=...), or "
                "which events the segments lie in"
            )
        return self.select(keep)

    def has_type(self, type_name: str) -> np.ndarray:
        """Mask of segments that overlap at least one event of ``type_name``."""
        return self.index.has_overlap(self.timeline, self.start, self.stop, type_name)

    def require(self, *type_names: str) -> Segments:
        """Drop segments that lack an event of any of the given types (vectorised); a name that
        is no event type is a ``SelectorError`` naming the closest (a typo would drop them all)."""
        check_event_types(type_names)
        keep = np.ones(len(self), dtype=bool)
        for name in type_names:
            keep &= self.has_type(name)
        return self.select(keep)

    def covering(self, type_name: str) -> np.ndarray:
        """Row of the event of ``type_name`` spanning each segment whole, or -1."""
        return self.index.covering(self.timeline, self.start, self.stop, type_name)

    def overlapping(self, type_name: str) -> tuple[np.ndarray, np.ndarray]:
        """(segment position, event row) pairs for events of ``type_name`` in the segments."""
        return self.index.overlapping(self.timeline, self.start, self.stop, type_name)

    def event_rows(self, i: int) -> np.ndarray:
        """Rows of all events overlapping segment ``i``."""
        sl = self.select([i])
        rows = [sl.overlapping(str(name))[1] for name in self.index.types]
        return np.sort(np.concatenate(rows)) if rows else np.zeros(0, np.int64)

    def metadata(self) -> dict[str, np.ndarray]:
        """Light per-segment metadata (what travels with a batch)."""
        return {
            "start": self.start,
            "duration": self.duration,
            "timeline": self.timeline,
            "trigger": self.trigger,
        }


def _timeline_codes(events: pd.DataFrame) -> np.ndarray:
    return events["timeline"].cat.codes.to_numpy().astype(np.int32)


def segment_on_triggers(
    events: pd.DataFrame,
    triggers: Selector,
    *,
    offset: float = 0.0,
    duration: float | None = None,
) -> Segments:
    """One segment per trigger event: ``[trigger.start + offset, ... + duration)``.

    Parameters
    ----------
    events
        Validated events table.
    triggers
        Event type name(s), a query string or a boolean mask (numpy array or pandas Series
        aligned with ``events``) selecting the trigger events (see :func:`event_mask`).
    offset
        Window start relative to the trigger onset, in seconds (e.g. -0.2).
    duration
        Window duration in seconds; ``None`` uses each trigger's own duration.
    """
    if not np.isfinite(offset):
        raise ValueError(
            f"segment_on_triggers: offset must be a finite number of seconds, got {offset}"
        )
    check_events_table(events, "segment_on_triggers", rows=np.arange(0), nonempty=True)
    rows = selected_rows(events, triggers, "segment_on_triggers: the triggers")
    check_events_table(events, "segment_on_triggers", rows=rows)
    start = events["start"].to_numpy()[rows] + offset
    if duration is None:
        dur = events["duration"].to_numpy()[rows].copy()
        if (dur <= 0).any():
            first = int(rows[np.flatnonzero(dur <= 0)[0]])
            raise ValueError(
                f"segment_on_triggers: duration=None uses each trigger's duration, but "
                f"{int((dur <= 0).sum())} triggers last 0 s (e.g. row {first}); pass duration=..."
            )
    else:
        if not 0 < duration < np.inf:  # NaN fails too
            raise ValueError(
                f"segment_on_triggers: duration must be > 0 seconds and finite, got {duration}"
            )
        dur = np.full(len(rows), float(duration))
    trigger = rows.astype(np.int64)
    return Segments(events, start, dur, timeline=_timeline_codes(events)[rows], trigger=trigger)


def sliding_windows(
    events: pd.DataFrame,
    *,
    duration: float,
    stride: float,
    blocks: Selector | None = None,
    drop_incomplete: bool = True,
) -> Segments:
    """Regular windows over each timeline (or over each block event).

    Parameters
    ----------
    events
        A validated events table.
    duration, stride
        Window length and step in seconds (> 0).
    blocks
        Event selector of the spans to tile (e.g. ``"Meg"``); ``None`` tiles each timeline
        from its first event start to its last event stop.
    drop_incomplete
        Drop the last windows that would run past the end of their span; when ``False`` they
        are kept (and extend past it).
    """
    if not (0 < duration < np.inf and 0 < stride < np.inf):  # NaN fails too
        raise ValueError(
            f"sliding_windows: duration and stride must be > 0 seconds and finite, got "
            f"{duration} and {stride}"
        )
    check_events_table(events, "sliding_windows", nonempty=True)
    if blocks is None:
        tl = events["timeline"].cat.codes.to_numpy()
        start = events["start"].to_numpy()
        stop = start + events["duration"].to_numpy()
        n_tl = len(events["timeline"].cat.categories)
        b_start = np.full(n_tl, np.inf)
        b_stop = np.full(n_tl, -np.inf)
        np.minimum.at(b_start, tl, start)
        np.maximum.at(b_stop, tl, stop)
        present = np.isfinite(b_start)
        b_tl = np.flatnonzero(present).astype(np.int32)
        b_start, b_stop = b_start[present], b_stop[present]
    else:
        rows = selected_rows(events, blocks, "sliding_windows: blocks")
        b_start = events["start"].to_numpy()[rows]
        b_stop = b_start + events["duration"].to_numpy()[rows]
        b_tl = _timeline_codes(events)[rows]
    span = b_stop - b_start
    eps = 1e-9
    if drop_incomplete:
        counts = np.floor((span - duration + eps) / stride).astype(np.int64) + 1
    else:
        counts = np.ceil((span - eps) / stride).astype(np.int64)
    counts = np.maximum(counts, 0)
    if not counts.sum():
        what = "timelines" if blocks is None else f"blocks {describe_selector(blocks)}"
        raise ValueError(
            f"sliding_windows: no window of {duration:g} s fits in the {len(span)} {what}: the "
            f"longest spans {float(span.max(initial=0.0)):g} s"
            + ("; their events last 0 s: give them a duration" if not span.any() else "")
            + "; shorten the windows or pass drop_incomplete=False"
        )
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    start = np.repeat(b_start, counts) + k * stride
    n = len(start)
    trigger = np.full(n, -1, dtype=np.int64)  # sliding windows have no trigger
    return Segments(events, start, np.full(n, float(duration)), np.repeat(b_tl, counts), trigger)


@config
class Segmenter(Config):
    """Base of the segmenting configs; ``__call__(events) -> Segments``.

    Parameters
    ----------
    require
        Event types a segment must overlap to be kept (e.g. ``("Meg",)``).
    """

    require: tuple[str, ...] = ()

    def _segments(self, events: pd.DataFrame) -> Segments:
        raise NotImplementedError

    def _check(self) -> None:
        with selector_field(f"{type(self).__name__}.require"):  # a typo would drop every segment
            check_event_types(self.require)

    def __call__(self, events: pd.DataFrame) -> Segments:
        segments = self._segments(events)
        if not self.require:
            return segments
        kept = segments.require(*self.require)
        if not len(kept):
            counts = ", ".join(f"{n!r}: {int(segments.has_type(n).sum())}" for n in self.require)
            raise ConfigError(
                f"{type(self).__name__}.require: none of the {len(segments)} segments overlaps "
                f"an event of each of {list(self.require)} (segments overlapping each: "
                f"{counts}); check which timelines hold these events, or drop the type from "
                "require"
            )
        return kept


@register("trigger")
@config
class TriggerSegmenter(Segmenter):
    """Segments anchored on trigger events.

    Parameters
    ----------
    triggers
        Event type name or query string selecting the triggers (e.g. ``"Word"``).
    offset
        Window start relative to trigger onset (s).
    duration
        Window duration (s); ``None`` uses the trigger's own duration.
    require
        Event types a segment must contain to be kept (e.g. ``("Meg",)``).
    """

    triggers: str
    offset: float = 0.0
    duration: float | None = None

    def _check(self) -> None:
        positive(self, "duration", "seconds", optional=True)
        finite(self, "offset", "seconds")
        finite(self, "duration", "seconds", optional=True)

    def _segments(self, events: pd.DataFrame) -> Segments:
        with selector_field("TriggerSegmenter.triggers"):
            return segment_on_triggers(
                events, self.triggers, offset=self.offset, duration=self.duration
            )


@register("sliding")
@config
class SlidingSegmenter(Segmenter):
    """Sliding windows over timelines or block events (see :func:`sliding_windows`).

    Parameters
    ----------
    duration, stride
        Window length and step in seconds (> 0).
    blocks
        Event type or query string of the spans to tile (e.g. ``"Meg"``); ``None`` tiles each
        timeline from its first event to its last.
    drop_incomplete
        Drop the windows that would run past the end of their span.
    """

    duration: float
    stride: float
    blocks: str | None = None
    drop_incomplete: bool = True

    def _check(self) -> None:
        positive(self, "duration", "seconds")
        positive(self, "stride", "seconds")
        finite(self, "duration", "seconds")
        finite(self, "stride", "seconds")

    def _segments(self, events: pd.DataFrame) -> Segments:
        with selector_field("SlidingSegmenter.blocks"):
            return sliding_windows(
                events,
                duration=self.duration,
                stride=self.stride,
                blocks=self.blocks,
                drop_incomplete=self.drop_incomplete,
            )

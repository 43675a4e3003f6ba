"""Per-sample detection targets: masks of event presence, onsets or offsets.

:class:`DetectionTarget` paints, at ``frequency``, one channel per class (or one channel for all
events of the type) over each window: 1 while an event is present, or at its onset or offset
sample (optionally widened to a tolerance), 0 elsewhere. This is the dense target of seizure,
sleep-stage, artefact or spindle detectors. Painting is vectorised over all
``(window, event)`` pairs of a batch with one difference array (no loop over events).
Registered YAML kind: ``detection_target``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import ConfigError, config, register
from ...segments import Segments
from ...store import Store
from ...window_labels import class_codes
from ..base import OutOfBounds, Output
from .vocabulary import VocabularyExtractor

__all__ = ["DetectionTarget", "paint_spans"]


def paint_spans(
    n: int,
    n_channels: int,
    n_times: int,
    seg: np.ndarray,
    channel: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> np.ndarray:
    """``(n, n_channels, n_times)`` float32 mask, 1 on samples ``[lo, hi)`` of each pair.

    Bounds are clipped to the window; overlapping spans still give 1.
    """
    lo = np.clip(lo, 0, n_times)
    hi = np.clip(hi, 0, n_times)
    keep = hi > lo
    diff = np.zeros((n, n_channels, n_times + 1), dtype=np.int32)
    np.add.at(diff, (seg[keep], channel[keep], lo[keep]), 1)
    np.add.at(diff, (seg[keep], channel[keep], hi[keep]), -1)
    return (np.cumsum(diff[..., :n_times], axis=-1) > 0).astype(np.float32)


@register("detection_target")
@config
class DetectionTarget(VocabularyExtractor):
    """Per-sample masks of the events of ``event_type`` at ``frequency``.

    Output ``(batch, channels, time)`` float32: one channel per class of ``field`` (in the order
    of ``classes``, or of the fitted vocabulary), or a single channel for every event of the type
    when ``field`` is ``""``; with ``background`` set (presence only), one more channel, last,
    that is 1 where no event is present.

    Sample ``s`` of a window starting at ``t0`` is at ``t0 + s / frequency``; an event
    ``[start, stop)`` is *present* on the samples with ``start <= t < stop`` (an instantaneous
    event on its onset sample), its *onset* is the first sample at or after ``start`` and its
    *offset* the first sample at or after ``stop``.

    Parameters
    ----------
    frequency
        Output rate in Hz (required).
    mode
        ``"presence"`` (default), ``"onset"`` or ``"offset"``.
    tolerance
        For onsets and offsets: mark every sample within this many seconds of the event's
        onset (or offset) sample, not only that sample (a common tolerance of detectors).
    field
        Column of the class; ``""``: one channel for all events of the type.
    classes
        Declared vocabulary; empty: fitted by ``prepare``.
    background
        Name of a reserved last channel, 1 where no event is present (``mode="presence"``).

    Examples
    --------
    >>> target = DetectionTarget(event_type="Seizure", field="", frequency=100.0)
    >>> target.read(sliding_windows(events, duration=10.0, stride=5.0), store).data  # doctest: +SKIP
    """

    field_optional: ClassVar[bool] = True
    #: only ``event_type``, ``field`` and ``classes`` change what ``prepare`` stores
    read_fields: ClassVar[tuple[str, ...]] = (
        "on_uncovered",
        "output",
        "aggregation",
        "frequency",
        "mode",
        "tolerance",
        "background",
    )

    field: str = ""
    output: Literal["dynamic", "static"] = "dynamic"
    mode: Literal["presence", "onset", "offset"] = "presence"
    tolerance: float = 0.0
    background: str | None = None

    def _check(self) -> None:
        name = type(self).__name__
        if self.frequency is None:
            raise ConfigError(f"{name}.frequency: set the output rate (Hz), e.g. 100.0")
        if self.output != "dynamic":
            raise ConfigError(f"{name}.output: targets are per sample; use output='dynamic'")
        if self.tolerance < 0:
            raise ConfigError(f"{name}.tolerance: must be >= 0 seconds, got {self.tolerance}")
        if self.background is not None and self.mode != "presence":
            raise ConfigError(f"{name}.background: only with mode='presence'")

    def channels(self, events: pd.DataFrame, store: Store) -> tuple[str, ...]:
        """Names of the output channels (classes, then the background channel if any)."""
        names = self.vocabulary(events, store)
        return (*names, self.background) if self.background is not None else names

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        n = len(segments)
        if n and not np.allclose(segments.duration, segments.duration[0]):
            raise ValueError("DetectionTarget: segments of a batch need equal durations")
        assert self.frequency is not None
        freq = float(self.frequency)
        n_times = int(round(float(segments.duration[0]) * freq)) if n else 0
        names = self.vocabulary(segments.events, store)
        n_classes = len(names)
        widen = self.tolerance if self.mode != "presence" else 0.0
        # events just outside the window can mark its edges: within the tolerance, and those
        # ending less than a sample before it (an event, or an offset, between two samples
        # marks the next one: tiled windows read what one window over them reads)
        back = widen + 1.0 / freq
        query = segments.with_windows(segments.start - back, segments.duration + back + widen)
        seg, rows = query.overlapping(self.resolved_event_type)
        events = segments.events
        if self.field:
            channel = class_codes(events, rows, self.field, names)
            if (channel < 0).any():
                bad = rows[channel < 0][:5].tolist()
                raise ValueError(
                    f"DetectionTarget: {self.resolved_event_type} events {bad} have a "
                    f"{self.field} outside the vocabulary ({', '.join(names)})"
                )
        else:
            channel = np.zeros(len(rows), dtype=np.int64)
        start = events["start"].to_numpy()[rows] - segments.start[seg]
        stop = start + events["duration"].to_numpy()[rows]
        on = np.ceil(start * freq - 1e-6).astype(np.int64)
        if self.mode == "presence":
            lo, hi = on, np.maximum(np.ceil(stop * freq - 1e-6).astype(np.int64), on + 1)
        else:
            mark = on if self.mode == "onset" else np.ceil(stop * freq - 1e-6).astype(np.int64)
            half = int(np.floor(self.tolerance * freq + 1e-6))
            lo, hi = mark - half, mark + half + 1
        mask = paint_spans(n, n_classes, n_times, seg, channel, lo, hi)
        if self.background is not None:
            mask = np.concatenate([mask, 1.0 - mask.max(axis=1, keepdims=True)], axis=1)
        return Output(data=mask.astype(np.float32, copy=False))

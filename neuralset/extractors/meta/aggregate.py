"""Dynamic outputs made static: over each segment's window (:class:`Aggregate`) or over each
trigger event's own span (:class:`ToStatic`).

Registered YAML kinds: ``aggregate``, ``to_static``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...config import ConfigError, config, register
from ...segments import Segments
from ...store import Store
from ..base import Extractor, OutOfBounds, Output
from .wrapper import TimeAggregation, Wrapper, aggregate_time, with_windows

__all__ = ["Aggregate", "ToStatic"]


def _needs_dynamic(name: str, extractor: Extractor) -> None:
    if extractor.output != "dynamic" or extractor.frequency is None:
        raise ConfigError(
            f"{name}.extractor: needs a dynamic extractor with a frequency, got "
            f"{type(extractor).__name__}(output={extractor.output!r}, frequency={extractor.frequency})"
        )


@config
class _OverTime(Wrapper):
    """Base of the wrappers that make a dynamic extractor static (fields and checks)."""

    extractor: Extractor
    how: TimeAggregation = "mean"

    def _check(self) -> None:
        _needs_dynamic(type(self).__name__, self.extractor)

    def _derived(self) -> dict[str, Any]:
        return {"output": "static", "frequency": self.extractor.frequency}


@register("aggregate")
@config
class Aggregate(_OverTime):
    """A dynamic extractor aggregated over time within each segment's window: static output.

    ``(batch, *features, time)`` becomes ``(batch, *features)``: the ``"mean"``, ``"max"`` or
    ``"sum"`` over the window's samples, or its ``"first"`` or ``"last"`` sample. With
    ``out_of_bounds="pad"``, only the real samples count (the mask is ``(batch, 1)``: whether
    any sample was real). The result depends on the window, not only on the events in it.

    Parameters
    ----------
    extractor
        A dynamic extractor with a ``frequency``.
    how
        The aggregation.
    """

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        out = self.extractor.read(segments, store, out_of_bounds=out_of_bounds)
        data = aggregate_time(out.data, out.mask, self.how)
        if out.mask is not None:
            any_real = np.asarray(out.mask.any(axis=1, keepdims=True), dtype=bool)
            return Output(data=data, mask=any_real, keep=out.keep)
        return Output(data=data, keep=out.keep)


@register("to_static")
@config
class ToStatic(_OverTime):
    """A dynamic extractor aggregated over each trigger event's own span: static output.

    For a segment triggered on event ``e``, reads the inner extractor on
    ``[e.start, e.start + e.duration)`` - its samples ``e.start + k / frequency`` before the
    event's end, as painted (one sample for an instantaneous event) - and aggregates
    over time (``how``). Unlike :class:`Aggregate`, the value depends only on the event, not on
    the segment's window: the mean MEG response during each word, the mean spectrogram of each
    sound. Segments must have triggers.

    Parameters
    ----------
    extractor
        A dynamic extractor with a ``frequency``.
    how
        The aggregation over the event's samples.
    """

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        n = len(segments)
        if n and (segments.trigger < 0).any():
            bad = np.flatnonzero(segments.trigger < 0)[:3].tolist()
            raise ValueError(
                f"ToStatic: segments {bad} have no trigger event (sliding windows?); "
                "use Aggregate to aggregate over the window instead"
            )
        events = segments.events
        start = events["start"].to_numpy(np.float64)[segments.trigger]
        freq = float(self.extractor.frequency or 0.0)
        # the samples start + k / freq < start + duration (as painted): ceil, at least one
        spans = events["duration"].to_numpy(np.float64)[segments.trigger] * freq
        n_samples = np.maximum(np.ceil(spans - 1e-6), 1)
        duration = n_samples / freq
        rewindowed = with_windows(segments, start, duration)
        data: np.ndarray | None = None
        mask = np.zeros((n, 1), dtype=bool)
        keep = np.ones(n, dtype=bool)
        for length in np.unique(n_samples):  # dynamic reads need one window length per batch
            which = np.flatnonzero(n_samples == length)
            out = self.extractor.read(rewindowed.select(which), store, out_of_bounds=out_of_bounds)
            rows = which if out.keep is None else which[out.keep]
            if out.keep is not None:
                keep[which[~out.keep]] = False
            values = aggregate_time(out.data, out.mask, self.how)
            if data is None:
                data = np.zeros((n, *values.shape[1:]), dtype=np.float32)
            data[rows] = values
            mask[rows, 0] = True if out.mask is None else out.mask.any(axis=1)
        if data is None:
            return Output(data=np.zeros((0,), np.float32))
        if out_of_bounds == "drop":
            return Output(data=data[keep], keep=keep)
        if out_of_bounds == "pad":
            return Output(data=data, mask=mask)
        return Output(data=data)

"""Chunking that respects split boundaries: no chunk of a recording spans two splits.

When the splits of a continuous recording alternate in time (sentences of the test split heard
between sentences of the train split), sliding windows over the whole recording would mix
them. :class:`SplitChunks` cuts each long event (a ``Meg`` recording) into pieces that each lie
inside the time of a single split, carrying that split in its ``split`` column; windows tiled
over the pieces (``sliding_windows(events, blocks="Meg", ...)``) then never cross a split
boundary, and each takes its piece's split.

The time of a split is where the events carrying it lie, with the pauses between them (an
instantaneous event, a trigger, marks its split at its instant); the time between two
different splits (``gap``) is left out, or shared between the two; time covered by two splits
at once is left out. A table whose recordings would all be left out is an error.
Cuts are put on the sample grid of the recording (``frequency``), inside the split's time.

Examples
--------
>>> import pandas as pd
>>> from neuralset.events import validate_events
>>> events = validate_events(pd.DataFrame({
...     "type": ["Meg", "Sentence", "Sentence", "Sentence"], "start": [0.0, 1.0, 4.0, 7.0],
...     "duration": [10.0, 2.5, 2.5, 2.5], "timeline": "run-1",
...     "filepath": ["r.fif", None, None, None], "frequency": [100.0, 0, 0, 0],
...     "text": [None, "a", "b", "c"], "split": ["", "train", "test", "train"]}))
>>> pieces = SplitChunks(event_type="Meg")(events)
>>> pieces.loc[pieces["type"] == "Meg", ["start", "duration", "split"]].values.tolist()
[[1.0, 2.5, 'train'], [4.0, 2.5, 'test'], [7.0, 2.5, 'train']]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from .transforms import ChunkEvents, Transform

__all__ = ["SplitChunks", "split_regions"]


def split_regions(
    events: pd.DataFrame, column: str, *, exclude_type: str, gap: str = "drop"
) -> pd.DataFrame:
    """Time regions of each split per timeline: columns ``timeline``, ``start``, ``stop``, ``label``.

    Regions come from the events (other than ``exclude_type``) with a non-empty ``column``;
    where two splits overlap in time, neither has the time. Time between two events of the
    same split is that split's; with ``gap="midpoint"`` the time between two different splits
    goes half to each (and the time before the first or after the last to that region); with
    ``"drop"`` it belongs to none.
    """
    if column not in events.columns:
        raise ConfigError(
            f"SplitChunks.column: no column {column!r} in the events; assign splits first"
        )
    values = events[column].astype(object).to_numpy()
    ok = (events["type"] != exclude_type).to_numpy() & pd.notna(values)
    ok &= pd.Series(values).astype(str).ne("").to_numpy()
    rows = np.flatnonzero(ok)
    labels, label_names = pd.factorize(values[rows])
    tl = events["timeline"].cat.codes.to_numpy()[rows]
    start = events["start"].to_numpy()[rows]
    stop = np.maximum(start + events["duration"].to_numpy()[rows], start)
    out = []
    for t in np.unique(tl):  # once per timeline
        sel = tl == t
        found = _timeline_regions(labels[sel], start[sel], stop[sel], len(label_names), gap)
        if found is None:
            continue
        starts, stops, label = found
        name = events["timeline"].cat.categories[t]
        out.append(
            pd.DataFrame(
                {"timeline": name, "start": starts, "stop": stops, "label": label_names[label]}
            )
        )
    if not out:
        return pd.DataFrame({"timeline": [], "start": [], "stop": [], "label": []})
    return pd.concat(out, ignore_index=True)


def _timeline_regions(
    labels: np.ndarray, start: np.ndarray, stop: np.ndarray, n_labels: int, gap: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(starts, stops, label)`` of the regions of one timeline (None: no time at all).

    Instantaneous events (``stop == start``) cover no time, but mark their split at their
    instant: the time between two of the same split (or one and an event of that split) is
    the split's, as between events with a duration.
    """
    bounds = np.unique(np.concatenate([start, stop]))
    if len(bounds) < 2:
        return None
    # how many events of each split cover each elementary interval [bounds[k], bounds[k+1])
    cover = np.zeros((n_labels, len(bounds)), dtype=np.int64)
    np.add.at(cover, (labels, np.searchsorted(bounds, start)), 1)
    np.add.at(cover, (labels, np.searchsorted(bounds, stop)), -1)
    active = np.cumsum(cover, axis=1)[:, :-1] > 0
    n_active = active.sum(axis=0)
    label = np.where(n_active == 1, active.argmax(axis=0), -1)  # -1: none or conflict
    instant = stop <= start
    at = pd.Series(labels[instant]).groupby(np.searchsorted(bounds, start[instant]))
    points = (at.max().where(at.nunique() == 1, -1)).astype(np.int64)  # two splits: conflict
    lo, hi = bounds[:-1], bounds[1:]
    label, lo, hi = _fill_gaps(label, lo, hi, n_active, gap, points)
    keep = label >= 0
    lo, hi, label = lo[keep], hi[keep], label[keep]
    if not len(label):
        return None
    # merge touching intervals of one label
    new = np.concatenate([[True], (label[1:] != label[:-1]) | (lo[1:] > hi[:-1])])
    group = np.cumsum(new) - 1
    starts = lo[new].copy()
    stops = pd.Series(hi).groupby(group).max().to_numpy().copy()
    if gap == "midpoint":  # the edges of the timeline go to the edge regions
        starts[0], stops[-1] = -np.inf, np.inf
    return starts, stops, label[new]


def _fill_gaps(
    label: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    n_active: np.ndarray,
    gap: str,
    points: pd.Series,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label the intervals no split covers.

    A gap between two regions of the same split belongs to that split. With ``"midpoint"``, a
    gap between two different splits goes half to each, and the time before the first region
    (after the last) to that region; with ``"drop"`` those stay unlabelled. ``points`` gives
    the split of the instantaneous events at each bound index (-1: two splits there); they
    count as neighbours too.
    """
    gaps = np.flatnonzero(n_active == 0)
    known = np.flatnonzero(label >= 0)
    # neighbours on one axis: elementary interval k at 2k + 1, bound j (an instant) at 2j
    pos = np.concatenate([2 * known + 1, 2 * points.index.to_numpy(dtype=np.int64)])
    lab = np.concatenate([label[known], points.to_numpy(dtype=np.int64)])
    if not len(gaps) or not len(pos):
        return label, lo, hi
    order = np.argsort(pos, kind="stable")
    pos, lab = pos[order], lab[order]
    after = np.searchsorted(pos, 2 * gaps + 1)  # first neighbour after each gap
    left = np.where(after > 0, lab[np.maximum(after - 1, 0)], -1)
    right = np.where(after < len(pos), lab[np.minimum(after, len(pos) - 1)], -1)
    label = label.copy()
    same = (left == right) & (left >= 0)
    label[gaps[same]] = left[same]
    if gap != "midpoint":
        return label, lo, hi
    left = np.where(left >= 0, left, right)  # edges: the one neighbour
    right = np.where(right >= 0, right, left)
    split = gaps[~same]
    l_lab, r_lab = left[~same], right[~same]
    mid = (lo[split] + hi[split]) / 2
    keep = np.ones(len(label), dtype=bool)
    keep[split] = False
    lo2 = np.concatenate([lo[keep], lo[split], mid])
    hi2 = np.concatenate([hi[keep], mid, hi[split]])
    label2 = np.concatenate([label[keep], l_lab, r_lab])
    order = np.argsort(lo2, kind="stable")
    return label2[order], lo2[order], hi2[order]


@register("split_chunks")
@config
class SplitChunks(Transform):
    """Cut the events of ``event_type`` so that no piece spans two splits (see the module doc).

    Each piece keeps the event's fields, with ``start``, ``duration`` and ``offset`` moved to
    the piece on the event's sample grid, and takes its split in ``column``. Pieces shorter
    than ``min_duration`` are dropped; with ``max_duration`` the pieces are cut further into
    chunks (as :class:`~neuralset.events.transforms.ChunkEvents` does).

    Parameters
    ----------
    event_type
        The long events to cut (a recording type).
    column
        The split column, carried by the other events (words, sentences, stimuli).
    gap
        Time covered by no split: ``"drop"`` (default: left out) or ``"midpoint"``.
    min_duration
        Shortest piece kept (s).
    max_duration
        Longest chunk (s); ``None``: pieces are not cut further.
    """

    _version = 2  # 1: instantaneous events marked no time (and crashed when all were)

    event_type: str = "Meg"
    column: str = "split"
    gap: Literal["drop", "midpoint"] = "drop"
    min_duration: float = 0.0
    max_duration: float | None = None

    def _check(self) -> None:
        if self.min_duration < 0:
            raise ConfigError(f"SplitChunks.min_duration: must be >= 0, got {self.min_duration}")
        if self.max_duration is not None and self.max_duration <= 0:
            raise ConfigError(f"SplitChunks.max_duration: must be > 0, got {self.max_duration}")

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        regions = split_regions(events, self.column, exclude_type=self.event_type, gap=self.gap)
        mask = (events["type"] == self.event_type).to_numpy()
        if not mask.any():
            raise ConfigError(f"SplitChunks.event_type: no {self.event_type} events to cut")
        long = events[mask]
        pieces = _intersect(long, regions)
        rep, lo, hi, label = pieces
        freq = (
            long["frequency"].to_numpy(dtype=float) if "frequency" in long else np.zeros(len(long))
        )
        rec_start = long["start"].to_numpy()
        f = freq[rep]
        # snap inwards to the recording's sample grid
        on_grid = f > 0
        safe = np.where(on_grid, f, 1.0)
        lo = np.where(
            on_grid, rec_start[rep] + np.ceil((lo - rec_start[rep]) * safe - 1e-6) / safe, lo
        )
        hi = np.where(
            on_grid, rec_start[rep] + np.floor((hi - rec_start[rep]) * safe + 1e-6) / safe, hi
        )
        keep = (hi - lo) > max(self.min_duration, 0.0) - 1e-12
        keep &= hi > lo
        rep, lo, hi, label = rep[keep], lo[keep], hi[keep], label[keep]
        if not len(rep):  # every recording would vanish, silently
            raise ConfigError(
                f"SplitChunks: no {self.event_type} time lies in a split: {len(regions)} split "
                f"regions from the other events' {self.column!r} values (one needs events with a "
                f"split and a duration, or two of a split, inside the recordings); assign splits "
                "to those events first (AssignSplits, KFoldSplits, StimulusSplits)"
                + (f", or lower min_duration ({self.min_duration} s)" if len(regions) else "")
            )
        chunks = long.iloc[rep].copy()
        offset = long["offset"].to_numpy(dtype=float) if "offset" in long else np.zeros(len(long))
        chunks["offset"] = np.nan_to_num(offset)[rep] + (lo - rec_start[rep])
        chunks["start"] = lo
        chunks["duration"] = hi - lo
        chunks[self.column] = label
        out = pd.concat([events[~mask], chunks], ignore_index=True)
        out[self.column] = out[self.column].astype(object).where(out[self.column].notna(), "")
        out = out.sort_values(["timeline", "start"], kind="stable")
        if self.max_duration is not None:
            out = ChunkEvents(event_type=self.event_type, max_duration=self.max_duration)(out)
        return out


def _intersect(
    long: pd.DataFrame, regions: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pieces ``(event position, start, stop, label)`` of each event inside each region."""
    tl_names = long["timeline"].astype(str).to_numpy()
    a = long["start"].to_numpy()
    b = a + long["duration"].to_numpy()
    reps, los, his, labels = [], [], [], []
    for name, reg in regions.groupby("timeline", sort=False):  # once per timeline
        ev = np.flatnonzero(tl_names == str(name))
        if not len(ev):
            continue
        rs, re_ = reg["start"].to_numpy(), reg["stop"].to_numpy()
        first = np.searchsorted(re_, a[ev], side="right")  # regions ending after the event start
        last = np.searchsorted(rs, b[ev], side="left")  # regions starting before its stop
        counts = np.maximum(last - first, 0)
        rep = np.repeat(ev, counts)
        k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        r = np.repeat(first, counts) + k
        reps.append(rep)
        los.append(np.maximum(a[rep], rs[r]))
        his.append(np.minimum(b[rep], re_[r]))
        labels.append(reg["label"].to_numpy()[r])
    if not reps:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty, empty.astype(object)
    return (
        np.concatenate(reps),
        np.concatenate(los),
        np.concatenate(his),
        np.concatenate(labels).astype(object),
    )

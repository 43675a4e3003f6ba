"""Vectorised queries over an events table: which events of a type lie in many windows.

An :class:`EventIndex` sorts, per timeline and event type, the event starts once and keeps the
running maximum of their stops, so that "is there an event of type T in [s, e)" costs two binary
searches per window, and listing all (window, event) pairs costs the size of the answer.

The index also owns a :class:`~neuralset.memo.Memo` (``index.memo``): extractors cache there
what they derive from the events table (store keys per row, recording span tables), once for
every selection of the segments that share the index.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from ..memo import Memo

__all__ = ["EventIndex", "UnknownDurationError"]


class UnknownDurationError(ValueError):
    """Events whose duration is unknown (files not fetched) cannot be placed on a timeline."""


class EventIndex:
    """Per (timeline, type) sorted event starts, for vectorised window queries.

    Parameters
    ----------
    events
        A validated events table (categorical ``type`` and ``timeline``).

    Attributes
    ----------
    event_start
        ``events["start"]`` as a float array, in table order (read on every batch).
    event_duration
        ``events["duration"]`` as a float array, in table order.
    memo
        Caches derived from this events table (see :mod:`neuralset.memo`).
    """

    def __init__(self, events: pd.DataFrame) -> None:
        self.events = events
        self.memo = Memo()
        self.timelines = events["timeline"].cat.categories
        self.types = events["type"].cat.categories
        tl = events["timeline"].cat.codes.to_numpy().astype(np.int64)
        ty = events["type"].cat.codes.to_numpy().astype(np.int64)
        start = events["start"].to_numpy()
        self.event_start: np.ndarray = start
        duration = events["duration"].to_numpy()
        self.event_duration: np.ndarray = duration
        if np.isnan(duration).any():
            _unknown_durations(events, np.isnan(duration))
        if (duration < 0).any():
            from .table import check_events_table

            check_events_table(events, "EventIndex")  # names the rows and the fix
        stop = start + duration
        # an instantaneous event at t lies in [s, e) when s <= t < e: give it a stop just after t
        eff_stop = np.maximum(stop, np.nextafter(start, np.inf))
        order = np.lexsort((start, ty, tl))
        self.rows = order
        self.start = start[order]
        self.stop = eff_stop[order]
        group = tl[order] * len(self.types) + ty[order]
        n_groups = len(self.timelines) * len(self.types)
        self.bounds = np.searchsorted(group, np.arange(n_groups + 1))
        # running max of stops within each group, for existence queries
        runmax = self.stop.copy()
        for g in np.flatnonzero(np.diff(self.bounds) > 1):
            lo, hi = self.bounds[g], self.bounds[g + 1]
            runmax[lo:hi] = np.maximum.accumulate(runmax[lo:hi])
        self.runmax = runmax
        self._ranks: tuple[np.ndarray, np.ndarray] | None = None
        self.max_duration = np.zeros(n_groups)
        sizes = np.diff(self.bounds)
        nonempty = sizes > 0
        if nonempty.any():
            dur = self.stop - self.start
            self.max_duration[nonempty] = np.maximum.reduceat(dur, self.bounds[:-1][nonempty])

    def type_code(self, name: str) -> int:
        codes = np.flatnonzero(np.asarray(self.types) == name)
        return int(codes[0]) if len(codes) else -1

    def _groups(self, timeline: np.ndarray, type_name: str) -> np.ndarray | None:
        code = self.type_code(type_name)
        if code < 0:
            return None
        return timeline.astype(np.int64) * len(self.types) + code

    def _search(
        self, group: np.ndarray, values: np.ndarray, side: Literal["left", "right"]
    ) -> np.ndarray:
        """``bounds[g] + searchsorted(start[bounds[g]:bounds[g + 1]], v, side)`` for each
        ``(g, v)`` of ``group`` and ``values``, with two global searches whatever the number of
        groups (timelines) the queries span.

        Within a group, ``start`` is sorted; replacing each start by its rank among all the
        distinct starts makes ``group * K + rank`` an integer key sorted over the whole table,
        so a query becomes one search of the rank of its value and one search of its key.
        """
        distinct, keys = self._rank_keys()
        rank = np.searchsorted(distinct, values, side=side)  # starts < v (left), <= v (right)
        query = group.astype(np.int64) * (len(distinct) + 1) + rank
        return np.searchsorted(keys, query, side="left")

    def _rank_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """The sorted distinct starts, and ``group * (len(distinct) + 1) + rank`` of each
        (sorted) event (built on the first search)."""
        found = self._ranks
        if found is None:
            distinct, rank = np.unique(self.start, return_inverse=True)
            groups = np.repeat(np.arange(len(self.bounds) - 1), np.diff(self.bounds))
            keys = groups.astype(np.int64) * (len(distinct) + 1) + rank
            found = self._ranks = (distinct, keys)
        return found

    def has_overlap(
        self, timeline: np.ndarray, start: np.ndarray, stop: np.ndarray, type_name: str
    ) -> np.ndarray:
        """For each window, whether an event of ``type_name`` overlaps ``[start, stop)``."""
        group = self._groups(timeline, type_name)
        if group is None:
            return np.zeros(len(start), dtype=bool)
        first = self.bounds[group]
        hi = self._search(group, stop, "left")  # events starting before the window's stop
        ok = hi > first
        out = np.zeros(len(start), dtype=bool)
        out[ok] = self.runmax[hi[ok] - 1] > start[ok]
        return out

    def covering(
        self, timeline: np.ndarray, start: np.ndarray, stop: np.ndarray, type_name: str
    ) -> np.ndarray:
        """For each window, the row of an event of ``type_name`` spanning it whole, or -1.

        When several do, the latest-starting one is returned.
        """
        out = np.full(len(start), -1, dtype=np.int64)
        group = self._groups(timeline, type_name)
        if group is None:
            return out
        first = self.bounds[group]
        hi = self._search(group, start, "right")  # events starting at or before the window start
        cand = hi - 1
        ok = cand >= first
        # walk back over candidates (usually one step: recordings rarely overlap)
        pending = np.flatnonzero(ok)
        for _ in range(64):
            if not len(pending):
                break
            c = cand[pending]
            full = self.stop[c] >= stop[pending] - 1e-9
            out[pending[full]] = self.rows[c[full]]
            rest = pending[~full]
            cand[rest] -= 1
            pending = rest[cand[rest] >= first[rest]]
        if len(pending):  # more than 64 later-starting events end too early (nested events)
            some = self.runmax[cand[pending]] >= stop[pending] - 1e-9  # one covers, further back
            for i in pending[some]:  # rare: a long event under many short ones of its type
                lo = first[i]
                hits = np.flatnonzero(self.stop[lo : cand[i] + 1] >= stop[i] - 1e-9)
                out[i] = self.rows[lo + hits[-1]]
        return out

    def containing(self, timeline: np.ndarray, times: np.ndarray, type_name: str) -> np.ndarray:
        """For each time, the row of the latest-starting event of ``type_name`` containing it
        in ``[start, stop)`` (an instantaneous event contains its own instant), or -1.

        A time at an event's stop is outside it, as in :meth:`overlapping` (a word starting
        where a sentence ends is not in that sentence).
        """
        times = np.asarray(times, dtype=np.float64)
        out = self.covering(timeline, times, times + 2e-9, type_name)  # stop > time (1e-9 slack)
        at = out < 0
        if at.any():  # else an instantaneous event at the time itself
            rows = self.covering(timeline[at], times[at], times[at], type_name)
            instant = rows >= 0
            instant[instant] = self.event_duration[rows[instant]] == 0
            out[np.flatnonzero(at)[instant]] = rows[instant]
        return out

    def overlapping(
        self, timeline: np.ndarray, start: np.ndarray, stop: np.ndarray, type_name: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """All (window index, event row) pairs where an event of the type overlaps the window."""
        group = self._groups(timeline, type_name)
        if group is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        maxdur = self.max_duration[group]
        lo = self._search(group, start - maxdur - 1e-9, "left")
        hi = self._search(group, stop, "left")
        counts = np.maximum(hi - lo, 0)
        seg = np.repeat(np.arange(len(start)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        pos = np.repeat(lo, counts) + offsets
        keep = self.stop[pos] > start[seg]
        return seg[keep], self.rows[pos[keep]]

    def segment_values(
        self,
        column: str,
        trigger: np.ndarray,
        timeline: np.ndarray,
        start: np.ndarray,
        stop: np.ndarray,
    ) -> np.ndarray:
        """Per window, the value of ``column``: its trigger row's (``trigger >= 0``), else
        the events' it lies in (see :meth:`window_values`; the rule of
        :meth:`neuralset.segments.Segments.values`)."""
        events = self.events
        if column not in events.columns:
            raise KeyError(
                f"the events table has no column {column!r} (columns: "
                f"{', '.join(map(str, events.columns))})"
                + (
                    "; assign splits first, e.g. AssignSplits(by='timeline')"
                    if column == "split"
                    else ""
                )
            )
        values = events[column].to_numpy()
        has = trigger >= 0
        if has.all():
            return values[trigger]
        out = np.empty(len(trigger), dtype=object)
        out[has] = values[trigger[has]]
        free = ~has
        out[free] = self.window_values(column, timeline[free], start[free], stop[free])
        return out

    def window_values(
        self, column: str, timeline: np.ndarray, start: np.ndarray, stop: np.ndarray
    ) -> np.ndarray:
        """For each window, the value of ``column`` of the events it lies in.

        The value shared by all events of the window's timeline when there is one (missing
        values ignored: None, NaN, ``""``), else the value of the events spanning the whole
        window, which must agree. Vectorised: one lookup per timeline, one
        :meth:`covering` query per event type carrying values.

        Raises
        ------
        ValueError
            A window on a timeline with several values lies in no event with a value, or in
            events with different values.
        """
        values = self.events[column].to_numpy(dtype=object)
        present = pd.notna(values) & (values != "")
        tl = self.events["timeline"].cat.codes.to_numpy()
        out = np.full(len(start), None, dtype=object)
        # 1. timelines whose events all share one value
        single = np.full(len(self.timelines), None, dtype=object)
        shared = np.zeros(len(self.timelines), dtype=bool)
        frame = pd.DataFrame({"tl": tl[present], "v": values[present]})
        stats = frame.groupby("tl", sort=False)["v"].agg(["nunique", "first"])
        codes = stats.index.to_numpy(dtype=np.int64)
        one = stats["nunique"].to_numpy() == 1
        shared[codes[one]] = True
        single[codes[one]] = stats["first"].to_numpy()[one]
        timeline = np.asarray(timeline, dtype=np.int64)
        done = shared[timeline]
        out[done] = single[timeline[done]]
        todo = np.flatnonzero(~done)
        if not len(todo):
            return out
        # 2. the events spanning the whole window, per type that carries values
        conflict = np.zeros(len(todo), dtype=bool)
        types = pd.unique(self.events["type"].to_numpy()[present])
        for type_name in types:
            rows = self.covering(timeline[todo], start[todo], stop[todo], str(type_name))
            found = rows >= 0
            found[found] = present[rows[found]]
            got = np.full(len(todo), None, dtype=object)
            got[found] = values[rows[found]]
            seen = pd.notna(out[todo])
            conflict |= found & seen & (out[todo] != got)
            fill = found & ~seen
            out[todo[fill]] = got[fill]
        bad = conflict | pd.isna(out[todo])
        if bad.any():
            i = int(todo[np.flatnonzero(bad)[0]])
            name = self.timelines[timeline[i]]
            have = sorted(map(str, pd.unique(values[present & (tl == timeline[i])])))
            why = "events with different" if conflict[np.flatnonzero(bad)[0]] else "no event with a"
            raise ValueError(
                f"{int(bad.sum())} window(s) have no single {column!r} value, e.g. window "
                f"[{start[i]:g}, {stop[i]:g}) s of timeline {name!r} (values {', '.join(have)}) "
                f"lies in {why} {column!r} value; cut windows inside the events that carry it "
                f"(sliding_windows(..., blocks=<those events>)) or assign {column!r} per timeline "
                "(AssignSplits(by='timeline'))"
            )
        return out


def _unknown_durations(events: pd.DataFrame, mask: np.ndarray) -> None:
    rows = np.flatnonzero(mask)
    first = int(rows[0])
    what = str(events["type"].iloc[first])
    if "filepath" in events.columns:
        what += f" {events['filepath'].iloc[first]}"
    raise UnknownDurationError(
        f"{len(rows)} events have an unknown duration (NaN, duration_source 'unknown'), "
        f"rows {rows[:5].tolist()}, e.g. {what}: their files are not fetched and the metadata "
        "gives no duration. Fetch them first (study.fetch(events), or `neuralset fetch CONFIG`) "
        "and build the events again, or leave them out: "
        "events[events['duration_source'] != 'unknown']"
    )

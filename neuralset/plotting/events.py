"""Pictures of events: timelines (:func:`plot_events`), a whole study (:func:`plot_study`) and
which event types co-occur (:func:`plot_overlap`).

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no display needed: ``fig.savefig("events.png")``). matplotlib is imported when a
function is called. Drawing is vectorised: one collection per (timeline, type) row, and rows
with more than ``max_events`` events are drawn as a density strip instead of one bar each.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..events.index import EventIndex

__all__ = ["plot_events", "plot_study", "plot_overlap", "study_table", "overlap_matrix"]

#: event types drawn as spans even when long (recordings and stimuli files)
_PALETTE = "tab10"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_events(
    events: pd.DataFrame,
    *,
    timelines: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    max_timelines: int = 6,
    max_events: int = 2000,
    span: tuple[float, float] | None = None,
    bins: int = 400,
) -> Any:
    """Events per timeline (one panel each) and per type (one row each).

    Parameters
    ----------
    events
        A validated events table.
    timelines
        Timelines to draw (default: the first ``max_timelines``; the title says how many).
    types
        Event types (rows), in order (default: every type present).
    max_timelines
        Number of timelines drawn when ``timelines`` is None.
    max_events
        A row with more events in view is drawn as a density strip (events per bin).
    span
        ``(start, stop)`` in seconds to show (default: everything).
    bins
        Bins of the density strips.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per timeline, y tick labels the event types.
    """
    all_tl = [str(t) for t in events["timeline"].cat.categories if (events["timeline"] == t).any()]
    chosen = list(timelines) if timelines is not None else all_tl[:max_timelines]
    missing = sorted(set(chosen) - set(all_tl))
    if missing:
        raise ValueError(
            f"plot_events: no timeline {missing[0]!r}; timelines: {', '.join(all_tl[:10])}"
        )
    present = [str(t) for t in events["type"].cat.categories if (events["type"] == t).any()]
    rows = list(types) if types is not None else present
    fig = _figure(10, 0.4 + 0.45 * len(rows) * len(chosen) + 0.6)
    axes = fig.subplots(len(chosen), 1, sharex=True, squeeze=False)[:, 0]
    import matplotlib

    cmap = matplotlib.colormaps[_PALETTE]
    start_all = events["start"].to_numpy()
    stop_all = start_all + events["duration"].to_numpy()
    lo = float(span[0]) if span else float(start_all.min()) if len(events) else 0.0
    hi = float(span[1]) if span else float(stop_all.max()) if len(events) else 1.0
    tl_col = events["timeline"].astype(str).to_numpy()
    ty_col = events["type"].astype(str).to_numpy()
    for ax, name in zip(axes, chosen):
        in_tl = tl_col == name
        for k, etype in enumerate(rows):
            sel = in_tl & (ty_col == etype) & (stop_all >= lo) & (start_all <= hi)
            _draw_row(
                ax, k, start_all[sel], stop_all[sel], (lo, hi), cmap(k % 10), max_events, bins
            )
        ax.set_yticks(range(len(rows)), rows)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.set_xlim(lo, hi)
    axes[-1].set_xlabel("time on the timeline (s)")
    shown = (
        f"{len(chosen)} of {len(all_tl)} timelines"
        if len(chosen) < len(all_tl)
        else f"{len(chosen)} timelines"
    )
    axes[0].set_title(f"events: {len(events):,} in {shown}")
    return fig


def _draw_row(
    ax: Any,
    k: int,
    s: np.ndarray,
    e: np.ndarray,
    span: tuple[float, float],
    color: Any,
    max_events: int,
    bins: int,
) -> None:
    """Row ``k`` of a timeline's panel: one bar per event, or a density strip past
    ``max_events`` events in view."""
    lo, hi = span
    if len(s) > max_events:  # summary view: density of events along time
        counts, edges = np.histogram(s, bins=bins, range=(lo, hi))
        ax.imshow(
            counts[None, :],
            aspect="auto",
            extent=(edges[0], edges[-1], k - 0.4, k + 0.4),
            cmap="Greys",
            interpolation="nearest",
            origin="lower",
        )
        ax.text(hi, k, f" {len(s):,} (density)", va="center", fontsize=7)
        return
    width = np.maximum(e - s, (hi - lo) / 2000.0)  # instantaneous events stay visible
    ax.broken_barh(np.column_stack([s, width]), (k - 0.4, 0.8), facecolors=color)


_BIDS = re.compile(r"(?:^|[_/])(sub|ses|run)-([A-Za-z0-9]+)")


def study_table(
    events: pd.DataFrame, subject: str = "subject", session: str = "session", run: str = "run"
) -> pd.DataFrame:
    """Per timeline: subject, session, run, recorded duration and number of events.

    Subject/session/run come from the columns of those names, else from BIDS entities in the
    timeline name (``sub-01_ses-02_run-1``), else the timeline is its own subject. The duration
    is the longest span of the data events (those with a ``filepath`` and a ``frequency`` > 0,
    i.e. recordings), else the span of all events.
    """
    codes = events["timeline"].cat.codes.to_numpy()
    names = np.asarray(events["timeline"].cat.categories.astype(str))
    start = events["start"].to_numpy()
    stop = start + events["duration"].to_numpy()
    freq = (
        np.nan_to_num(events["frequency"].to_numpy(dtype=float))
        if "frequency" in events
        else np.zeros(len(events))
    )
    per = pd.DataFrame({"tl": codes, "start": start, "stop": stop, "rec": freq > 0})
    grouped = per.groupby("tl", sort=True)
    present = grouped.size().index.to_numpy()
    out = pd.DataFrame({"timeline": names[present]})
    for key, col in (("subject", subject), ("session", session), ("run", run)):
        values = None
        if col in events.columns and events[col].notna().any():  # the column, per timeline
            first = events[col].astype(object).groupby(codes).first()
            values = first.reindex(present).to_numpy(dtype=object)
        tag = {"subject": "sub", "session": "ses", "run": "run"}[key]
        from_name = np.array(  # BIDS entities of the (few) timeline names
            [dict(_BIDS.findall(n)).get(tag, "") for n in out["timeline"]], dtype=object
        )
        if values is None:
            values = from_name
        values = np.array(["" if v is None or v != v else str(v) for v in values], dtype=object)
        out[key] = values
    out["subject"] = np.where(out["subject"] == "", out["timeline"], out["subject"])
    rec = per[per["rec"]]
    dur = (rec["stop"] - rec["start"]).groupby(rec["tl"]).max()
    span = grouped["stop"].max() - grouped["start"].min()
    out["duration"] = dur.reindex(present).fillna(span).to_numpy()
    out["events"] = grouped.size().to_numpy()
    return out


def plot_study(
    events: pd.DataFrame,
    *,
    subject: str = "subject",
    session: str = "session",
    run: str = "run",
    count: str | None = None,
) -> Any:
    """Subjects (rows) x sessions and runs (columns): recorded minutes, with event counts.

    Parameters
    ----------
    events
        A validated events table (see :func:`study_table` for how subjects, sessions and runs
        are found).
    subject, session, run
        Columns naming each timeline's subject, session and run.
    count
        Event type to count in each cell (default: all events).

    Returns
    -------
    matplotlib.figure.Figure
        One heat map; each cell shows the minutes recorded and the number of events.
    """
    table = study_table(events, subject, session, run)
    if count is not None:
        of_type = events[events["type"] == count]
        n = of_type.groupby(of_type["timeline"].astype(str)).size()
        table["events"] = n.reindex(table["timeline"]).fillna(0).astype(int).to_numpy()
    table["column"] = [
        " ".join(p for p in (f"ses-{s}" if s else "", f"run-{r}" if r else "") if p) or "all"
        for s, r in zip(table["session"], table["run"])
    ]
    minutes = (
        table.pivot_table(index="subject", columns="column", values="duration", aggfunc="sum") / 60
    )
    counts = table.pivot_table(index="subject", columns="column", values="events", aggfunc="sum")
    fig = _figure(max(5.0, 1.4 * minutes.shape[1] + 2.5), max(2.5, 0.5 * minutes.shape[0] + 1.5))
    ax = fig.subplots()
    image = ax.imshow(minutes.to_numpy(dtype=float), aspect="auto", cmap="viridis")
    fig.colorbar(image, ax=ax, label="recorded minutes")
    ax.set_xticks(range(minutes.shape[1]), list(minutes.columns), rotation=30, ha="right")
    ax.set_yticks(range(minutes.shape[0]), list(minutes.index))
    ax.set_xlabel("session / run")
    ax.set_ylabel("subject")
    values = minutes.to_numpy(dtype=float)
    n_events = counts.reindex(index=minutes.index, columns=minutes.columns).to_numpy(dtype=float)
    for (i, j), value in np.ndenumerate(values):  # one label per cell (not per event)
        if np.isfinite(value):
            label = f"{value:.1f} min\n{int(n_events[i, j]):,} {count or 'events'}"
            ax.text(j, i, label, ha="center", va="center", fontsize=7, color="white")
    ax.set_title(
        f"study: {minutes.shape[0]} subjects, {len(table)} timelines, "
        f"{table['duration'].sum() / 3600:.2f} h recorded"
    )
    return fig


def overlap_matrix(events: pd.DataFrame, types: Sequence[str] | None = None) -> pd.DataFrame:
    """``M[a, b]``: fraction of the events of type ``a`` that overlap an event of type ``b``
    on their timeline (the diagonal counts overlaps with *another* event of the same type)."""
    present = [str(t) for t in events["type"].cat.categories if (events["type"] == t).any()]
    names = list(types) if types is not None else present
    index = EventIndex(events)
    ty = events["type"].astype(str).to_numpy()
    tl = events["timeline"].cat.codes.to_numpy()
    start = events["start"].to_numpy()
    stop = start + events["duration"].to_numpy()
    stop = np.maximum(stop, np.nextafter(start, np.inf))
    out = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):  # one vectorised query per pair of types
        rows = np.flatnonzero(ty == a)
        if not len(rows):
            continue
        for j, b in enumerate(names):
            if a == b:
                seg, hit = index.overlapping(tl[rows], start[rows], stop[rows], b)
                other = hit != rows[seg]
                out[i, j] = len(np.unique(seg[other])) / len(rows)
            else:
                out[i, j] = index.has_overlap(tl[rows], start[rows], stop[rows], b).mean()
    return pd.DataFrame(out, index=names, columns=names)


def plot_overlap(events: pd.DataFrame, *, types: Sequence[str] | None = None) -> Any:
    """Which event types co-occur: the fraction of each type's events overlapping each other type.

    Returns
    -------
    matplotlib.figure.Figure
        A heat map (rows: the type counted, columns: the type it overlaps), annotated in %.
    """
    matrix = overlap_matrix(events, types)
    names = list(matrix.index)
    fig = _figure(max(4.0, 0.7 * len(names) + 2.5), max(3.5, 0.6 * len(names) + 1.5))
    ax = fig.subplots()
    image = ax.imshow(matrix.to_numpy(), vmin=0, vmax=1, cmap="magma")
    fig.colorbar(image, ax=ax, label="fraction of row events")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("overlaps an event of type")
    ax.set_ylabel("events of type")
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
        ax.text(
            j,
            i,
            f"{100 * value:.0f}%",
            ha="center",
            va="center",
            fontsize=7,
            color="black" if value > 0.6 else "white",
        )
    ax.set_title("event overlap")
    return fig
